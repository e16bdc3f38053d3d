"""`OpenAICompatibleBackend` against a loopback OpenAI-compatible server whose server-sent events are
llama.cpp's own streamed chunks from the real SmolLM2 model."""

from __future__ import annotations

import contextlib
import json

import pytest
from pydantic import BaseModel

from aurora.app.inference import (
    BackendUnavailableError,
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ModelNotFoundError,
    OpenAICompatibleBackend,
)
from tests.inference.openai_server import MODEL, OpenAIServer


class Person(BaseModel):
    name: str
    age: int


def ask(text: str, max_tokens: int = 16, model: str | None = MODEL) -> ChatRequest:
    return ChatRequest(
        model=model, messages=[ChatMessage(role="user", content=text)], max_tokens=max_tokens, temperature=0.0
    )


async def collect(backend: OpenAICompatibleBackend, request: ChatRequest) -> list[ChatChunk]:
    chunks: list[ChatChunk] = []
    async with contextlib.aclosing(backend.chat(request)) as stream:
        async for chunk in stream:
            chunks.append(chunk)
    return chunks


async def test_models_and_health(openai: OpenAICompatibleBackend, openai_server: OpenAIServer) -> None:
    health = await openai.health()
    assert health.ok and health.models == [MODEL]
    assert openai_server.requests[0].headers["authorization"] == "Bearer sk-test"
    assert "sk-test" not in repr(openai)


async def test_chat_streams_real_tokens_over_sse(openai: OpenAICompatibleBackend) -> None:
    chunks = await collect(openai, ask("Name three colours.", max_tokens=12))
    *tokens, last = chunks
    assert len(tokens) >= 3 and all(c.text for c in tokens)
    assert last.done and last.finish_reason in ("stop", "length") and last.completion_tokens == len(tokens)
    assert {c.model for c in chunks} == {MODEL} and {c.backend for c in chunks} == {"openai"}


async def test_the_default_model_is_the_first_listed(openai: OpenAICompatibleBackend) -> None:
    chunks = await collect(openai, ask("Say hi.", max_tokens=4, model=None))
    assert chunks[-1].done and chunks[-1].model == MODEL


async def test_generate_with_a_json_schema_response_format(
    openai: OpenAICompatibleBackend, openai_server: OpenAIServer
) -> None:
    schema = Person.model_json_schema()
    text = await openai.generate("Invent a person: name and age.", schema=schema, max_tokens=60)
    assert Person.model_validate(json.loads(text)).name
    call = openai_server.requests[-1]
    assert call.body["response_format"]["type"] == "json_schema"
    assert call.body["response_format"]["json_schema"]["schema"] == schema


async def test_embeddings(openai: OpenAICompatibleBackend) -> None:
    vectors = await openai.embed(["one note", "another note"], model=MODEL)
    assert len(vectors) == 2 and {len(v) for v in vectors} == {576}


async def test_errors_are_one_line(openai: OpenAICompatibleBackend, openai_server: OpenAIServer) -> None:
    with pytest.raises(ModelNotFoundError, match="gpt-9") as missing:
        await collect(openai, ask("hi", model="gpt-9"))
    openai_server.faults.refuse = True
    with pytest.raises(BackendUnavailableError, match=r"503: The server is busy") as refused:
        await collect(openai, ask("hi"))
    for error in (missing.value, refused.value):
        assert "\n" not in str(error)


@pytest.mark.parametrize(
    ("fault", "words"), [("drop", "dropped the connection"), ("omit", "before it was finished")]
)
async def test_a_stream_cut_short_is_an_error(
    openai: OpenAICompatibleBackend, openai_server: OpenAIServer, fault: str, words: str
) -> None:
    if fault == "drop":
        openai_server.faults.drop_after = 2
    else:
        openai_server.faults.omit_done = True
    received: list[str] = []
    with pytest.raises(BackendUnavailableError, match=words):
        async with contextlib.aclosing(
            openai.chat(ask("Write a story about a fox.", max_tokens=8))
        ) as stream:
            async for chunk in stream:
                received.append(chunk.text)
    assert all(received) and (len(received) == 2 if fault == "drop" else len(received) >= 1)


async def test_a_server_that_is_down(refused_url: str) -> None:
    backend = OpenAICompatibleBackend(refused_url)
    try:
        assert not (await backend.health()).ok
        with pytest.raises(BackendUnavailableError, match="not reachable"):
            await collect(backend, ask("hi"))
    finally:
        await backend.aclose()
