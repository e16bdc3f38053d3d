"""The router over real backends: the loopback Ollama server and the in-process model (both SmolLM2, served
as `smollm2:135m`, so either can answer), an OpenAI-compatible server, a port where nothing listens, and a
host that accepts connections and never answers."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from pydantic import BaseModel, Field

from aurora.app.inference import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    InvalidOutputError,
    LocalLlamaBackend,
    ModelNotFoundError,
    NoBackendError,
    OllamaBackend,
    OpenAICompatibleBackend,
    PromptTooLargeError,
    Router,
    StreamInterruptedError,
    Timeouts,
    serves,
)
from aurora.app.inference.types import Backend
from tests.inference.ollama_server import BROKEN_JSON, MODEL, OllamaServer
from tests.inference.openai_server import MODEL as OPENAI_MODEL
from tests.inference.openai_server import OpenAIServer


class Person(BaseModel):
    name: str = Field(min_length=1)
    age: int


def make_router(*backends: Backend, **kwargs: object) -> Router:
    options: dict[str, object] = {
        "connect_timeout": 1.0,
        "first_token_timeout": 5.0,
        "read_timeout": 5.0,
        "request_timeout": 20.0,
    }
    options.update(kwargs)
    return Router(list(backends), **options)  # type: ignore[arg-type]


def ask(text: str = "Say hello.", max_tokens: int = 8, model: str | None = None) -> ChatRequest:
    return ChatRequest(
        model=model, messages=[ChatMessage(role="user", content=text)], max_tokens=max_tokens, temperature=0.0
    )


async def collect(router: Router, request: ChatRequest) -> list[ChatChunk]:
    chunks: list[ChatChunk] = []
    async with contextlib.aclosing(router.chat(request)) as stream:
        async for chunk in stream:
            chunks.append(chunk)
    return chunks


def backends_of(chunks: list[ChatChunk]) -> set[str]:
    return {c.backend for c in chunks}


# --- choosing and failing over ------------------------------------------------------------------------


async def test_the_first_healthy_backend_answers(ollama: OllamaBackend, local: LocalLlamaBackend) -> None:
    chunks = await collect(make_router(ollama, local), ask())
    assert backends_of(chunks) == {"ollama"} and chunks[-1].done and "".join(c.text for c in chunks)


async def test_a_refusing_backend_is_skipped_for_the_next(
    ollama: OllamaBackend, ollama_server: OllamaServer, local: LocalLlamaBackend
) -> None:
    ollama_server.faults.refuse = True
    router = make_router(ollama, local)
    chunks = await collect(router, ask())
    assert backends_of(chunks) == {"local"} and chunks[-1].done
    assert len(ollama_server.calls("/api/chat")) == 1
    row = router.status().backends[0]
    assert row.state == "down" and "503" in (row.error or "")


async def test_a_backend_that_hangs_before_the_first_token_is_left_after_first_token_timeout(
    ollama: OllamaBackend, ollama_server: OllamaServer, local: LocalLlamaBackend
) -> None:
    ollama_server.faults.hang_s = 10
    router = make_router(ollama, local, first_token_timeout=1.0)
    await router.check_health()
    started = time.monotonic()
    chunks = await collect(router, ask())
    assert backends_of(chunks) == {"local"}
    assert 1.0 <= time.monotonic() - started < 5.0


@pytest.mark.parametrize("where", ["refused", "silent"])
async def test_a_backend_that_is_down_is_passed_over(
    where: str, refused_url: str, silent_url: str, local: LocalLlamaBackend
) -> None:
    down = OllamaBackend(
        refused_url if where == "refused" else silent_url, timeouts=Timeouts(connect=0.5), name="down"
    )
    try:
        router = make_router(down, local, connect_timeout=0.5)
        started = time.monotonic()
        chunks = await collect(router, ask())
        assert backends_of(chunks) == {"local"}
        assert time.monotonic() - started < 5.0  # one bounded probe, then straight to the local model
        assert router.status().backends[0].state == "down"
    finally:
        await down.aclose()


async def test_the_circuit_opens_and_a_dead_backend_is_skipped_without_waiting(
    ollama: OllamaBackend, ollama_server: OllamaServer, local: LocalLlamaBackend
) -> None:
    ollama_server.faults.hang_s = 10
    router = make_router(ollama, local, first_token_timeout=1.0, fail_max=2, reset_timeout=60)
    for _ in range(2):
        # The host still lists its models, so each health check puts it first again, and each request
        # waits out the first-token timeout before the local model answers.
        await router.check_health()
        assert router.status().backends[0].state == "ok"
        assert backends_of(await collect(router, ask(max_tokens=2))) == {"local"}
    assert len(ollama_server.calls("/api/chat")) == 2
    await router.check_health()
    row = router.status().backends[0]
    assert row.state == "paused" and row.circuit == "open" and row.retry_in_s > 50
    assert "ollama paused" in router.status().line()

    started = time.monotonic()
    stream = router.chat(ask(max_tokens=2))
    first = await anext(stream)
    assert time.monotonic() - started < 0.9 and first.backend == "local"  # no first-token wait
    await stream.aclose()
    assert len(ollama_server.calls("/api/chat")) == 2  # not even a connection attempt


async def test_an_open_circuit_lets_one_trial_through_after_reset_timeout(
    ollama: OllamaBackend, ollama_server: OllamaServer, local: LocalLlamaBackend
) -> None:
    ollama_server.faults.refuse = True
    router = make_router(ollama, local, fail_max=2, reset_timeout=0.5)
    for _ in range(2):
        await router.check_health()
        await collect(router, ask(max_tokens=2))
    assert router.status().backends[0].circuit == "open"
    await router.check_health()
    ollama_server.faults.refuse = False
    await asyncio.sleep(0.6)
    chunks = await collect(router, ask(max_tokens=2))
    assert backends_of(chunks) == {"ollama"}
    assert router.status().backends[0].circuit == "closed" and router.status().backends[0].state == "ok"


async def test_when_every_backend_fails_the_error_names_each(refused_url: str, silent_url: str) -> None:
    a = OllamaBackend(refused_url, name="node-a")
    b = OpenAICompatibleBackend(silent_url, timeouts=Timeouts(connect=0.5, read=0.5), name="node-b")
    router = make_router(a, b, connect_timeout=0.5, fail_max=2, reset_timeout=60)
    try:
        with pytest.raises(NoBackendError) as raised:
            await collect(router, ask())
        message = str(raised.value)
        assert "node-a" in message and "node-b" in message and "\n" not in message
        with pytest.raises(NoBackendError, match="paused"):  # the probes and the request: two failures each
            await collect(router, ask())
    finally:
        await router.aclose()


# --- what was streamed stays streamed --------------------------------------------------------------------


async def test_a_stream_that_breaks_after_tokens_is_a_clear_error_without_duplicates(
    ollama: OllamaBackend, ollama_server: OllamaServer, local: LocalLlamaBackend
) -> None:
    ollama_server.faults.drop_after = 3
    router = make_router(ollama, local)
    received: list[ChatChunk] = []
    with pytest.raises(StreamInterruptedError) as raised:
        async with contextlib.aclosing(
            router.chat(ask("Write a story about a fox.", max_tokens=40))
        ) as stream:
            async for chunk in stream:
                received.append(chunk)
    assert len(received) == 3 and backends_of(received) == {"ollama"}
    assert raised.value.partial == "".join(c.text for c in received)
    message = str(raised.value)
    assert "broke off" in message and "ask again" in message and "\n" not in message
    assert not local.busy


async def test_a_stream_that_breaks_before_any_token_goes_to_the_next_backend(
    ollama: OllamaBackend, ollama_server: OllamaServer, local: LocalLlamaBackend
) -> None:
    ollama_server.faults.drop_after = 0
    alone = "".join(c.text for c in await collect(make_router(local), ask("Name a fruit.")))
    chunks = await collect(make_router(ollama, local), ask("Name a fruit."))
    assert backends_of(chunks) == {"local"} and "".join(c.text for c in chunks) == alone


# --- cancelling -------------------------------------------------------------------------------------------


async def test_cancelling_the_task_closes_the_backend_stream(
    ollama: OllamaBackend, ollama_server: OllamaServer
) -> None:
    router = make_router(ollama)
    first = asyncio.Event()

    async def read() -> None:
        async for chunk in router.chat(ask("Write a very long story about the sea.", max_tokens=500)):
            if chunk.text:
                first.set()

    task = asyncio.create_task(read())
    await asyncio.wait_for(first.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(ollama_server.backend.wait_idle, 1.0), "the host kept generating"


async def test_closing_the_answer_stops_the_local_model(local: LocalLlamaBackend) -> None:
    router = make_router(local)
    stream = router.chat(ask("Write a very long story about the mountains.", max_tokens=500))
    assert (await anext(stream)).text
    await stream.aclose()
    assert await asyncio.to_thread(local.wait_idle, 1.0)


# --- structured output ----------------------------------------------------------------------------------


async def test_invalid_json_is_retried_once_with_the_error_fed_back(
    ollama: OllamaBackend, ollama_server: OllamaServer
) -> None:
    ollama_server.faults.invalid_json = 1
    person = await make_router(ollama).generate_json("Invent a person: name and age.", Person, max_tokens=60)
    assert person.name
    first, second = ollama_server.calls("/api/generate")
    assert first.body["format"] == Person.model_json_schema()
    assert "not valid" in second.body["prompt"] and BROKEN_JSON in second.body["prompt"]


async def test_invalid_json_twice_is_a_clear_error(
    ollama: OllamaBackend, ollama_server: OllamaServer
) -> None:
    ollama_server.faults.invalid_json = 2
    with pytest.raises(InvalidOutputError, match="did not match the expected format twice") as raised:
        await make_router(ollama).generate_json("Invent a person.", Person)
    assert "\n" not in str(raised.value) and len(ollama_server.calls("/api/generate")) == 2


async def test_schema_generation_fails_over_too(
    ollama: OllamaBackend, ollama_server: OllamaServer, local: LocalLlamaBackend
) -> None:
    ollama_server.faults.refuse = True
    result = await make_router(ollama, local).generate("Invent a person.", schema=Person.model_json_schema())
    assert result.backend == "local" and Person.model_validate_json(result.text)


# --- limits -----------------------------------------------------------------------------------------------


async def test_a_100_kb_question_is_refused_at_once(
    ollama: OllamaBackend, ollama_server: OllamaServer
) -> None:
    started = time.monotonic()
    with pytest.raises(PromptTooLargeError, match="100,000 characters") as raised:
        await collect(make_router(ollama), ask("x" * 100_000))
    assert time.monotonic() - started < 0.5 and not ollama_server.calls("/api/chat")
    assert "\n" not in str(raised.value)


async def test_a_100_kb_question_let_through_is_refused_by_the_backends(
    ollama: OllamaBackend, ollama_server: OllamaServer, local: LocalLlamaBackend
) -> None:
    router = make_router(ollama, local, max_input_chars=200_000)
    started = time.monotonic()
    with pytest.raises(PromptTooLargeError, match="too long") as raised:
        await collect(router, ask("word " * 20_000))
    assert time.monotonic() - started < 10 and len(ollama_server.calls("/api/chat")) == 1
    assert "\n" not in str(raised.value)
    assert router.status().backends[0].circuit == "closed"  # a healthy backend's answer, not a failure


# --- models, embeddings, status ---------------------------------------------------------------------------


async def test_a_request_goes_to_a_backend_that_serves_its_model(
    openai: OpenAICompatibleBackend, openai_server: OpenAIServer, local: LocalLlamaBackend
) -> None:
    router = make_router(openai, local)
    assert backends_of(await collect(router, ask(model=MODEL))) == {"local"}
    assert backends_of(await collect(router, ask(model=OPENAI_MODEL))) == {"openai"}
    with pytest.raises(ModelNotFoundError, match="llama3") as raised:
        await collect(router, ask(model="llama3"))
    assert "\n" not in str(raised.value)
    assert len([r for r in openai_server.requests if r.path == "/v1/chat/completions"]) == 1


async def test_chat_text_gives_the_whole_answer(ollama: OllamaBackend, local: LocalLlamaBackend) -> None:
    streamed = await collect(make_router(ollama, local), ask("Name a fruit."))
    whole = await make_router(ollama, local).chat_text(ask("Name a fruit."))
    assert whole.text == "".join(c.text for c in streamed)
    assert whole.backend == "ollama" and whole.model == MODEL


async def test_the_default_model_setting_is_used(ollama: OllamaBackend, local: LocalLlamaBackend) -> None:
    router = make_router(ollama, local, default_model=MODEL)
    chunks = await collect(router, ask())
    assert chunks[-1].model == MODEL


async def test_embeddings_fail_over_from_the_local_model(
    ollama: OllamaBackend, local: LocalLlamaBackend
) -> None:
    result = await make_router(local, ollama).embed(["a note about cats"])
    assert result.backend == "ollama" and len(result.vectors[0]) == 576


async def test_health_checks_and_status_line(refused_url: str, ollama_server: OllamaServer) -> None:
    down = OllamaBackend(refused_url, name="down")
    alive = OllamaBackend(ollama_server.url, name="alive")
    router = make_router(alive, down, health_interval=0.1)
    assert router.status().line() == "LLM alive unknown · down unknown"
    router.start_health_checks()
    deadline = time.monotonic() + 5
    while len(ollama_server.calls("/api/tags")) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    status = router.status()
    assert status.available and status.line().startswith("LLM alive ok · down ")
    assert status.backends[1].state in ("down", "paused") and "not reachable" in (
        status.backends[1].error or ""
    )
    assert len(ollama_server.calls("/api/tags")) >= 2
    await router.aclose()


def test_model_names_follow_ollama_tags() -> None:
    assert serves(["llama3:latest"], "llama3") and serves(["llama3"], "llama3:latest")
    assert serves(["smollm2:135m"], "smollm2:135m") and not serves(["smollm2:135m"], "smollm2")
