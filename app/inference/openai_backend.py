"""`OpenAICompatibleBackend`: any server that speaks OpenAI's API (vLLM, llama.cpp's server, LM Studio).

Over httpx, no SDK: `POST /v1/chat/completions` with `stream: true` (server-sent events: `data: {...}`
lines, ending with `data: [DONE]`), the same without streaming and with a `response_format` of type
`json_schema` for structured output, `POST /v1/embeddings`, and `GET /v1/models` for health.

`base_url` is the server's root or its `/v1` root; an `api_key` goes in `Authorization: Bearer` (and never
into a message or a repr). Proxies from the environment are ignored: these servers sit on the LAN.
A stream that closes before `[DONE]` or a `finish_reason` is an interrupted answer, raised as such.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx

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


def _said(response: httpx.Response) -> str:
    """The server's own words from an error body (OpenAI's `{"error": {"message"}}` and its cousins)."""
    try:
        body = response.json()
    except ValueError:
        return one_line(response.text or response.reason_phrase, 160)
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            return one_line(error, 160)
    return one_line(body, 160)


class OpenAICompatibleBackend:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeouts: Timeouts | None = None,
        default_model: str | None = None,
        name: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        self._root = root[: -len("/v1")] if root.endswith("/v1") else root
        self._timeouts = timeouts or Timeouts()
        self._default_model = default_model
        self._name = name or f"openai@{httpx.URL(self._root).host or self._root}"
        t = self._timeouts
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self._root,
            headers=headers,
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool),
            trust_env=False,
            transport=transport,
        )
        self._known_models: list[str] = []

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"OpenAICompatibleBackend({self._root!r})"

    # --- error mapping ---------------------------------------------------------------------------------

    def _status_error(self, response: httpx.Response, model: str | None) -> InferenceError:
        where, status, said = f"The server at {self._root}", response.status_code, _said(response)
        lowered = said.lower()
        if status == 404 or ("model" in lowered and "not found" in lowered):
            return ModelNotFoundError(f"{where} has no model {model or '(default)'} ({said}): pick another")
        if status == 413 or "context length" in lowered or "maximum context" in lowered:
            return PromptTooLargeError(f"The question is too long for {where} ({said}): shorten it")
        if status in (401, 403):
            return RequestRejectedError(f"{where} refused the API key ({status}): check the key in settings")
        if status in (400, 422):
            return RequestRejectedError(f"{where} rejected the request ({status}: {said})")
        return BackendUnavailableError(f"{where} refused the request ({status}: {said}): try again shortly")

    def _error(self, error: BaseException) -> InferenceError:
        where = f"The server at {self._root}"
        if isinstance(error, InferenceError):
            return error
        if isinstance(error, httpx.ConnectError):
            return BackendUnavailableError(
                f"{where} is not reachable: start it or check its address in settings"
            )
        if isinstance(error, httpx.TimeoutException):
            phase = "connect" if isinstance(error, httpx.ConnectTimeout) else "answer"
            limit = self._timeouts.connect if phase == "connect" else self._timeouts.read
            return BackendTimeoutError(
                f"{where} did not {phase} within {limit:g} s: check that it is running"
            )
        if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
            return BackendUnavailableError(f"{where} dropped the connection mid-answer: try again")
        if isinstance(error, (ValueError, KeyError, TypeError, IndexError)):
            return BackendUnavailableError(
                f"{where} does not speak OpenAI's API as expected: check the address"
            )
        if isinstance(error, httpx.HTTPError):
            return BackendUnavailableError(f"{where} failed ({one_line(error, 120)}): try again")
        return BackendUnavailableError(f"{where} failed unexpectedly ({one_line(repr(error), 120)})")

    async def _post(self, path: str, body: dict[str, Any], model: str | None) -> Any:
        try:
            response = await self._client.post(path, json=body)
            if response.status_code >= 400:
                raise self._status_error(response, model)
            return response.json()
        except Exception as error:
            raise self._error(error) from None

    # --- calls ---------------------------------------------------------------------------------------

    async def _model_for(self, model: str | None) -> str:
        return await choose_model(
            model, self._default_model, self._known_models, self.models,
            f"The server at {self._root} lists no models: load one there",
        )  # fmt: skip

    async def models(self) -> list[str]:
        try:
            response = await self._client.get("/v1/models")
            if response.status_code >= 400:
                raise self._status_error(response, None)
            self._known_models = [str(m["id"]) for m in response.json()["data"]]
        except Exception as error:
            raise self._error(error) from None
        return list(self._known_models)

    async def health(self) -> BackendHealth:
        """A model listing, bounded by twice the connect timeout."""
        return await probe(self.models, 2 * self._timeouts.connect, f"The server at {self._root}")

    async def chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        model = await self._model_for(request.model)
        body: dict[str, Any] = {
            "model": model,
            "messages": [m.model_dump() for m in request.messages],
            "stream": True,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        finish: str | None = None
        ended = False
        produced = 0
        try:
            async with self._client.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise self._status_error(response, model)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # blank separators, `: keep-alive` comments, `event:` names
                    data = line[len("data:") :].strip()
                    if data == "[DONE]":
                        ended = True
                        break
                    event = json.loads(data)
                    if event.get("error"):
                        err = event["error"]
                        said = one_line(err.get("message", err) if isinstance(err, dict) else err, 160)
                        raise BackendUnavailableError(
                            f"The server at {self._root} stopped with an error: {said}"
                        )
                    for choice in event.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content") or ""
                        finish = choice.get("finish_reason") or finish
                        if text:
                            produced += 1
                            yield ChatChunk(text=text, done=False, backend=self._name, model=model)
        except Exception as error:
            raise self._error(error) from None
        if not ended and finish is None:
            raise BackendUnavailableError(
                f"The server at {self._root} ended the answer before it was finished"
            )
        yield ChatChunk(
            text="",
            done=True,
            backend=self._name,
            model=model,
            finish_reason=finish or "stop",
            completion_tokens=produced,
        )

    async def generate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        schema: JsonSchema | None = None,
        max_tokens: int = 512,
    ) -> str:
        name = await self._model_for(model)
        body: dict[str, Any] = {
            "model": name,
            "messages": [{"role": "user", "content": prompt}],
            "stream": False,
            "max_tokens": max_tokens,
            "temperature": 0.0 if schema is not None else 0.7,
        }
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema, "strict": True},
            }
        answer = await self._post("/v1/chat/completions", body, name)
        try:
            return str(answer["choices"][0]["message"]["content"] or "")
        except Exception as error:
            raise self._error(error) from None

    async def embed(self, texts: list[str], *, model: str | None = None) -> list[list[float]]:
        name = await self._model_for(model)
        answer = await self._post("/v1/embeddings", {"model": name, "input": texts}, name)
        try:
            rows = sorted(answer["data"], key=lambda row: int(row.get("index", 0)))
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
        except Exception as error:
            raise self._error(error) from None
        if len(vectors) != len(texts):
            raise BackendUnavailableError(
                f"The server at {self._root} returned {len(vectors)} vectors for {len(texts)} texts"
            )
        return vectors

    async def aclose(self) -> None:
        await self._client.aclose()
