"""The inference layer's data types and the `Backend` protocol every backend implements.

The models carry limits (DESIGN.md section 8): a request from the network is validated by them before it
reaches a model. The router applies its own, tighter, input limit on top (`Router.max_input_chars`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

MAX_CONTENT_CHARS = 1_000_000
"""The hard ceiling on one message; the router refuses far less (`Router.max_input_chars`)."""


class Timeouts(BaseModel):
    """How long a backend waits, per phase, in seconds. Every network call is bounded by these."""

    model_config = ConfigDict(frozen=True)

    connect: float = Field(default=3.0, gt=0)
    """Opening a connection: a host that does not answer in this time is down."""
    read: float = Field(default=60.0, gt=0)
    """The longest silence while reading an answer (between two streamed chunks, or a whole generation)."""
    write: float = Field(default=10.0, gt=0)
    pool: float = Field(default=5.0, gt=0)
    """Waiting for a free connection of the client's pool."""


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=MAX_CONTENT_CHARS)


class ChatRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str | None = Field(default=None, min_length=1, max_length=200)
    """None: the router's default model, or else whichever model the chosen backend serves by default."""
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=512, ge=1, le=32_768)
    stop: list[str] = Field(default_factory=list, max_length=8)

    def input_chars(self) -> int:
        return sum(len(m.content) for m in self.messages)


class ChatChunk(BaseModel):
    """A piece of a streamed answer. The last chunk has `done=True` (its text may be empty)."""

    model_config = ConfigDict(frozen=True)

    text: str
    done: bool
    backend: str
    model: str
    finish_reason: str | None = None
    """On the last chunk: "stop" (the model ended), "length" (max_tokens reached), or the backend's word."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class GenerateResult(BaseModel):
    """A whole (non-streamed) generation, with where it came from."""

    model_config = ConfigDict(frozen=True)

    text: str
    backend: str
    model: str | None


class EmbedResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    vectors: list[list[float]]
    backend: str
    model: str | None


class BackendHealth(BaseModel):
    """One health probe of one backend."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    models: list[str] = Field(default_factory=list)
    latency_ms: float | None = None
    error: str | None = None
    """One line, when not ok."""


JsonSchema = dict[str, Any]


@runtime_checkable
class Backend(Protocol):
    """What the router needs of a backend. Every method raises `InferenceError` subclasses only.

    `chat` is an async generator: closing it (or cancelling the task iterating it) must stop the work
    promptly, the HTTP stream closed or the local model's loop told to stop.
    """

    @property
    def name(self) -> str:
        """Short and unique among the router's backends; shown in the status bar ("ollama@node")."""
        ...

    async def models(self) -> list[str]: ...

    async def health(self) -> BackendHealth:
        """Never raises: a failed probe is `BackendHealth(ok=False, error=...)`."""
        ...

    def chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]: ...

    async def generate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        schema: JsonSchema | None = None,
        max_tokens: int = 512,
    ) -> str:
        """The whole answer; with `schema`, constrained to JSON matching it where the backend can."""
        ...

    async def embed(self, texts: list[str], *, model: str | None = None) -> list[list[float]]: ...

    async def aclose(self) -> None: ...


class BackendStatus(BaseModel):
    """One backend as the status bar shows it."""

    model_config = ConfigDict(frozen=True)

    name: str
    state: Literal["ok", "down", "paused", "unknown"]
    """ok: the last probe or request worked; down: it failed; paused: the circuit is open; unknown: not
    probed yet."""
    circuit: Literal["closed", "open", "half-open"]
    models: list[str] = Field(default_factory=list)
    latency_ms: float | None = None
    error: str | None = None
    retry_in_s: float = 0.0


class RouterStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    backends: list[BackendStatus]

    @property
    def available(self) -> bool:
        return any(b.state == "ok" for b in self.backends)

    def line(self) -> str:
        """A few words for the status bar: "LLM ollama@node ok · local paused 25s"."""
        parts = []
        for b in self.backends:
            extra = f" {b.retry_in_s:.0f}s" if b.state == "paused" else ""
            parts.append(f"{b.name} {b.state}{extra}")
        return "LLM " + (" · ".join(parts) if parts else "none configured")
