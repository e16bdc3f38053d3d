"""The node's HTTP and WebSocket API (FastAPI on uvicorn), routes under `/v1`.

Every request body is a pydantic model with limits (`aurora.sync.protocol`), bodies over `MAX_BODY` are
refused before they are read, and every error is JSON `{"error": {"code": ..., "message": ...}}` with a
stable code; an unexpected failure is logged here and answered as `internal` with no traceback.

Authenticated routes take `Authorization: Bearer <access token>`; each request also reads the registry,
so a device revoked a moment ago is refused at once. When the device was last seen, its version and its
pull cursor are noted in memory and written every couple of seconds (`aurora.node.registry`), not on
every request: the devices list another process shows may lag by that much.
"""

# No `from __future__ import annotations` here: FastAPI reads the route signatures' annotations at run time.
import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, Header, Request, WebSocket, WebSocketDisconnect
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
from aurora.node.idle_pulls import IdlePulls
from aurora.node.mood_api import mood_router
from aurora.node.oplog import PgActionLog
from aurora.node.pull_query import InvalidPull, pull_parameters, read_pull
from aurora.node.registry import DeviceInfo, Registry
from aurora.node.vectors_api import vectors_router
from aurora.schema.migrate import latest_version
from aurora.sync.batch import prepare as prepare_batch_checks
from aurora.sync.protocol import PROTOCOL_VERSION, PullResponse, PushRequest, PushResponse

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
    name: str = Field(default="", max_length=100, pattern=r"^[^\x00]*$")
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


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class BodyLimit:
    """Refuses a request body over `limit` bytes (by its Content-Length, or as it streams in) with 413."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        declared = next((value for key, value in headers if key == b"content-length"), None)
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.limit:
                await _error(413, "too_large", f"the request body is over {self.limit} bytes")(
                    scope, receive, send
                )
                return
            if not any(key == b"transfer-encoding" for key, _ in headers):
                # The server reads no more than a declared length, so the body cannot outgrow it. (With
                # a Transfer-Encoding as well, h11 reads the chunks whatever the length says: counted.)
                await self.app(scope, receive, send)
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


class AccessTokens:
    """`auth.verify_access` for this node, remembering the tokens it has accepted until they expire.

    A device sends the same access token with every request for its lifetime (minutes), and checking
    its signature and claims each time cost more than the rest of an empty pull's own work. Whatever
    made a token valid (signature, issuer, claims, issued-at) stays true of the same text, except
    expiry: so a remembered token is accepted again only before its `exp`, and checked in full after.
    Revocation is the registry's to refuse, on every request. Bounded: forgets everything at `limit`.
    """

    def __init__(self, secret: str, node_id: str, *, limit: int = 10_000) -> None:
        self._secret = secret
        self._node_id = node_id
        self._limit = limit
        self._accepted: dict[str, tuple[str, float]] = {}

    def verify(self, token: str) -> str:
        """The device id the token was issued to; AuthError if it is not (or no longer) valid."""
        held = self._accepted.get(token)
        if held is not None:
            if time.time() < held[1]:
                return held[0]
            del self._accepted[token]
        device_id = auth.verify_access(self._secret, self._node_id, token)
        expires = jwt.decode(token, options={"verify_signature": False}).get("exp")
        if isinstance(expires, int | float):
            if len(self._accepted) >= self._limit:
                self._accepted.clear()
            self._accepted[token] = (device_id, float(expires))
        return device_id


@dataclass
class NodeState:
    db: Database
    log: PgActionLog
    registry: Registry
    hub: EventHub
    node_id: str
    secret: str
    tokens: AccessTokens
    idle: IdlePulls


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


def create_app(
    settings: NodeSettings | None = None, *, database: Database | None = None, serving: bool = False
) -> FastAPI:
    """The node's ASGI app. With `database`, the caller owns it (opened and migrated); otherwise the app
    opens one from `settings` at start and closes it at shutdown. `serving`: the process serves the node
    until it exits (`aurora-node serve`), so what start-up loaded is frozen (`freeze_start_up_objects`)."""
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
        registry = Registry(db.pool)
        app.state.node = NodeState(
            db, oplog, registry, hub, node_id, secret, AccessTokens(secret, node_id), IdlePulls(db.pool)
        )
        flusher = asyncio.create_task(registry.run_flusher(), name="aurora-node registry")
        if serving:
            freeze_start_up_objects()
        try:
            yield
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            try:
                await registry.flush()
            except Exception as error:
                log.warning("could not record devices' last contact at shutdown (%s)", error)
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
    app.add_middleware(Measure, metrics=metrics)

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
        code = codes.get(error.status_code, "http_error")
        # Starlette's own headers kept: a 405 names the methods the route takes (`Allow`).
        return _error(error.status_code, code, str(error.detail)[:300], error.headers)

    @app.exception_handler(Exception)
    async def _internal(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal", "the node failed on this request; see its log")

    async def device(
        request: Request, authorization: Annotated[str | None, Header()] = None,
        x_aurora_version: Annotated[str | None, Header(max_length=40)] = None,
    ) -> str:  # fmt: skip
        return await _authenticate(node(request), authorization, x_aurora_version)

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
        state = node(request)
        # The body as received (Starlette keeps what FastAPI read): one check of the whole batch.
        answer = await state.log.push(device_id, body, await request.body())
        state.hub.publish(answer.head)  # committed: this process's pulls and sockets know it now
        metrics.pushed.inc(len(answer.accepted))
        if answer.accepted and any(op.get("entity") == "action" for op in body.ops):
            scheduler = getattr(request.app.state, "scheduler", None)
            if scheduler is not None:  # a question queued on a laptop: answer it now, not within a minute
                scheduler.answer_soon()
        return answer

    @app.get("/v1/ops", response_model=PullResponse, openapi_extra={"parameters": pull_parameters()})
    async def pull(request: Request) -> Response:
        # Parameters read by hand (`aurora.node.pull_query`): the busiest route skips FastAPI's solving.
        # The token first, as on every other route: a stranger learns nothing, not even what is invalid.
        state = node(request)
        device_id = state.tokens.verify(_bearer(request.headers.get("authorization")))
        try:
            params, version = read_pull(request.query_params, request.headers)
        except InvalidPull as error:
            raise ApiError(422, "invalid_request", str(error)[:300]) from None
        after = params.after
        if after >= state.hub.head:
            # Probably nothing new (this process knows of no newer operation): the head and the device's
            # standing, read with every other idle pull of the moment in one statement.
            idle = await state.idle.check(device_id)
            if not idle.active:
                raise _revoked()
            if after == idle.head:
                state.registry.note_seen(device_id, version, cursor=after)
                return Response(_empty_page(after), media_type="application/json")
        # The registry is checked in the pull's own statement (one round trip to PostgreSQL, not two); a
        # revoked device gets nothing of the page.
        page = await state.log.pull_json(device_id, after, params.limit)
        if not page.device_active:
            raise _revoked()
        state.registry.note_seen(device_id, version, cursor=after)
        metrics.pulled.inc(page.op_count)
        # The page is JSON already (a `PullResponse`, written by PostgreSQL from operations validated when
        # they were stored): sent as it is, not parsed into models to be dumped again.
        return Response(page.body, media_type="application/json")

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

    app.include_router(mood_router(device))  # GET /v1/mood, and the scheduler deriving it every 20 s
    app.include_router(vectors_router(device))  # POST /v1/vectors: the node's embeddings for laptops
    return app


def _empty_page(head: int) -> bytes:
    """The `PullResponse` of a device already at the head."""
    return b'{"ops":[],"cursor":%d,"head":%d,"more":false}' % (head, head)


def _bearer(header: str | None) -> str:
    if not header or not header.lower().startswith("bearer "):
        raise AuthError(
            "unauthorized", "this route needs `Authorization: Bearer <token>`; pair the device first"
        )
    return header[7:].strip()


def _revoked() -> AuthError:
    return AuthError("device_revoked", "this device was revoked on the node; pair it again")


async def _admit(state: NodeState, device_id: str, version: str | None) -> None:
    """Refuse a device that is unknown or revoked (one read: a revocation counts from the next request),
    and note that it was seen (written within a couple of seconds, off the request's path)."""
    if not await state.registry.is_active(device_id):
        raise _revoked()
    state.registry.note_seen(device_id, version)


async def _authenticate(state: NodeState, header: str | None, version: str | None) -> str:
    device_id = state.tokens.verify(_bearer(header))
    await _admit(state, device_id, version)
    return device_id


class Measure:
    """Counts requests by route and status and times them, for `/metrics` (a plain ASGI middleware: the
    `@app.middleware("http")` kind costs a task and a stream per request)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._series: dict[tuple[str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, sending)
        name = getattr(scope.get("route"), "path", "unmatched")
        key = (name, status)
        series = self._series.get(key)
        if series is None:  # each route and status's two series, looked up once (a lookup takes a lock)
            series = self.metrics.requests.labels(name, str(status)), self.metrics.latency.labels(name)
            self._series[key] = series
        series[0].inc()
        series[1].observe(time.perf_counter() - start)


def freeze_start_up_objects() -> None:
    """For a process that serves the node until it exits, once it has started: what is loaded by then
    (modules, the app, its models, the pool; ~100,000 objects) lives as long as the process, so it is moved
    out of the garbage collector's sight, and a full collection under load walks only what requests made
    (each walk of everything stalled every request in flight ~30 ms). Not for a process that goes on to
    other work (a test run): frozen objects that later become cyclic garbage are never collected.

    The youngest generation is collected every 50,000 allocations instead of 700 (the older two keep their
    thresholds): parsing one push of 2,000 operations allocates ~60,000 objects, which set off ~90
    collections and a full one every few pushes (~35 ms of a 10,000-operation push's ~450 ms of CPU,
    measured), while what a request makes is nearly all freed by reference counting when it ends."""
    prepare_batch_checks()  # built before the freeze: they live as long as the process
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000)


def serve(settings: NodeSettings) -> None:
    """Run the node until interrupted (uvicorn, one process). uvicorn's HTTP parser and event loop are left
    at "auto": it takes httptools and uvloop when they are installed (the node extra brings them)."""
    import uvicorn

    app = create_app(settings, serving=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", access_log=False)


__all__: list[Any] = ["create_app", "freeze_start_up_objects", "serve"]
