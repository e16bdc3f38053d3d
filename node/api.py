"""The node's HTTP and WebSocket API (FastAPI on uvicorn), routes under `/v1`.

Every request body is a pydantic model with limits (`aurora.sync.protocol`), bodies over `MAX_BODY` are
refused before they are read, and every error is JSON `{"error": {"code": ..., "message": ...}}` with a
stable code; an unexpected failure is logged here and answered as `internal` with no traceback.

Authenticated routes take `Authorization: Bearer <access token>`; each request also checks the registry,
so a device revoked a moment ago is refused at once, and records when the device was last seen.
"""

# No `from __future__ import annotations` here: FastAPI reads the route signatures' annotations at run time.
import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aurora.node import auth
from aurora.node.auth import AuthError
from aurora.node.config import NodeSettings
from aurora.node.db import Database
from aurora.node.events import EventHub
from aurora.node.oplog import PgActionLog
from aurora.node.registry import DeviceInfo, Registry
from aurora.schema.migrate import latest_version
from aurora.sync.protocol import MAX_BATCH, PROTOCOL_VERSION, PullResponse, PushRequest, PushResponse

VERSION = "0.1.0"
MAX_BODY = 8 * 1024 * 1024
"""Largest request body (a full push batch of large operations fits well within it)."""
log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class PairRequest(BaseModel):
    code: str = Field(min_length=1, max_length=40)
    name: str = Field(default="", max_length=100)
    device_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    """The id the laptop already stamps its operations with; the node registers the device under it."""


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class TokenResponse(BaseModel):
    device_id: str
    node_id: str
    access_token: str
    refresh_token: str
    expires_in: int


class Health(BaseModel):
    status: str
    node_id: str
    version: str
    protocol: int = PROTOCOL_VERSION


class Ready(BaseModel):
    status: str
    schema_version: int


