"""A loopback OpenAI-compatible server (what vLLM, llama.cpp's server and LM Studio speak), with a real model.

- `GET /v1/models`: `{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}`;
- `POST /v1/chat/completions`: with `"stream": true`, server-sent events `data: {chunk}` (blank line after
  each), ending with `data: [DONE]`. The chunks are llama.cpp's own (`create_chat_completion(stream=True)`
  produces OpenAI `chat.completion.chunk` objects), passed on as they come. Without streaming, one
  `chat.completion` object; a `response_format` of type `json_schema` constrains the answer with
  llama.cpp's grammar (this stand-in then takes the last user message as the prompt);
- `POST /v1/embeddings`: `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}]}`;
- errors as OpenAI's `{"error": {"message", "type", "code"}}`: 404 for an unknown model, 503 when busy.

Fault switches (`server.faults`): `refuse`, `drop_after` (cut the connection after that many content
chunks), `omit_done` (end the stream without `[DONE]` or a finish reason). `server.requests` records the
calls with their headers.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from aurora.app.inference import ChatMessage, ChatRequest, LocalLlamaBackend
from tests.inference.embedder import Embedder
from tests.inference.loopback import LoopbackServer
from tests.inference.ollama_server import Recorded

MODEL = "smollm2-135m-instruct"


@dataclass
class Faults:
    refuse: bool = False
    drop_after: int | None = None
    omit_done: bool = False


class _Dropped(Exception):
    pass


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


class OpenAIServer:
    def __init__(self, backend: LocalLlamaBackend, embedder: Embedder) -> None:
        self.backend = backend
        self.embedder = embedder
        self.faults = Faults()
        self.requests: list[Recorded] = []
        self._loopback = LoopbackServer(self._build(), "openai stand-in")
        self.url = self._loopback.url

    def start(self) -> OpenAIServer:
        self._loopback.start()
        return self

    def stop(self) -> None:
        self._loopback.stop()

    def reset(self) -> None:
        self.faults = Faults()
        self.requests.clear()

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models(request: Request) -> dict[str, Any]:
            self.requests.append(Recorded("/v1/models", {}, dict(request.headers)))
            entry = {"id": MODEL, "object": "model", "created": 1_732_000_000, "owned_by": "llamacpp"}
            return {"object": "list", "data": [entry]}

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> Response:
            body = await request.json()
            self.requests.append(Recorded("/v1/chat/completions", body, dict(request.headers)))
            if self.faults.refuse:
                return _error(503, "The server is busy", "server_error")
            if body.get("model") != MODEL:
                return _error(404, f"The model `{body.get('model')}` does not exist", "invalid_request_error")
            messages = [ChatMessage(role=m["role"], content=m.get("content") or "") for m in body["messages"]]
            req = ChatRequest(
                model=None,
                messages=messages,
                temperature=float(body.get("temperature", 0.8)),
                max_tokens=int(body.get("max_tokens") or 128),
                stop=list(body.get("stop") or []),
            )
            if not body.get("stream"):
                return await self._whole(body, req)
            faults = self.faults

            async def events() -> AsyncIterator[bytes]:
                sent = 0
                async with contextlib.aclosing(self.backend.completion_chunks(req)) as chunks:
                    async for chunk in chunks:
                        choice = chunk["choices"][0]
                        has_text = bool((choice.get("delta") or {}).get("content"))
                        if faults.omit_done and choice.get("finish_reason"):
                            return
                        if has_text and faults.drop_after is not None and sent >= faults.drop_after:
                            raise _Dropped
                        yield f"data: {json.dumps({**chunk, 'model': MODEL})}\n\n".encode()
                        sent += has_text
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        @app.post("/v1/embeddings")
        async def embeddings(request: Request) -> Response:
            body = await request.json()
            self.requests.append(Recorded("/v1/embeddings", body, dict(request.headers)))
            if body.get("model") != MODEL:
                return _error(404, f"The model `{body.get('model')}` does not exist", "invalid_request_error")
            raw = body.get("input", "")
            texts = [raw] if isinstance(raw, str) else [str(t) for t in raw]
            vectors = await self.embedder.embed(texts)
            data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
            return JSONResponse({"object": "list", "data": data, "model": MODEL})

        return app

    async def _whole(self, body: dict[str, Any], req: ChatRequest) -> Response:
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
            prompt = next(m.content for m in reversed(req.messages) if m.role == "user")
            text = await self.backend.generate(prompt, schema=schema, max_tokens=req.max_tokens)
        else:
            parts = []
            async with contextlib.aclosing(self.backend.chat(req)) as chunks:
                async for chunk in chunks:
                    parts.append(chunk.text)
            text = "".join(parts)
        return JSONResponse(
            {
                "id": f"chatcmpl-{time.time_ns()}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": MODEL,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
            }
        )
