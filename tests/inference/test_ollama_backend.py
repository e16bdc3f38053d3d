"""`OllamaBackend` (the official `ollama` client) against a loopback server speaking Ollama's API with the
real SmolLM2 model: streamed chat, schema generation, embeddings, tags, and each failure as a one-line
error."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time

import pytest
from pydantic import BaseModel

from aurora.app.inference import (
    BackendTimeoutError,
    BackendUnavailableError,
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ModelNotFoundError,
    OllamaBackend,
    PromptTooLargeError,
    Timeouts,
)
from tests.inference.ollama_server import MODEL, OllamaServer


class Person(BaseModel):
    name: str
    age: int


def ask(text: str, max_tokens: int = 16, model: str | None = MODEL) -> ChatRequest:
    return ChatRequest(
        model=model, messages=[ChatMessage(role="user", content=text)], max_tokens=max_tokens, temperature=0.0
    )


async def collect(backend: OllamaBackend, request: ChatRequest) -> list[ChatChunk]:
    chunks: list[ChatChunk] = []
    async with contextlib.aclosing(backend.chat(request)) as stream:
        async for chunk in stream:
            chunks.append(chunk)
    return chunks


async def test_tags_give_health_and_models(ollama: OllamaBackend) -> None:
    health = await ollama.health()
    assert health.ok and health.models == [MODEL] and health.latency_ms is not None
    assert await ollama.models() == [MODEL]


async def test_chat_streams_real_tokens(ollama: OllamaBackend, ollama_server: OllamaServer) -> None:
    chunks = await collect(ollama, ask("Name three colours.", max_tokens=12))
    *tokens, last = chunks
    assert len(tokens) >= 3 and all(c.text for c in tokens)
    assert last.done and last.finish_reason in ("stop", "length")
    assert last.completion_tokens == len(tokens) and last.prompt_tokens
    assert {c.backend for c in chunks} == {"ollama"} and {c.model for c in chunks} == {MODEL}
    (call,) = ollama_server.calls("/api/chat")
    assert call.body["stream"] is True and call.body["options"]["num_predict"] == 12


async def test_the_default_model_is_the_first_tag(ollama: OllamaBackend) -> None:
    chunks = await collect(ollama, ask("Say hi.", max_tokens=4, model=None))
    assert chunks[-1].done and chunks[-1].model == MODEL


async def test_generate_with_a_schema_returns_valid_json(
    ollama: OllamaBackend, ollama_server: OllamaServer
) -> None:
    schema = Person.model_json_schema()
    text = await ollama.generate("Invent a person: name and age.", model=MODEL, schema=schema, max_tokens=60)
    assert Person.model_validate(json.loads(text)).name
    (call,) = ollama_server.calls("/api/generate")
    assert call.body["format"] == schema and call.body["stream"] is False


async def test_embed_returns_unit_vectors_that_keep_similar_texts_close(ollama: OllamaBackend) -> None:
    texts = ["The cat sat on the mat.", "A cat was sitting on a mat.", "Quarterly revenue grew by 4%."]
    vectors = await ollama.embed(texts, model=MODEL)
    assert len(vectors) == 3 and {len(v) for v in vectors} == {576}
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-3) for v in vectors)

    def cos(a: list[float], b: list[float]) -> float:
        return math.fsum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])


async def test_an_unknown_model_is_a_clear_404(ollama: OllamaBackend) -> None:
    with pytest.raises(ModelNotFoundError) as raised:
        await collect(ollama, ask("hi", model="llama3:8b"))
    message = str(raised.value)
    assert "llama3:8b" in message and "ollama pull llama3:8b" in message and "\n" not in message
    with pytest.raises(ModelNotFoundError):
        await ollama.generate("hi", model="llama3:8b")
    with pytest.raises(ModelNotFoundError):
        await ollama.embed(["hi"], model="llama3:8b")


async def test_a_refusing_host_is_unavailable(ollama: OllamaBackend, ollama_server: OllamaServer) -> None:
    ollama_server.faults.refuse = True
    with pytest.raises(BackendUnavailableError, match="503") as raised:
        await collect(ollama, ask("hi"))
    assert "server busy" in str(raised.value) and "\n" not in str(raised.value)


async def test_a_host_that_is_down_is_unavailable_at_once(refused_url: str) -> None:
    backend = OllamaBackend(refused_url)
    try:
        started = time.monotonic()
        health = await backend.health()
        assert not health.ok and "not reachable" in (health.error or "")
        with pytest.raises(BackendUnavailableError, match="not reachable"):
            await collect(backend, ask("hi"))
        with pytest.raises(BackendUnavailableError, match="not reachable"):
            await backend.generate("hi", model=MODEL)
        assert time.monotonic() - started < 2
    finally:
        await backend.aclose()


async def test_a_silent_host_times_out(silent_url: str) -> None:
    backend = OllamaBackend(silent_url, timeouts=Timeouts(connect=0.5, read=0.5))
    try:
        started = time.monotonic()
        with pytest.raises(BackendTimeoutError, match=r"within 0.5 s"):
            await collect(backend, ask("hi"))
        assert not (await backend.health()).ok
        assert time.monotonic() - started < 3
    finally:
        await backend.aclose()


@pytest.mark.parametrize(
    ("mode", "words"), [("abort", "dropped the connection"), ("end", "before it was finished")]
)
async def test_a_stream_cut_halfway_is_an_error_not_a_short_answer(
    ollama: OllamaBackend, ollama_server: OllamaServer, mode: str, words: str
) -> None:
    ollama_server.faults.drop_after = 3
    ollama_server.faults.drop_mode = mode  # type: ignore[assignment]
    received: list[str] = []
    with pytest.raises(BackendUnavailableError, match=words):
        async with contextlib.aclosing(
            ollama.chat(ask("Write a story about a fox.", max_tokens=40))
        ) as stream:
            async for chunk in stream:
                received.append(chunk.text)
    assert len(received) == 3


async def test_a_prompt_longer_than_the_context_is_refused_clearly(ollama: OllamaBackend) -> None:
    with pytest.raises(PromptTooLargeError, match="too long") as raised:
        await collect(ollama, ask("word " * 20_000))
    assert "\n" not in str(raised.value)


async def test_a_slow_host_times_out_between_tokens(ollama_server: OllamaServer) -> None:
    ollama_server.faults.token_delay_s = 1.0
    backend = OllamaBackend(ollama_server.url, timeouts=Timeouts(connect=1, read=0.3))
    try:
        with pytest.raises(BackendTimeoutError, match=r"did not answer within 0\.3 s"):
            await collect(backend, ask("Say hello.", max_tokens=8))
    finally:
        await backend.aclose()


async def test_closing_the_stream_stops_the_host_model(
    ollama: OllamaBackend, ollama_server: OllamaServer
) -> None:
    stream = ollama.chat(ask("Write a very long story about the sea.", max_tokens=500))
    received = 0
    async for _ in stream:
        received += 1
        if received == 3:
            break
    await stream.aclose()
    assert await asyncio.to_thread(ollama_server.backend.wait_idle, 1.0), "the host kept generating"


async def test_a_health_probe_of_a_silent_host_is_bounded_by_the_connect_timeout(silent_url: str) -> None:
    backend = OllamaBackend(silent_url, timeouts=Timeouts(connect=0.3, read=30))
    try:
        started = time.monotonic()
        health = await backend.health()
        assert not health.ok and "did not answer a health check within 0.6 s" in (health.error or "")
        assert time.monotonic() - started < 2
    finally:
        await backend.aclose()
