"""The laptop's client for its node's HTTP and WebSocket API.

Blocking calls over one `httpx.Client` (connect 3 s, read 10 s): the syncer runs them on a worker thread,
never on the UI's. Every answer is validated with the wire models of `aurora.sync.protocol` (and the small
models below for pairing, tokens and health); anything else is a one-line `NodeProtocolError`, never a
traceback.

Tokens: each request carries `Authorization: Bearer <access token>`. When the node answers 401
`token_expired`, the client trades the refresh token for new ones once (under a lock, and only if no other
thread has done so meanwhile: the node rotates refresh tokens and treats a reuse as theft, revoking the
device) and repeats the request. The new tokens are saved before they are used.

Identity: the node's id is remembered at pairing. Before the first push or pull, and again after any
network failure (a URL can start pointing at another machine), the client asks `/v1/healthz` and refuses a
node with another id: pushing a workspace into a stranger's node, or pulling theirs, cannot be undone.

Proxies from the environment are ignored: the node is reached directly, over the WireGuard tunnel or the
LAN, and an HTTP proxy would see the tokens.
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from aurora.app.credentials import CredentialsStore, NodeCredentials
from aurora.app.errors import AuroraError
from aurora.sync.batch import CheckedPage, check_page
from aurora.sync.ops import Operation
from aurora.sync.protocol import MAX_BATCH, PROTOCOL_VERSION, PullResponse, PushResponse

VERSION_HEADER = "X-Aurora-Version"
"""This laptop's Aurora version, which the node's device registry shows."""
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 10.0
_EXPIRY_MARGIN_S = 30.0
"""Refresh this long before the access token's stated expiry, saving a refused request."""

_M = TypeVar("_M", bound=BaseModel)
_AUTH_CODES = ("unauthorized", "token_expired", "token_reused")
"""Error codes that mean the node will not take this laptop's tokens (after one refresh, if expired)."""


# --- errors -----------------------------------------------------------------------------------------


class NodeError(AuroraError):
    """Talking to the node failed. `summary` is the few words a status bar shows."""

    summary: ClassVar[str] = "sync failed"
    needs_pairing: ClassVar[bool] = False
    """Retrying cannot help: the laptop must be paired again (or pointed at the right node)."""


class NotPairedError(NodeError):
    summary = "not paired"
    needs_pairing = True


class NodeUnreachableError(NodeError):
    summary = "node unreachable"


class NodeProtocolError(NodeError):
    summary = "node speaks another protocol"


class NodeAuthError(NodeError):
    summary = "node refused this laptop"
    needs_pairing = True


class DeviceRevokedError(NodeAuthError):
    summary = "this laptop was removed from the node"


class WrongNodeError(NodeError):
    summary = "a different node answered"
    needs_pairing = True


class NodeBusyError(NodeError):
    """The node asked to slow down (`rate_limited`); `retry_after` is its hint in seconds, if any."""

    summary = "node busy"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestTooLargeError(NodeError):
    summary = "request too large"


class PairingError(NodeError):
    summary = "pairing failed"


# --- the node's answers not covered by aurora.sync.protocol ------------------------------------------


class _Lenient(BaseModel):
    # Extra keys are ignored here: a newer node may say more about itself without breaking older laptops.
    model_config = ConfigDict(frozen=True, extra="ignore")


class TokenGrant(_Lenient):
    """`POST /v1/pair` and `POST /v1/token/refresh`."""

    device_id: str = Field(min_length=1, max_length=200)
    node_id: str = Field(min_length=1, max_length=200)
    access_token: str = Field(min_length=1, max_length=20_000, repr=False)
    refresh_token: str = Field(min_length=1, max_length=20_000, repr=False)
    expires_in: int = Field(ge=0, le=10**8)


class ChunkVector(_Lenient):
    ord: int = Field(ge=0, le=10**6)
    text_hash: str = Field(min_length=64, max_length=64)
    vector: str = Field(max_length=100_000)
    """float32s, little-endian, base64."""


class EntityVectors(_Lenient):
    entity: str = Field(max_length=32)
    entity_id: str = Field(max_length=64)
    model: str = Field(max_length=300)
    chunks: list[ChunkVector] = Field(max_length=10_000)


