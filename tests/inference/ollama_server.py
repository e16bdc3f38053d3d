"""A loopback server that speaks Ollama's documented API, answering with a real model.

Ollama itself cannot be installed here (DESIGN.md section 5), so this stands in for it: FastAPI on uvicorn
in a thread, on a free port, with the shapes of Ollama's API documentation (docs/api.md):

- `GET /api/tags`: `{"models": [{"name", "model", "modified_at", "size", "digest", "details"}]}`;
- `POST /api/chat`: NDJSON by default (`application/x-ndjson`), one object per token with
  `message.content`, then a final object with `done: true`, `done_reason`, `total_duration`,
  `load_duration`, `prompt_eval_count`, `prompt_eval_duration`, `eval_count`, `eval_duration` (durations in
  nanoseconds); `"stream": false` gives the whole answer in one such object;
- `POST /api/generate`: the same with `response` instead of `message`, and `format` (`"json"` or a JSON
  schema) constraining the answer;
- `POST /api/embed`: `{"model", "embeddings": [[...], ...]}`, unit-length vectors, for `input` a string
  or a list;
- errors as `{"error": "..."}` with a status: 404 `model "x" not found, try pulling it first`, 400 for a
  prompt longer than the context (this stand-in refuses it rather than cutting it), 503 when busy.

Answers are real: the model is SmolLM2-135M-Instruct run by llama.cpp through `LocalLlamaBackend`, so
tokens, JSON-schema grammar and cancellation are the real thing. Embeddings are real too: the same GGUF in
llama.cpp's embedding mode, mean-pooled (see `tests.inference.embedder`).

Fault switches (`server.faults`, reset between tests): `refuse` (503 on chat, generate and embed),
`hang_s` (wait that long before answering chat or generate, giving up when the client leaves),
`drop_after` (after that many content chunks, `drop_mode` "abort" kills the connection mid-body and "end"
closes the stream cleanly but without the final `done` object), `invalid_json` (the next N schema
generations answer with broken JSON), `token_delay_s` (a slow host). `server.requests` records each call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from aurora.app.inference import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    LocalLlamaBackend,
    PromptTooLargeError,
    default_model_path,
)
from tests.inference.embedder import Embedder
from tests.inference.loopback import LoopbackServer

MODEL = "smollm2:135m"
BROKEN_JSON = '{"name": "Ada", "age": '
"""What an `invalid_json` fault answers: JSON cut off mid-object."""


@dataclass
class Faults:
    refuse: bool = False
    hang_s: float = 0.0
    drop_after: int | None = None
    drop_mode: Literal["abort", "end"] = "abort"
    invalid_json: int = 0
    token_delay_s: float = 0.0


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class _Dropped(Exception):
    """Raised inside a streaming body to make uvicorn cut the connection mid-answer."""


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class OllamaServer:
    def __init__(self, backend: LocalLlamaBackend, embedder: Embedder) -> None:
        self.backend = backend
        self.embedder = embedder
        self.faults = Faults()
        self.requests: list[Recorded] = []
        self.app = self._build()
        self._loopback = LoopbackServer(self.app, "ollama stand-in")
        self.url = self._loopback.url
        path = default_model_path()
        self._size = path.stat().st_size
        with path.open("rb") as f:  # the first MiB is enough to tell models apart
            self._digest = "sha256:" + hashlib.sha256(f.read(1 << 20)).hexdigest()

    def start(self) -> OllamaServer:
        self._loopback.start()
        return self

    def stop(self) -> None:
        self._loopback.stop()

    def reset(self) -> None:
        self.faults = Faults()
        self.requests.clear()

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    # --- helpers -----------------------------------------------------------------------------------------

    def _stats(
        self, started: float, prompt_tokens: int | None, completion_tokens: int | None
    ) -> dict[str, Any]:
        total = int((time.perf_counter() - started) * 1e9)
        return {
            "total_duration": total,
            "load_duration": 0,
            "prompt_eval_count": prompt_tokens or 0,
            "prompt_eval_duration": total // 10,
            "eval_count": completion_tokens or 0,
            "eval_duration": total - total // 10,
        }

    async def _hang(self, request: Request) -> bool:
        """Sit out `faults.hang_s`; False if the client left meanwhile."""
        deadline = time.monotonic() + self.faults.hang_s
        while time.monotonic() < deadline:
            if await request.is_disconnected():
                return False
            await asyncio.sleep(0.05)
        return True

    async def _answer(self, request: Request, chat: ChatRequest, shape: str, stream: bool) -> Response:
        """Stream `chat` as Ollama's `shape` ("message" for /api/chat, "response" for /api/generate)."""
        started = time.perf_counter()
        if self.faults.hang_s and not await self._hang(request):
            return Response(status_code=499)
        chunks = self.backend.chat(chat)
        try:
            first = await anext(chunks)
        except PromptTooLargeError:
            await chunks.aclose()
            return _error(400, "the input length exceeds the context length")

        def line(text: str, done: bool, last: ChatChunk | None = None) -> dict[str, Any]:
            body: dict[str, Any] = {"model": MODEL, "created_at": _now()}
            if shape == "message":
                body["message"] = {"role": "assistant", "content": text}
            else:
                body["response"] = text
            body["done"] = done
            if done and last is not None:
                body["done_reason"] = last.finish_reason or "stop"
                body.update(self._stats(started, last.prompt_tokens, last.completion_tokens))
            return body

        if not stream:
            parts = [first.text]
            last = first
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    parts.append(chunk.text)
                    last = chunk
            return JSONResponse(line("".join(parts), True, last))

        faults = self.faults

        async def body() -> AsyncIterator[bytes]:
            sent = 0
            async with contextlib.aclosing(chunks):
                chunk: ChatChunk | None = first
                while chunk is not None:
                    if chunk.done:
                        yield (json.dumps(line(chunk.text, True, chunk)) + "\n").encode()
                        return
                    if faults.drop_after is not None and sent >= faults.drop_after:
                        if faults.drop_mode == "abort":
                            raise _Dropped
                        return
                    if faults.token_delay_s:
                        await asyncio.sleep(faults.token_delay_s)
                    yield (json.dumps(line(chunk.text, False)) + "\n").encode()
                    sent += 1
                    chunk = await anext(chunks, None)

        return StreamingResponse(body(), media_type="application/x-ndjson")

    def _options(self, body: dict[str, Any]) -> tuple[float, int, list[str]]:
        options = body.get("options") or {}
        stop = options.get("stop") or []
        return float(options.get("temperature", 0.8)), int(options.get("num_predict", 128)), list(stop)

    def _record(self, path: str, body: dict[str, Any], request: Request) -> None:
        self.requests.append(Recorded(path, body, dict(request.headers)))

    # --- routes ------------------------------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/")
        async def root() -> PlainTextResponse:
            return PlainTextResponse("Ollama is running")

        @app.get("/api/version")
        async def version() -> dict[str, str]:
            return {"version": "0.12.6"}

        @app.get("/api/tags")
        async def tags(request: Request) -> dict[str, Any]:
            self._record("/api/tags", {}, request)
            model = {
                "name": MODEL,
                "model": MODEL,
                "modified_at": "2026-11-20T10:00:00.000000000Z",
                "size": self._size,
                "digest": self._digest,
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": "llama",
                    "families": ["llama"],
                    "parameter_size": "135M",
                    "quantization_level": "Q4_1",
                },
            }
            return {"models": [model]}

        @app.post("/api/chat")
        async def chat(request: Request) -> Response:
            body = await request.json()
            self._record("/api/chat", body, request)
            if self.faults.refuse:
                return _error(503, "server busy, please try again.  maximum pending requests exceeded")
            if body.get("model") != MODEL:
                return _error(404, f'model "{body.get("model")}" not found, try pulling it first')
            temperature, num_predict, stop = self._options(body)
            messages = [ChatMessage(role=m["role"], content=m.get("content", "")) for m in body["messages"]]
            req = ChatRequest(
                model=MODEL, messages=messages, temperature=temperature, max_tokens=num_predict, stop=stop
            )
            return await self._answer(request, req, "message", bool(body.get("stream", True)))

        @app.post("/api/generate")
        async def generate(request: Request) -> Response:
            body = await request.json()
            self._record("/api/generate", body, request)
            if self.faults.refuse:
                return _error(503, "server busy, please try again.  maximum pending requests exceeded")
            if body.get("model") != MODEL:
                return _error(404, f'model "{body.get("model")}" not found, try pulling it first')
            temperature, num_predict, _ = self._options(body)
            fmt = body.get("format")
            prompt = str(body.get("prompt") or "")
            if fmt:
                started = time.perf_counter()
                if self.faults.hang_s and not await self._hang(request):
                    return Response(status_code=499)
                if self.faults.invalid_json > 0:
                    self.faults.invalid_json -= 1
                    text = BROKEN_JSON
                else:
                    schema = {"type": "object"} if fmt == "json" else fmt
                    try:
                        text = await self.backend.generate(prompt, schema=schema, max_tokens=num_predict)
                    except PromptTooLargeError:
                        return _error(400, "the input length exceeds the context length")
                answer = {"model": MODEL, "created_at": _now(), "response": text, "done": True}
                answer.update({"done_reason": "stop", **self._stats(started, None, None)})
                return JSONResponse(answer)
            messages = [ChatMessage(role="user", content=prompt)]
            if body.get("system"):
                messages.insert(0, ChatMessage(role="system", content=str(body["system"])))
            req = ChatRequest(model=MODEL, messages=messages, temperature=temperature, max_tokens=num_predict)
            return await self._answer(request, req, "response", bool(body.get("stream", True)))

        @app.post("/api/embed")
        async def embed(request: Request) -> Response:
            body = await request.json()
            self._record("/api/embed", body, request)
            if self.faults.refuse:
                return _error(503, "server busy, please try again.  maximum pending requests exceeded")
            if body.get("model") != MODEL:
                return _error(404, f'model "{body.get("model")}" not found, try pulling it first')
            raw = body.get("input", "")
            texts = [raw] if isinstance(raw, str) else [str(t) for t in raw]
            started = time.perf_counter()
            vectors = await self.embedder.embed(texts)
            answer = {"model": MODEL, "embeddings": vectors, **self._stats(started, None, None)}
            return JSONResponse(answer)

        return app
