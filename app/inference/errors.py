"""Errors of the inference layer. Each message is one line that says what went wrong and what to do.

The router tells them apart by class, which decides two things:

- failover: any `InferenceError` raised before the first token lets the router try the next backend;
  after tokens have streamed, the router raises `StreamInterruptedError` instead (never a silent restart);
- the circuit breaker: only `BackendUnavailableError` (refused, down, timed out, broke off) counts as a
  failure of the backend. A missing model, an unsupported call or a prompt that is too long are answers
  from a healthy backend.
"""

from __future__ import annotations

from aurora.app.errors import AuroraError

LOCAL_LLM_HINT = "pip install 'aurora[local-llm]'"


def one_line(text: object, limit: int = 200) -> str:
    """`text` on one line, cut to `limit` characters: what a server says goes into our messages this way."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class InferenceError(AuroraError):
    """Base of every inference error a person may see."""


class LocalModelUnavailableError(InferenceError):
    """The in-process model cannot run: the `local-llm` extra is not installed, or its model file is gone."""


class BackendUnavailableError(InferenceError):
    """A backend refused, is down, timed out or broke off: the circuit breaker counts this one."""


class BackendTimeoutError(BackendUnavailableError):
    pass


class ModelNotFoundError(InferenceError):
    """The backend answered, but does not serve the model asked for."""


class UnsupportedError(InferenceError):
    """The backend cannot do this at all (embeddings from a chat-only model)."""


class PromptTooLargeError(InferenceError):
    """The question does not fit the model's context or the router's input limit."""


class RequestRejectedError(InferenceError):
    """The backend refused this particular request (bad parameters, a rejected API key)."""


class StreamInterruptedError(InferenceError):
    """An answer broke off after part of it had been shown. `partial` is the text shown so far."""

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


class InvalidOutputError(InferenceError):
    """The model's answer did not match the schema asked for, even after one retry."""


class NoBackendError(InferenceError):
    """No backend could take the request; the message lists why, briefly."""