class VectorsAnswer(_Lenient):
    """`POST /v1/vectors`: the node's vectors of the entities asked for."""

    dim: int = Field(ge=1, le=10_000)
    encoding: str = Field(max_length=40)
    entities: list[EntityVectors] = Field(max_length=1_000)


class Health(_Lenient):
    """`GET /v1/healthz`."""

    status: str = Field(max_length=100)
    node_id: str = Field(min_length=1, max_length=200)
    version: str = Field(max_length=100)
    protocol: int | None = None
    """The node's `PROTOCOL_VERSION` (None from a node that does not say)."""


class _ErrorDetail(_Lenient):
    code: str = Field(min_length=1, max_length=100)
    message: str = Field(default="", max_length=5000)


class _ErrorBody(_Lenient):
    error: _ErrorDetail


# --- helpers ------------------------------------------------------------------------------------------


def normalize_node_url(url: str) -> str:
    """`http(s)://host[:port][/prefix]` without a trailing slash; anything else is refused in words."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text  # `aurora pair 10.0.0.1:8080 CODE` is what people type
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise PairingError(f"{url!r} is not a node address; give one like http://10.8.0.1:8470")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return _one_line(f"{where}: {err['msg']}" if where else str(err["msg"]), 120)


@functools.cache
def aurora_version() -> str:
    try:
        return importlib.metadata.version("aurora")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree without installing
        return "0+unknown"


def _user_agent() -> str:
    return f"aurora/{aurora_version()} (protocol {PROTOCOL_VERSION})"


# The `proxy` argument exists from websockets 15 on; older versions never used a proxy anyway.
_WS_NO_PROXY: dict[str, Any] = {"proxy": None} if "proxy" in inspect.signature(ws_connect).parameters else {}


@dataclass(frozen=True)
class PulledPage:
    """A page of the node's operations, as `NodeClient.pull` read it."""

    cursor: int
    """Ask after this next time."""
    head: int
    """The node's newest sequence number."""
    more: bool
    """Whether operations after `cursor` remain."""
    count: int
    """Operations in the page."""
    checked: CheckedPage | None
    """The page, checked whole, for the store to write from its JSON; None when it was validated as a
    `PullResponse` instead (`ops`)."""
    ops: Sequence[Operation]
    """The operations, when `checked` is None."""


