"""`OllamaBackend`: one Ollama host, through the official `ollama.AsyncClient`.

Calls: `/api/chat` streamed (NDJSON), `/api/generate` with `format=<JSON schema>` for structured output,
`/api/embed`, and `/api/tags` for health and the model list. The client gets an `httpx.Timeout` per phase,
so a dead or silent host is noticed in `timeouts.connect` / `timeouts.read` seconds.

Errors are mapped to one-line `InferenceError`s that name the host and what to do. The client raises
`ResponseError` (with the HTTP status) for Ollama's `{"error": "..."}` answers, `ConnectionError` for a
refused connection on a plain call, and, on a stream, httpx's own errors (`ConnectError`, `ReadTimeout`,
`RemoteProtocolError` when the connection drops mid-answer). A stream that ends without Ollama's final
`done: true` object is an interrupted answer too, never a silently short one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import httpx
import ollama
import pydantic

from aurora.app.inference.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    InferenceError,
    ModelNotFoundError,
    PromptTooLargeError,
    RequestRejectedError,
    one_line,
)
from aurora.app.inference.probe import choose_model, probe
from aurora.app.inference.types import BackendHealth, ChatChunk, ChatRequest, JsonSchema, Timeouts

DEFAULT_HOST = "http://127.0.0.1:11434"


class OllamaBackend:
    def __init__(
        self,
        host: str = DEFAULT_HOST,
        *,
        timeouts: Timeouts | None = None,
        default_model: str | None = None,
        name: str | None = None,
    ) -> None:
        self._host = host.rstrip("/")
        self._timeouts = timeouts or Timeouts()
        self._default_model = default_model
        self._name = name or f"ollama@{httpx.URL(self._host).host or self._host}"
        t = self._timeouts
        self._client = ollama.AsyncClient(
            host=self._host,
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool),
            trust_env=False,  # a node on the LAN or the tunnel is reached directly, never through a proxy
        )
        self._known_models: list[str] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def host(self) -> str:
        return self._host

    # --- error mapping ---------------------------------------------------------------------------------

    def _error(self, error: BaseException, model: str | None = None) -> InferenceError:
        where = f"Ollama at {self._host}"
        if isinstance(error, InferenceError):
            return error
        if isinstance(error, ollama.ResponseError):
            status, said = error.status_code, one_line(error.error, 160)
            if status == 404 or "not found" in said.lower():
                wanted = model or "the model"
                return ModelNotFoundError(
                    f"{where} has no model {wanted} ({said}): run `ollama pull {wanted}` or pick another"
                )
            if "context length" in said.lower() or status == 413:
                return PromptTooLargeError(f"The question is too long for {where} ({said}): shorten it")
            if status in (400, 401, 403, 422):
                return RequestRejectedError(
                    f"{where} rejected the request ({status}: {said}): check the settings"
                )
            if status == -1:  # an error object inside an otherwise fine stream
                return BackendUnavailableError(f"{where} stopped with an error ({said}): try again")
            return BackendUnavailableError(
                f"{where} refused the request ({status}: {said}): try again shortly"
            )
        if isinstance(error, (ConnectionError, httpx.ConnectError)):
            return BackendUnavailableError(
                f"{where} is not reachable: start it (`ollama serve`) or check the host in settings"
            )
        if isinstance(error, httpx.TimeoutException):
            phase = "connect" if isinstance(error, httpx.ConnectTimeout) else "answer"
            limit = self._timeouts.connect if phase == "connect" else self._timeouts.read
            return BackendTimeoutError(
                f"{where} did not {phase} within {limit:g} s: check that it is running and not overloaded"
            )
        if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
            return BackendUnavailableError(f"{where} dropped the connection mid-answer: try again")
        if isinstance(error, (json.JSONDecodeError, pydantic.ValidationError, KeyError, TypeError)):
            return BackendUnavailableError(f"{where} sent something that is not Ollama's API: check the host")
        if isinstance(error, httpx.HTTPError):
            return BackendUnavailableError(f"{where} failed ({one_line(error, 120)}): try again")
        return BackendUnavailableError(f"{where} failed unexpectedly ({one_line(repr(error), 120)})")

    # --- calls ---------------------------------------------------------------------------------------

    async def _model_for(self, model: str | None) -> str:
        return await choose_model(
            model, self._default_model, self._known_models, self.models,
            f"Ollama at {self._host} has no models: run `ollama pull <model>` there",
        )  # fmt: skip

    async def models(self) -> list[str]:
        try:
            listed = await self._client.list()
        except Exception as error:
            raise self._error(error) from None
        self._known_models = [m.model for m in listed.models if m.model]
        return list(self._known_models)

    async def health(self) -> BackendHealth:
        """A model listing, bounded by twice the connect timeout."""
        return await probe(self.models, 2 * self._timeouts.connect, f"Ollama at {self._host}")

    async def chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        model = await self._model_for(request.model)
        options: dict[str, Any] = {"temperature": request.temperature, "num_predict": request.max_tokens}
        if request.stop:
            options["stop"] = list(request.stop)
        messages: list[Mapping[str, Any]] = [m.model_dump() for m in request.messages]
        stream: AsyncIterator[ollama.ChatResponse] | None = None
        finished = False
        try:
            stream = await self._client.chat(model=model, messages=messages, stream=True, options=options)
            async for part in stream:
                text = part.message.content or ""
                if part.done:
                    finished = True
                    yield ChatChunk(
                        text=text,
                        done=True,
                        backend=self._name,
                        model=part.model or model,
                        finish_reason=part.done_reason or "stop",
                        prompt_tokens=part.prompt_eval_count,
                        completion_tokens=part.eval_count,
                    )
                    return
                if text:
                    yield ChatChunk(text=text, done=False, backend=self._name, model=part.model or model)
        except Exception as error:
            raise self._error(error, model) from None
        finally:
            if stream is not None:
                await stream.aclose()  # type: ignore[attr-defined]
        if not finished:
            raise BackendUnavailableError(f"Ollama at {self._host} ended the answer before it was finished")

    async def generate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        schema: JsonSchema | None = None,
        max_tokens: int = 512,
    ) -> str:
        name = await self._model_for(model)
        options = {"temperature": 0.0 if schema is not None else 0.7, "num_predict": max_tokens}
        try:
            result = await self._client.generate(
                model=name, prompt=prompt, format=schema, stream=False, options=options
            )
        except Exception as error:
            raise self._error(error, name) from None
        return result.response or ""

    async def embed(self, texts: list[str], *, model: str | None = None) -> list[list[float]]:
        name = await self._model_for(model)
        try:
            result = await self._client.embed(model=name, input=texts)
        except Exception as error:
            raise self._error(error, name) from None
        if len(result.embeddings) != len(texts):
            raise BackendUnavailableError(
                f"Ollama at {self._host} returned {len(result.embeddings)} vectors for {len(texts)} texts"
            )
        return [list(map(float, v)) for v in result.embeddings]

    async def aclose(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]
