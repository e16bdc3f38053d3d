"""Inference: backends (Ollama, OpenAI-compatible servers, an in-process llama.cpp model) and the router.

    router = Router([OllamaBackend("http://10.0.0.1:11434"), LocalLlamaBackend()], first_token_timeout=20)
    question = ChatRequest(messages=[ChatMessage(role="user", content=q)])
    async with contextlib.aclosing(router.chat(question)) as answer:
        async for chunk in answer:
            show(chunk.text)

Importing this package loads neither llama.cpp nor torch: `LocalLlamaBackend` imports llama_cpp on its
first request, and says `pip install 'aurora[local-llm]'` in one line when it is missing. Nothing here
imports Textual, the node or the laptop's store (DESIGN.md section 1): the node uses this package as is.
"""

from typing import TYPE_CHECKING

from aurora.app.inference.circuit import Circuit
from aurora.app.inference.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    InferenceError,
    InvalidOutputError,
    LocalModelUnavailableError,
    ModelNotFoundError,
    NoBackendError,
    PromptTooLargeError,
    RequestRejectedError,
    StreamInterruptedError,
    UnsupportedError,
)
from aurora.app.inference.local_backend import DEFAULT_MODEL_NAME, LocalLlamaBackend, default_model_path
from aurora.app.inference.ollama_backend import OllamaBackend
from aurora.app.inference.openai_backend import OpenAICompatibleBackend
from aurora.app.inference.router import Router, serves
from aurora.app.inference.types import (
    Backend,
    BackendHealth,
    BackendStatus,
    ChatChunk,
    ChatMessage,
    ChatRequest,
    EmbedResult,
    GenerateResult,
    RouterStatus,
    Timeouts,
)

if TYPE_CHECKING:  # mypy checks here that every backend has the shape the router needs
    _BACKENDS: tuple[type[Backend], ...] = (OllamaBackend, OpenAICompatibleBackend, LocalLlamaBackend)

__all__ = [
    "DEFAULT_MODEL_NAME",
    "Backend",
    "BackendHealth",
    "BackendStatus",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "ChatChunk",
    "ChatMessage",
    "ChatRequest",
    "Circuit",
    "EmbedResult",
    "GenerateResult",
    "InferenceError",
    "InvalidOutputError",
    "LocalLlamaBackend",
    "LocalModelUnavailableError",
    "ModelNotFoundError",
    "NoBackendError",
    "OllamaBackend",
    "OpenAICompatibleBackend",
    "PromptTooLargeError",
    "RequestRejectedError",
    "Router",
    "RouterStatus",
    "StreamInterruptedError",
    "Timeouts",
    "UnsupportedError",
    "default_model_path",
    "serves",
]
