"""`Router`: sends each request to a backend that can take it, and fails over when one cannot.

Choosing: the candidates are the backends that serve the model asked for (`request.model`, else the
router's `default_model`, else whatever each backend serves by default), in the order given, except that
a backend whose last probe or request failed goes to the back until a probe or a request succeeds again
(it is still tried last: its failure may be stale). A backend whose circuit is open is skipped without a
connection attempt.
The first request probes every backend once (concurrently, `connect_timeout` each); after that,
`check_health()` refreshes the picture, every `health_interval` seconds once `start_health_checks()` ran.

Failing over: a backend that refuses, is down, sends nothing within `first_token_timeout`, or fails
before a token was passed on, is skipped for the next candidate. Once text has been passed on, a failure
is raised as `StreamInterruptedError` carrying the text shown so far: starting over on another backend
would repeat or contradict what the person already read. Only `BackendUnavailableError`s (and timeouts)
count against a backend's circuit; a missing model or a too-long question is a healthy backend's answer.

Bounds: nothing waits forever. A health probe gets `connect_timeout`; the first token
`first_token_timeout`; each later chunk `read_timeout`; a whole non-streamed call `request_timeout`.
Questions over `max_input_chars` are refused before any backend is asked.

Cancelling: the answer is an async generator. Closing it (`contextlib.aclosing`, or the task reading it
being cancelled when the person presses escape) closes the backend's stream: an HTTP response is closed,
the local model stops at its next token.

Structured output: `generate_json` asks for JSON matching a pydantic model's schema, validates the answer
with the model, and on an invalid answer asks once more with the validation error fed back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Self, TypeVar

from pydantic import BaseModel

from aurora.app.inference.circuit import Circuit
from aurora.app.inference.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    InferenceError,
    ModelNotFoundError,
    NoBackendError,
    PromptTooLargeError,
    StreamInterruptedError,
    one_line,
)
from aurora.app.inference.structured import parse_or_retry
from aurora.app.inference.types import (
    Backend,
    BackendHealth,
    BackendStatus,
    ChatChunk,
    ChatRequest,
    EmbedResult,
    GenerateResult,
    JsonSchema,
    RouterStatus,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

DEFAULT_MAX_INPUT_CHARS = 48_000
"""About 12,000 tokens: more than the context of the models Ollama runs by default, so a longer question
could only be cut, silently, by the backend."""


def serves(available: Sequence[str], wanted: str) -> bool:
    """Does a model list include `wanted`? Ollama's naming: "llama3" is "llama3:latest"."""
    if wanted in available:
        return True
    if ":" not in wanted:
        return f"{wanted}:latest" in available
    return wanted.endswith(":latest") and wanted.removesuffix(":latest") in available


@dataclass
class _Slot:
    backend: Backend
    circuit: Circuit
    health: BackendHealth | None = None
    last_error: str | None = None

    @property
    def name(self) -> str:
        return self.backend.name