class NodeClient:
    """One paired workspace's connection to its node. Thread-safe; close it when done."""

    def __init__(
        self,
        credentials: CredentialsStore,
        *,
        transport: httpx.BaseTransport | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        read_timeout: float = READ_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        creds = credentials.load()
        if creds is None:
            raise NotPairedError(
                "this workspace is not paired with a node; run `aurora pair URL CODE` with a code from "
                "`aurora-node devices add NAME`"
            )
        self._store = credentials
        self._creds = creds
        self._clock = clock
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._node_checked = False
        self._http = _http_client(creds.node_url, transport, connect_timeout, read_timeout)

    @property
    def url(self) -> str:
        return self._creds.node_url

    @property
    def device_id(self) -> str:
        return self._creds.device_id

    @property
    def node_id(self) -> str:
        return self._creds.node_id

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- pairing --------------------------------------------------------------------------------------

    @classmethod
    def pair(
        cls,
        base_url: str,
        code: str,
        name: str,
        credentials: CredentialsStore,
        *,
        device_id: str | None = None,
        transport: httpx.BaseTransport | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        read_timeout: float = READ_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> NodeCredentials:
        """Trade a one-time pairing code for this device's identity and tokens, and store them. With
        `device_id` (the id this workspace stamps its operations with) the node registers the device under
        it, so the changes made before pairing are this device's own."""
        url = normalize_node_url(base_url)
        # Fail before the one-time code is spent if the credentials cannot be kept (a wrong key, a damaged
        # file, a locked keyring); re-pairing overwrites whatever is there.
        credentials.load()
        with _http_client(url, transport, connect_timeout, read_timeout) as http:
            body: dict[str, object] = {"code": code, "name": name}
            if device_id is not None:
                body["device_id"] = device_id
            response = _send(http, url, "POST", "/v1/pair", json_body=body)
            if not response.is_success:
                code_, message = _error_of(response, url)
                raise PairingError(
                    f"the node at {url} refused the pairing ({code_}: {_one_line(message)}); codes are "
                    "one-time and short-lived: get a fresh one with `aurora-node devices add NAME`"
                )
            grant = _parse(TokenGrant, response, url)
        creds = NodeCredentials(
            node_url=url,
            node_id=grant.node_id,
            device_id=grant.device_id,
            access_token=grant.access_token,
            refresh_token=grant.refresh_token,
            access_expires_at=clock() + grant.expires_in,
        )
        credentials.save(creds)
        return creds

    # --- the API --------------------------------------------------------------------------------------

    def health(self) -> Health:
        """The node's health, after checking it is the node this laptop paired with."""
        health = _parse(Health, self._request("GET", "/v1/healthz"), self.url)
        if health.node_id != self._creds.node_id:
            raise self._wrong_node(health.node_id)
        if health.protocol is not None and health.protocol != PROTOCOL_VERSION:
            newer = "the node" if health.protocol > PROTOCOL_VERSION else "this laptop"
            raise NodeProtocolError(
                f"the node at {self.url} speaks sync protocol {health.protocol} and this laptop "
                f"{PROTOCOL_VERSION}; upgrade Aurora where it is older than on {newer}"
            )
        self._node_checked = True
        return health

    def push(self, ops: Sequence[Operation], pending: int) -> PushResponse:
        """Send one batch; `pending` is how many operations remain unpushed after it."""
        return self.push_wire([_ENCODER.encode(_wire(op)) for op in ops], pending)

    def push_wire(self, ops: Sequence[str], pending: int) -> PushResponse:
        """`push`, each operation given as its JSON object already (`SqliteActionLog.unpushed_wire`)."""
        if len(ops) > MAX_BATCH:
            raise ValueError(f"a push sends at most {MAX_BATCH} operations, not {len(ops)}")
        body = f'{{"ops":[{",".join(ops)}],"pending":{max(pending, 0):d}}}'.encode()
        self._check_node()
        return _parse(PushResponse, self._request("POST", "/v1/ops/push", content=body), self.url)

    def pull(self, after: int, limit: int = MAX_BATCH) -> PulledPage:
        """The node's operations after `after` (its sequence numbers), at most `limit`."""
        self._check_node()
        params = {"after": str(after), "limit": str(limit)}
        return _parse_page(self._request("GET", "/v1/ops", params=params), self.url)

    def vectors(self, entities: Sequence[tuple[str, str]], model: str) -> VectorsAnswer:
        """The node's chunk vectors, made by `model`, of these (entity kind, id) pairs (at most 256)."""
        self._check_node()
        body = {"entities": [{"entity": e, "entity_id": i} for e, i in entities], "model": model}
        return _parse(VectorsAnswer, self._request("POST", "/v1/vectors", json_body=body), self.url)

    def open_events(self) -> ClientConnection:
        """Open the live channel (`/v1/events`). Use the result as a context manager; its messages are
        JSON text (`Announce` and, later, other kinds)."""
        self._check_node()
        parts = urlsplit(self.url)
        ws_url = urlunsplit(
            ("wss" if parts.scheme == "https" else "ws", parts.netloc, parts.path + "/v1/events", "", "")
        )
        for attempt in range(2):
            access = self._fresh_access()
            try:
                connection: ClientConnection = ws_connect(
                    ws_url,
                    additional_headers={
                        "Authorization": f"Bearer {access}",
                        VERSION_HEADER: aurora_version(),
                    },
                    user_agent_header=_user_agent(),
                    open_timeout=self._connect_timeout,
                    close_timeout=2.0,
                    compression=None,
                    max_size=64 * 1024,
                    **_WS_NO_PROXY,
                )
                return connection
            except InvalidStatus as exc:
                response = exc.response
                code, message = _error_fields(response.body or b"")
                # A WebSocket refused before it is accepted often comes back as a bare 401 or 403 (the
                # ASGI server drops the reason): a spent access token is the likely cause, so refresh
                # once; the refresh itself says so if the device was revoked.
                bare_refusal = code is None and response.status_code in (401, 403)
                if (code == "token_expired" or bare_refusal) and attempt == 0:
                    self._refresh(access)
                    continue
                if bare_refusal:
                    raise NodeError(
                        f"the node at {self.url} refused the live channel (HTTP {response.status_code}); "
                        "syncing by polling instead"
                    ) from None
                if code is None:
                    raise NodeProtocolError(
                        f"the node at {self.url} answered with something that is not Aurora's protocol "
                        f"(HTTP {response.status_code} for the live channel); check that it runs aurora-node"
                    ) from None
                raise self._error(response.status_code, code, message, None) from None
            except (InvalidURI, InvalidHandshake) as exc:
                raise NodeProtocolError(
                    f"the node at {self.url} answered with something that is not Aurora's protocol "
                    f"({_one_line(str(exc), 100)}); check that it runs aurora-node"
                ) from None
            except (OSError, TimeoutError) as exc:
                self._node_checked = False
                raise NodeUnreachableError(
                    f"the node at {self.url} cannot be reached ({_one_line(str(exc), 100) or 'timed out'}); "
                    "changes stay on this laptop and sync when it is back"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # --- internals -------------------------------------------------------------------------------------

    def _check_node(self) -> None:
        if not self._node_checked:
            self.health()

    def _wrong_node(self, other: str) -> WrongNodeError:
        return WrongNodeError(
            f"the node at {self.url} is a different node than the one this laptop paired with "
            f"(id {_one_line(other, 40)}, not {self._creds.node_id}); nothing was sent: check the address, "
            "or pair again with `aurora pair`"
        )

    def _fresh_access(self) -> str:
        creds = self._creds
        expires = creds.access_expires_at
        if expires is not None and self._clock() > expires - _EXPIRY_MARGIN_S:
            self._refresh(creds.access_token)
        return self._creds.access_token

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        for attempt in range(2):
            access = self._fresh_access()
            try:
                response = _send(self._http, self.url, method, path, json_body, params, access, content)
            except NodeUnreachableError:
                self._node_checked = False
                raise
            if response.is_success:
                return response
            code, message = _error_of(response, self.url)
            if code == "token_expired" and attempt == 0:
                self._refresh(access)
                continue
            raise self._error(response.status_code, code, message, response.headers.get("Retry-After"))
        raise AssertionError("unreachable")  # pragma: no cover

    def _refresh(self, spent_access: str) -> None:
        """New tokens for old; a refused refresh raises (`NodeAuthError`, `DeviceRevokedError`).

        Under the lock, and skipped when another thread (or process: the stored credentials are read
        again first) already rotated them since `spent_access` was sent."""
        with self._lock:
            if self._creds.access_token != spent_access:
                return
            stored = self._store.load()
            if stored is not None and stored.node_id == self._creds.node_id and stored != self._creds:
                self._creds = stored
                if stored.access_token != spent_access:
                    return
            body = {"refresh_token": self._creds.refresh_token}
            response = _send(self._http, self.url, "POST", "/v1/token/refresh", body)
            if not response.is_success:
                code, message = _error_of(response, self.url)
                if code in _AUTH_CODES:
                    raise NodeAuthError(
                        f"the node at {self.url} no longer accepts this laptop's tokens "
                        f"({_one_line(message)}); pair again with `aurora pair`"
                    )
                raise self._error(response.status_code, code, message, response.headers.get("Retry-After"))
            grant = _parse(TokenGrant, response, self.url)
            if grant.node_id != self._creds.node_id:
                raise self._wrong_node(grant.node_id)
            self._creds = self._creds.model_copy(
                update={
                    "device_id": grant.device_id,
                    "access_token": grant.access_token,
                    "refresh_token": grant.refresh_token,
                    "access_expires_at": self._clock() + grant.expires_in,
                }
            )
            # The old refresh token is spent now: keep the new one even if this process dies next.
            self._store.save(self._creds)

    def _error(self, status: int, code: str, message: str, retry_after: str | None) -> NodeError:
        said = _one_line(message) or code
        url = self.url
        if code == "device_revoked":
            return DeviceRevokedError(
                f"the node at {url} has removed this laptop ({said}); nothing more will sync: pair again "
                "with a fresh code from `aurora-node devices add NAME`"
            )
        if code in _AUTH_CODES:
            return NodeAuthError(
                f"the node at {url} does not accept this laptop's tokens ({said}); "
                "pair again with `aurora pair`"
            )
        if code == "rate_limited":
            try:
                wait = float(retry_after) if retry_after else None
            except ValueError:
                wait = None
            return NodeBusyError(
                f"the node at {url} asks this laptop to slow down ({said}); it retries later", wait
            )
        if code == "too_large":
            return RequestTooLargeError(f"the node at {url} refused a request as too large ({said})")
        if code == "invalid_request":
            return NodeError(
                f"the node at {url} refused a request as invalid ({said}); the laptop and the node may run "
                "different Aurora versions: upgrade both"
            )
        return NodeError(f"the node at {url} failed (HTTP {status}, {code}: {said}); Aurora retries later")


def _http_client(
    url: str, transport: httpx.BaseTransport | None, connect_timeout: float, read_timeout: float
) -> httpx.Client:
    return httpx.Client(
        base_url=url,
        transport=transport,
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        headers={VERSION_HEADER: aurora_version(), "User-Agent": _user_agent()},
        follow_redirects=False,
        trust_env=False,
    )


def _send(
    http: httpx.Client,
    url: str,
    method: str,
    path: str,
    json_body: Any = None,
    params: dict[str, str] | None = None,
    access: str | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    """One request; `content` is a JSON body already encoded (`json_body` is encoded here)."""
    headers = {"Authorization": f"Bearer {access}"} if access else {}
    if content is not None:
        headers["Content-Type"] = "application/json"
    try:
        return http.request(method, path, json=json_body, content=content, params=params, headers=headers)
    except httpx.TimeoutException:
        raise NodeUnreachableError(
            f"the node at {url} did not answer in time; changes stay on this laptop and sync when it is back"
        ) from None
    except httpx.TransportError as exc:
        detail = _one_line(str(exc), 100) or type(exc).__name__
        raise NodeUnreachableError(
            f"the node at {url} cannot be reached ({detail}); changes stay on this laptop and sync when it "
            "is back"
        ) from None


def _error_fields(body: bytes | bytearray) -> tuple[str | None, str]:
    try:
        err = _ErrorBody.model_validate_json(body).error
    except ValidationError:
        return None, ""
    return err.code, err.message


def _error_of(response: httpx.Response, url: str) -> tuple[str, str]:
    """The (code, message) of an error answer; anything not shaped like one is a protocol error."""
    code, message = _error_fields(response.content)
    if code is None:
        raise NodeProtocolError(
            f"the node at {url} answered with something that is not Aurora's protocol (HTTP "
            f"{response.status_code} for {response.request.method} {response.request.url.path}); check that "
            "the address is your aurora-node"
        )
    return code, message


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
"""What httpx's `json=` does (compact, UTF-8 as is, no NaN), built once."""


def _wire(op: Operation) -> dict[str, Any]:
    """An operation as the protocol carries it: `Operation.model_dump(mode="json")`, built straight from
    the fields (they are valid already), since pydantic's dump cost more than the rest of a push."""
    return {
        "op_id": op.op_id,
        "device_id": op.device_id,
        "hlc": op.hlc,
        "entity": op.entity,
        "entity_id": op.entity_id,
        "fields": op.fields,
    }


def _parse_page(response: httpx.Response, url: str) -> PulledPage:
    """A pulled page: checked whole in pydantic's core (`aurora.sync.batch.check_page`), so the store can
    write its operations from its JSON without a Python object each; a page that does not pass is
    validated as a `PullResponse`, which says what is wrong."""
    checked = check_page(response.content)
    if checked is not None:
        return PulledPage(checked.cursor, checked.head, checked.more, len(checked.ops), checked, ())
    page = _parse(PullResponse, response, url)
    return PulledPage(page.cursor, page.head, page.more, len(page.ops), None, [p.op for p in page.ops])


def _parse(model: type[_M], response: httpx.Response, url: str) -> _M:
    """The answer as `model`, validated straight from its bytes (one pass in pydantic's parser, not
    `json.loads` and then every field again): a page of operations from the network is checked in full,
    just cheaply."""
    where = f"{response.request.method} {response.request.url.path}"
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            problem = "not JSON"
        else:
            problem = _first_problem(exc)
    raise NodeProtocolError(
        f"the node at {url} answered with something that is not Aurora's protocol ({where}: {problem}); "
        "check that the address is your aurora-node and that both run the same Aurora version"
    )