_AUTH_STATUS = {
    "token_expired": 401,
    "unauthorized": 401,
    "token_reused": 401,
    "device_revoked": 403,
    "invalid_code": 400,
    "device_exists": 409,
    "invalid_request": 422,
}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class BodyLimit:
    """Refuses a request body over `limit` bytes (by its Content-Length, or as it streams in) with 413."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _error(413, "too_large", f"the request body is over {self.limit} bytes")(
                scope, receive, send
            )
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise ApiError(413, "too_large", f"the request body is over {self.limit} bytes")
            return message

        await self.app(scope, counted, send)


@dataclass
class NodeState:
    db: Database
    log: PgActionLog
    registry: Registry
    hub: EventHub
    node_id: str
    secret: str


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "aurora_node_requests_total", "HTTP requests", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "aurora_node_request_seconds", "HTTP request latency", ["route"], registry=self.registry
        )
        self.pushed = Counter(
            "aurora_node_ops_pushed_total", "Operations stored from pushes", registry=self.registry
        )
        self.pulled = Counter(
            "aurora_node_ops_pulled_total", "Operations served to pulls", registry=self.registry
        )
        self.online = Gauge(
            "aurora_node_devices_online",
            "Devices with a live WebSocket to this process",
            registry=self.registry,
        )


def create_app(settings: NodeSettings | None = None, *, database: Database | None = None) -> FastAPI:
    """The node's ASGI app. With `database`, the caller owns it (opened and migrated); otherwise the app
    opens one from `settings` at start and closes it at shutdown."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = database
        owned = db is None
        if db is None:
            db = await Database.start(settings or NodeSettings())
            await db.migrate()
        node_id, secret = await auth.node_identity(db.pool)
        oplog = PgActionLog(db.pool)
        hub = EventHub(db.conninfo, db.connect_kwargs)
        hub.head = await oplog.head()
        await hub.start()
        app.state.node = NodeState(db, oplog, Registry(db.pool), hub, node_id, secret)
        try:
            yield
        finally:
            await hub.stop()
            if owned:
                await db.close()

    app = FastAPI(
        title="aurora-node",
        version=VERSION,
        lifespan=lifespan,
        responses={
            400: {"model": ErrorResponse},
            409: {"model": ErrorResponse},
            401: {"model": ErrorResponse},
            403: {"model": ErrorResponse},
            413: {"model": ErrorResponse},
            422: {"model": ErrorResponse},
        },
    )
    app.add_middleware(BodyLimit)

    def node(request: Request) -> NodeState:
        state: NodeState = request.app.state.node
        return state

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return _error(error.status, error.code, error.message)

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, error: AuthError) -> JSONResponse:
        return _error(_AUTH_STATUS.get(error.code, 401), error.code, error.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}"[:300])

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return _error(error.status_code, codes.get(error.status_code, "http_error"), str(error.detail)[:300])

    @app.exception_handler(Exception)
    async def _internal(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal", "the node failed on this request; see its log")

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        route = request.scope.get("route")
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        metrics.requests.labels(name, str(response.status_code)).inc()
        metrics.latency.labels(name).observe(time.perf_counter() - start)
        return response

    async def device(
        request: Request, authorization: Annotated[str | None, Header()] = None,
        x_aurora_version: Annotated[str | None, Header(max_length=40)] = None,
    ) -> str:  # fmt: skip
        state = node(request)
        return await _authenticate(state, authorization, x_aurora_version)

    Device = Annotated[str, Depends(device)]

    @app.get("/healthz", response_model=Health)
    @app.get("/v1/healthz", response_model=Health)
    async def healthz(request: Request) -> Health:
        return Health(status="ok", node_id=node(request).node_id, version=VERSION)

    @app.get("/readyz", response_model=Ready, responses={503: {"model": ErrorResponse}})
    async def readyz(request: Request) -> Ready | JSONResponse:
        state = node(request)
        try:
            version = await state.db.schema_version()
        except Exception as error:
            return _error(503, "database_unreachable", f"PostgreSQL is not answering: {str(error)[:200]}")
        if version != latest_version("postgres"):
            return _error(503, "migrations_pending", f"schema at {version}; run `aurora-node migrate`")
        return Ready(status="ready", schema_version=version)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus(request: Request) -> Response:
        metrics.online.set(node(request).hub.online)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/pair", response_model=TokenResponse)
    async def pair(body: PairRequest, request: Request) -> TokenResponse:
        tokens = await auth.redeem(node(request).db.pool, body.code, body.name or None, body.device_id)
        return TokenResponse(**tokens.__dict__)

    @app.post("/v1/token/refresh", response_model=TokenResponse)
    async def refresh(body: RefreshRequest, request: Request) -> TokenResponse:
        tokens = await auth.refresh(node(request).db.pool, body.refresh_token)
        return TokenResponse(**tokens.__dict__)

    @app.post("/v1/ops/push", response_model=PushResponse)
    async def push(body: PushRequest, request: Request, device_id: Device) -> PushResponse:
        answer = await node(request).log.push(device_id, body)
        metrics.pushed.inc(len(answer.accepted))
        return answer

    @app.get("/v1/ops", response_model=PullResponse)
    async def pull(
        request: Request,
        device_id: Device,
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_BATCH)] = MAX_BATCH,
    ) -> PullResponse:
        state = node(request)
        answer = await state.log.pull(device_id, after, limit)
        await state.registry.seen(device_id, cursor=after)
        metrics.pulled.inc(len(answer.ops))
        return answer

    @app.get("/v1/devices", response_model=list[DeviceInfo])
    async def devices(request: Request, device_id: Device) -> list[DeviceInfo]:
        return await node(request).registry.list()

    @app.websocket("/v1/events")
    async def events(websocket: WebSocket) -> None:
        state: NodeState = websocket.app.state.node
        token = websocket.headers.get("authorization")
        try:
            await _authenticate(state, token, websocket.headers.get("x-aurora-version"))
        except AuthError as error:
            await websocket.close(code=4401 if error.code != "device_revoked" else 4403, reason=error.code)
            return
        await websocket.accept()
        queue = state.hub.subscribe()
        try:
            await websocket.send_json({"type": "head", "head": state.hub.head})
            receiver = asyncio.create_task(websocket.receive())
            while True:
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({receiver, getter}, return_when=asyncio.FIRST_COMPLETED)
                if receiver in done:
                    getter.cancel()
                    message = receiver.result()
                    if message.get("type") == "websocket.disconnect":
                        return
                    receiver = asyncio.create_task(websocket.receive())
                    continue
                await websocket.send_json(getter.result().model_dump())
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            state.hub.unsubscribe(queue)
            with contextlib.suppress(Exception):
                receiver.cancel()

    return app


async def _authenticate(state: NodeState, header: str | None, version: str | None) -> str:
    if not header or not header.lower().startswith("bearer "):
        raise AuthError(
            "unauthorized", "this route needs `Authorization: Bearer <token>`; pair the device first"
        )
    device_id = auth.verify_access(state.secret, state.node_id, header[7:].strip())
    if not await state.registry.touch(device_id, version):
        raise AuthError("device_revoked", "this device was revoked on the node; pair it again")
    return device_id


def serve(settings: NodeSettings) -> None:
    """Run the node until interrupted (uvicorn, one process)."""
    import uvicorn

    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level="info", access_log=False
    )


__all__: list[Any] = ["create_app", "serve"]