class Router:
    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 60.0,
        first_token_timeout: float = 30.0,
        request_timeout: float = 120.0,
        default_model: str | None = None,
        embed_model: str | None = None,
        fail_max: int = 3,
        reset_timeout: float = 30.0,
        max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
        health_interval: float = 30.0,
    ) -> None:
        names = [b.name for b in backends]
        if len(set(names)) != len(names):
            raise ValueError(f"backend names must be unique: {names}")
        self._slots = [
            _Slot(b, Circuit(b.name, fail_max=fail_max, reset_timeout=reset_timeout)) for b in backends
        ]
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.first_token_timeout = first_token_timeout
        self.request_timeout = request_timeout
        self.default_model = default_model
        self.embed_model = embed_model
        self.max_input_chars = max_input_chars
        self.health_interval = health_interval
        self._probed = False
        self._health_task: asyncio.Task[None] | None = None

    # --- health ----------------------------------------------------------------------------------------

    async def _probe(self, slot: _Slot) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout):
                health = await slot.backend.health()
        except TimeoutError:
            health = BackendHealth(
                ok=False, error=f"{slot.name} did not answer a health check within {self.connect_timeout:g} s"
            )
        except Exception as error:  # a backend's health() must not raise; one that does is not healthy
            health = BackendHealth(ok=False, error=f"{slot.name} failed its health check: {one_line(error)}")
        slot.health = health
        if not health.ok:
            slot.last_error = health.error
            slot.circuit.record_failure()

    async def check_health(self) -> RouterStatus:
        """Probe every backend at once; at most `connect_timeout` seconds."""
        self._probed = True
        await asyncio.gather(*(self._probe(slot) for slot in self._slots))
        return self.status()

    async def _health_loop(self) -> None:
        while True:
            await self.check_health()
            await asyncio.sleep(self.health_interval)

    def start_health_checks(self) -> None:
        """Probe now and every `health_interval` seconds, until `aclose()`."""
        if self._health_task is None or self._health_task.done():
            self._health_task = asyncio.get_running_loop().create_task(self._health_loop())

    def status(self) -> RouterStatus:
        rows = []
        for slot in self._slots:
            circuit, health = slot.circuit.state, slot.health
            if circuit == "open":
                state = "paused"
            elif health is None:
                state = "unknown"
            else:
                state = "ok" if health.ok else "down"
            rows.append(
                BackendStatus(
                    name=slot.name,
                    state=state,
                    circuit=circuit,
                    models=list(health.models) if health else [],
                    latency_ms=health.latency_ms if health else None,
                    error=None if state == "ok" else slot.last_error,
                    retry_in_s=slot.circuit.retry_in(),
                )
            )
        return RouterStatus(backends=rows)

    # --- choosing --------------------------------------------------------------------------------------

    async def _candidates(self, model: str | None) -> list[_Slot]:
        if not self._probed:
            await self.check_health()
        ranked: list[tuple[int, _Slot]] = []
        for slot in self._slots:
            health = slot.health
            if health is None:
                ranked.append((1, slot))
            elif not health.ok:
                ranked.append((2, slot))
            elif model is None or serves(health.models, model):
                ranked.append((0, slot))
        if not ranked:
            offered = "; ".join(
                f"{s.name}: {', '.join(s.health.models) or 'none'}" for s in self._slots if s.health
            )
            raise ModelNotFoundError(
                f"No backend serves model {model} ({offered}): pull it or choose another"
            )
        ranked.sort(key=lambda pair: pair[0])
        return [slot for _, slot in ranked]

    def _check_input(self, chars: int) -> None:
        if chars > self.max_input_chars:
            raise PromptTooLargeError(
                f"The question is {chars:,} characters; the assistant takes at most "
                f"{self.max_input_chars:,}: shorten it, or save the text as a note and ask about it"
            )

    def _failed(self, slot: _Slot, error: InferenceError) -> None:
        slot.last_error = str(error)
        if isinstance(error, BackendUnavailableError):
            slot.circuit.record_failure()
            if slot.health is not None and slot.health.ok:
                slot.health = slot.health.model_copy(update={"ok": False, "error": str(error)})

    def _succeeded(self, slot: _Slot) -> None:
        slot.circuit.record_success()
        slot.last_error = None
        if slot.health is not None and not slot.health.ok:
            slot.health = slot.health.model_copy(update={"ok": True, "error": None})

    @staticmethod
    def _unexpected(slot: _Slot, error: Exception) -> InferenceError:
        if isinstance(error, InferenceError):
            return error
        return BackendUnavailableError(f"{slot.name} failed unexpectedly ({one_line(repr(error), 120)})")

    def _give_up(self, failures: list[tuple[str, InferenceError]], paused: list[str]) -> InferenceError:
        if not failures:
            waits = ", ".join(paused) or "none configured"
            return NoBackendError(
                f"Every inference backend is paused after repeated failures ({waits}): try again then"
            )
        kinds = {type(error) for _, error in failures}
        if len(kinds) == 1 and not isinstance(failures[0][1], BackendUnavailableError):
            return failures[0][1]  # every backend said the same thing (model missing, question too long)
        reasons = "; ".join(f"{name}: {one_line(error, 110)}" for name, error in failures)
        more = f"; paused: {', '.join(paused)}" if paused else ""
        return NoBackendError(f"No inference backend could answer ({reasons}{more})")

    @staticmethod
    def _pause_note(slot: _Slot) -> str:
        return f"{slot.name} for {slot.circuit.retry_in():.0f} s"

    # --- streaming chat ------------------------------------------------------------------------------

    async def _first_chunk(self, slot: _Slot, stream: AsyncIterator[ChatChunk]) -> ChatChunk:
        """The first chunk with text (or the last chunk) within `first_token_timeout`."""
        try:
            async with asyncio.timeout(self.first_token_timeout):
                while True:
                    chunk = await anext(stream)
                    if chunk.text or chunk.done:
                        return chunk
        except StopAsyncIteration:
            raise BackendUnavailableError(f"{slot.name} ended without answering") from None
        except TimeoutError:
            raise BackendTimeoutError(
                f"{slot.name} sent nothing within {self.first_token_timeout:g} s: it may be overloaded"
            ) from None
        except Exception as error:
            raise self._unexpected(slot, error) from None

    async def _next_chunk(self, slot: _Slot, stream: AsyncIterator[ChatChunk]) -> ChatChunk:
        try:
            async with asyncio.timeout(self.read_timeout):
                return await anext(stream)
        except StopAsyncIteration:
            raise BackendUnavailableError(f"{slot.name} ended the answer before it was finished") from None
        except TimeoutError:
            raise BackendTimeoutError(f"{slot.name} went silent for {self.read_timeout:g} s") from None
        except Exception as error:
            raise self._unexpected(slot, error) from None

    async def chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        """Stream an answer. Every chunk but the last has text; the last has `done=True`."""
        self._check_input(request.input_chars())
        model = request.model or self.default_model
        routed = request if model == request.model else request.model_copy(update={"model": model})
        failures: list[tuple[str, InferenceError]] = []
        paused: list[str] = []
        for slot in await self._candidates(model):
            if not slot.circuit.allows():
                paused.append(self._pause_note(slot))
                continue
            stream = slot.backend.chat(routed)
            try:
                try:
                    chunk = await self._first_chunk(slot, stream)
                except InferenceError as error:
                    self._failed(slot, error)
                    failures.append((slot.name, error))
                    continue
                self._succeeded(slot)
                shown: list[str] = []
                while True:
                    if chunk.text or chunk.done:
                        shown.append(chunk.text)
                        yield chunk
                    if chunk.done:
                        return
                    try:
                        chunk = await self._next_chunk(slot, stream)
                    except InferenceError as error:
                        self._failed(slot, error)
                        partial = "".join(shown)
                        raise StreamInterruptedError(
                            f"The answer from {slot.name} broke off after {len(partial):,} characters "
                            f"({one_line(error, 120)}): ask again",
                            partial=partial,
                        ) from None
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()
        raise self._give_up(failures, paused)

    async def chat_text(self, request: ChatRequest) -> GenerateResult:
        """The whole answer of `chat` at once."""
        parts: list[str] = []
        last: ChatChunk | None = None
        async with contextlib.aclosing(self.chat(request)) as stream:
            async for chunk in stream:
                parts.append(chunk.text)
                last = chunk
        return GenerateResult(
            text="".join(parts), backend=last.backend if last else "", model=last.model if last else None
        )

    # --- whole calls -----------------------------------------------------------------------------------

    async def _each(
        self, model: str | None, call: Callable[[Backend, str | None], Awaitable[T]]
    ) -> tuple[T, str]:
        """`call` on each candidate in turn until one answers within `request_timeout`."""
        failures: list[tuple[str, InferenceError]] = []
        paused: list[str] = []
        for slot in await self._candidates(model):
            if not slot.circuit.allows():
                paused.append(self._pause_note(slot))
                continue
            try:
                async with asyncio.timeout(self.request_timeout):
                    value = await call(slot.backend, model)
            except TimeoutError:
                error: InferenceError = BackendTimeoutError(
                    f"{slot.name} did not answer within {self.request_timeout:g} s"
                )
            except Exception as raised:
                error = self._unexpected(slot, raised)
            else:
                self._succeeded(slot)
                return value, slot.name
            self._failed(slot, error)
            failures.append((slot.name, error))
        raise self._give_up(failures, paused)

    async def generate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        schema: JsonSchema | None = None,
        max_tokens: int = 512,
    ) -> GenerateResult:
        self._check_input(len(prompt))
        chosen = model or self.default_model
        text, backend = await self._each(
            chosen, lambda b, m: b.generate(prompt, model=m, schema=schema, max_tokens=max_tokens)
        )
        return GenerateResult(text=text, backend=backend, model=chosen)

    async def generate_json(
        self, prompt: str, output: type[M], *, model: str | None = None, max_tokens: int = 512
    ) -> M:
        """An instance of `output` filled in by the model; one retry on an invalid answer, then
        `InvalidOutputError`."""
        schema = output.model_json_schema()

        async def ask(text: str) -> str:
            return (await self.generate(text, model=model, schema=schema, max_tokens=max_tokens)).text

        return await parse_or_retry(ask, prompt, output, schema)

    async def embed(self, texts: list[str], *, model: str | None = None) -> EmbedResult:
        self._check_input(sum(len(t) for t in texts))
        chosen = model or self.embed_model
        vectors, backend = await self._each(chosen, lambda b, m: b.embed(texts, model=m))
        return EmbedResult(vectors=vectors, backend=backend, model=chosen)

    # --- lifetime --------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop the health checks and close every backend."""
        task, self._health_task = self._health_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for slot in self._slots:
            with contextlib.suppress(Exception):
                await slot.backend.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
