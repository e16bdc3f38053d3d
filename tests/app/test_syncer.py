"""Sync between laptops and a node over real HTTP and WebSocket on loopback, with real SQLite stores and
real (encrypted-file) credentials.

The node here is `StandInNode`, a stand-in written for these tests while `aurora-node` is being built:
once the real node lands, the `node` fixture should start it instead (with an embedded PostgreSQL) and
these tests should pass unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from aurora.app.config import Settings
from aurora.app.credentials import EncryptedFileCredentials
from aurora.app.node_client import (
    DeviceRevokedError,
    NodeClient,
    NodeProtocolError,
    NotPairedError,
    PairingError,
    PulledPage,
    WrongNodeError,
)
from aurora.app.store import Store
from aurora.app.sync_log import SqliteActionLog
from aurora.app.syncer import LiveSync, Syncer, SyncReport, backoff_delay
from aurora.app.workspace import Workspace
from aurora.sync import HybridClock, Operation
from aurora.sync.protocol import (
    MAX_CLOCK_AHEAD_MS,
    PROTOCOL_VERSION,
    PulledOp,
    PullResponse,
    PushRequest,
    PushResponse,
    RejectCode,
    Rejected,
)

# --- the stand-in node ------------------------------------------------------------------------------

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class _Peer:
    """One open WebSocket on the stand-in: frames written by hand (RFC 6455), server side, unmasked."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def send(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        head = bytes([0x80 | opcode]) + (bytes([n]) if n < 126 else bytes([126]) + struct.pack("!H", n))
        with self.lock:
            self.sock.sendall(head + payload)

    def drop(self) -> None:
        """Cut the connection without a closing handshake (a node that died)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class StandInNode:
    """A small node for tests, until the real `aurora-node` lands: the endpoints of the node's API as the
    laptop client expects them, backed by a real SQLite store through `SqliteActionLog` (push: `ingest`;
    pull: `after`, leaving out the asking device's own operations but moving the cursor past them).

    Knobs let tests misbehave it: expire or revoke tokens, answer garbage, change its id, refuse given
    operations, refuse batches above a size, disable the live channel.
    """

    def __init__(self, store: Store, node_id: str = "node-test", port: int = 0) -> None:
        self.log = SqliteActionLog(store)
        self.node_id = node_id
        self.codes: set[str] = set()
        self.access: dict[str, str] = {}
        self.refresh: dict[str, str] = {}
        self.expired: set[str] = set()
        self.revoked: set[str] = set()
        self.origin: dict[str, str] = {}
        self.refuse: dict[str, RejectCode] = {}
        self.max_batch_bytes: int | None = None
        self.garbage = False
        self.protocol = PROTOCOL_VERSION
        self.live_channel = True
        self.peers: list[_Peer] = []
        self.requests: list[str] = []
        self.connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.start()

    def start(self) -> None:
        """Listen (again) on the same port: a node that comes back after an outage."""
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()

    def stop(self) -> None:
        """Die: stop listening and cut every open connection (kept-alive HTTP ones and sockets)."""
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None
        self.peers.clear()
        with self._lock:
            for conn in list(self.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def new_code(self) -> str:
        code = secrets.token_hex(4)
        self.codes.add(code)
        return code

    def grant(self, device: str) -> dict[str, Any]:
        access, refresh = secrets.token_hex(8), secrets.token_hex(8)
        with self._lock:
            self.access[access] = device
            self.refresh[refresh] = device
        return {
            "device_id": device,
            "node_id": self.node_id,
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": 900,
        }

    def expire_all(self) -> None:
        self.expired |= set(self.access)

    def head(self) -> int:
        return asyncio.run(self.log.head())

    def announce(self) -> None:
        message = json.dumps({"type": "head", "head": self.head()}).encode()
        for peer in list(self.peers):
            try:
                peer.send(0x1, message)
            except OSError:
                self.peers.remove(peer)

    def close(self) -> None:
        self.stop()


def _handler(node: StandInNode) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            with node._lock:
                node.connections.add(self.connection)

        def finish(self) -> None:
            with node._lock:
                node.connections.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass  # the stand-in was stopped under this connection

        def _send(self, status: int, body: Any, raw: bytes | None = None) -> None:
            data = raw if raw is not None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if raw is not None else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, code: str, message: str) -> None:
            self._send(status, {"error": {"code": code, "message": message}})

        def _device(self) -> str | None:
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if token in node.expired:
                self._error(401, "token_expired", "the access token has expired")
                return None
            device = node.access.get(token)
            if device is None:
                self._error(401, "unauthorized", "unknown token")
                return None
            if device in node.revoked:
                self._error(403, "device_revoked", "this device was removed by the owner")
                return None
            return device

        def _body(self) -> Any:
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"null")

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            node.requests.append(f"GET {parts.path}")
            if node.garbage:
                return self._send(200, None, b"<html>It works!</html>")
            if parts.path == "/v1/healthz":
                health = {
                    "status": "ok",
                    "node_id": node.node_id,
                    "version": "stand-in",
                    "protocol": node.protocol,
                }
                return self._send(200, health)
            if parts.path == "/v1/events":
                return self._events()
            if parts.path != "/v1/ops":
                return self._error(404, "not_found", parts.path)
            device = self._device()
            if device is None:
                return None
            query = parse_qs(parts.query)
            after, limit = int(query["after"][0]), int(query["limit"][0])
            entries = asyncio.run(node.log.after(after, limit))
            head = node.head()
            ops = [PulledOp(seq=seq, op=op) for seq, op in entries if node.origin.get(op.op_id) != device]
            cursor = entries[-1][0] if entries else max(after, 0)
            page = PullResponse(ops=ops, cursor=cursor, head=head, more=bool(entries) and cursor < head)
            return self._send(200, page.model_dump(mode="json"))

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            node.requests.append(f"POST {path}")
            body = self._body()
            if node.garbage:
                return self._send(200, None, b"<html>It works!</html>")
            if path == "/v1/pair":
                if body.get("code") not in node.codes:
                    return self._error(401, "unauthorized", "unknown or expired pairing code")
                node.codes.discard(body["code"])
                return self._send(200, node.grant(f"dev-{secrets.token_hex(3)}"))
            if path == "/v1/token/refresh":
                device = node.refresh.pop(body.get("refresh_token"), None)
                if device is None:
                    return self._error(401, "unauthorized", "refresh token unknown or already used")
                if device in node.revoked:
                    return self._error(403, "device_revoked", "this device was removed by the owner")
                return self._send(200, node.grant(device))
            if path != "/v1/ops/push":
                return self._error(404, "not_found", path)
            device = self._device()
            if device is None:
                return None
            if (
                node.max_batch_bytes is not None
                and int(self.headers["Content-Length"]) > node.max_batch_bytes
            ):
                return self._error(413, "too_large", "request body too large")
            return self._push(device, body)

        def _push(self, device: str, body: Any) -> None:
            try:
                request = PushRequest.model_validate(body)
            except ValidationError as exc:
                return self._error(400, "invalid_request", str(exc.errors()[0]["msg"]))
            valid: list[Operation] = []
            rejected: list[Rejected] = []
            now_ms = time.time_ns() // 1_000_000
            for i, raw in enumerate(request.ops):
                op_id = raw.get("op_id") if isinstance(raw.get("op_id"), str) else None
                try:
                    op = Operation.model_validate(raw)
                except ValidationError as exc:
                    rejected.append(
                        Rejected(index=i, op_id=op_id, code="invalid_operation", message=str(exc)[:400])
                    )
                    continue
                code = node.refuse.get(op.op_id)
                if code is None and op.clock.wall_ms - now_ms > MAX_CLOCK_AHEAD_MS:
                    code = "clock_ahead"
                if code is not None:
                    rejected.append(Rejected(index=i, op_id=op.op_id, code=code, message=f"refused: {code}"))
                    continue
                valid.append(op)
            new = asyncio.run(node.log.ingest(valid))
            for op in new:
                node.origin.setdefault(op.op_id, device)
            answer = PushResponse(accepted=[op.op_id for op in valid], rejected=rejected, head=node.head())
            self._send(200, answer.model_dump(mode="json"))
            if new:
                node.announce()
            return None

        def _events(self) -> None:
            if not node.live_channel:
                return self._error(404, "not_found", "no live channel here")
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            device = node.access.get(token)
            if token in node.expired or device is None or device in node.revoked:
                # As an ASGI server answers a WebSocket closed before it was accepted: a bare 403.
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            key = self.headers["Sec-WebSocket-Key"]
            accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
            self.wfile.flush()
            peer = _Peer(self.connection)
            node.peers.append(peer)
            self.close_connection = True
            self._serve_frames(peer)
            return None

        def _serve_frames(self, peer: _Peer) -> None:
            """Read the client's frames: answer pings and the closing handshake, ignore the rest."""
            while True:
                head = self.rfile.read(2)
                if len(head) < 2:
                    return
                opcode, length = head[0] & 0x0F, head[1] & 0x7F
                if length == 126:
                    (length,) = struct.unpack("!H", self.rfile.read(2))
                elif length == 127:
                    (length,) = struct.unpack("!Q", self.rfile.read(8))
                mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
                try:
                    if opcode == 0x9:
                        peer.send(0xA, payload)
                    elif opcode == 0x8:
                        peer.send(0x8, payload[:2])
                        return
                except OSError:
                    return

    return Handler


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def node(tmp_path: Path) -> Iterator[StandInNode]:
    store = Store.open(tmp_path / "node.db")
    node = StandInNode(store)
    yield node
    node.close()
    store.close()


@dataclass
class Laptop:
    ws: Workspace
    log: SqliteActionLog
    creds: EncryptedFileCredentials
    client: NodeClient
    syncer: Syncer

    def state(self) -> dict[str, Any]:
        """Every task's and note's merged state, by id."""
        rows = self.ws.store.query("SELECT entity, entity_id FROM ops")
        return {eid: self.ws.store.load(kind, eid) for kind, eid in rows}


@pytest.fixture
def laptops(node: StandInNode, tmp_path: Path) -> Iterator[Callable[[str], Laptop]]:
    """Makes paired laptops: each its own workspace file, credentials file and client."""
    made: list[Laptop] = []

    def make(name: str) -> Laptop:
        settings = Settings(
            data_dir=tmp_path / "data", workspace=str(tmp_path / f"{name}.db"), device_name=name
        )
        ws = Workspace.open(settings)
        creds = EncryptedFileCredentials(tmp_path / f"{name}.creds", Fernet.generate_key().decode())
        NodeClient.pair(node.url, node.new_code(), name, creds)
        client = NodeClient(creds, read_timeout=5)
        log = SqliteActionLog(ws.store)
        laptop = Laptop(ws, log, creds, client, Syncer(log, client))
        made.append(laptop)
        return laptop

    yield make
    for laptop in made:
        laptop.client.close()
        laptop.ws.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# --- rounds -----------------------------------------------------------------------------------------


def test_two_laptops_converge_through_the_node(laptops: Callable[[str], Laptop], node: StandInNode) -> None:
    a, b = laptops("a"), laptops("b")
    report = a.ws.tasks.add_quick("Call Dana tomorrow !urgent")
    a.ws.tasks.add_quick("Buy milk")
    a.ws.notes.add("Wi-fi password is on the fridge")
    b.ws.tasks.add_quick("Book flights #travel")
    first = a.syncer.sync_once()
    assert first.ok and first.pushed == 3 and first.pulled == 0
    second = b.syncer.sync_once()
    assert second.ok and second.pushed == 1 and second.pulled == 3 and second.applied == 3
    # Concurrent edits of the same task on both laptops: the later one wins everywhere, field by field.
    a.ws.tasks.update(report.id, notes="from a")
    b.ws.tasks.update(report.id, title="Call Dana about the contract")
    b.ws.tasks.toggle_done(report.id)
    for laptop in (a, b, a):
        assert laptop.syncer.sync_once().ok
    assert a.state() == b.state()
    merged = a.ws.tasks.get(report.id)
    assert (merged.title, merged.notes, merged.status) == ("Call Dana about the contract", "from a", "done")
    assert a.log.pending() == b.log.pending() == 0
    node_state = {
        eid: node.log.store.load(kind, eid)
        for kind, eid in node.log.store.query("SELECT entity, entity_id FROM ops")
    }
    assert node_state == a.state()
    again = a.syncer.sync_once()  # nothing left to do
    assert again.ok and (again.pushed, again.pulled) == (0, 0)


def test_a_retried_push_changes_nothing(laptops: Callable[[str], Laptop], node: StandInNode) -> None:
    a = laptops("a")
    for i in range(3):
        a.ws.tasks.add_quick(f"Task {i}")
    ops = [op for _, op in a.log.unpushed(10)]
    first = a.client.push(ops, 0)
    log_after_first = asyncio.run(node.log.after(0, 100))
    second = a.client.push(ops, 0)  # the answer to the first was lost: the laptop sends it again
    assert first.accepted == second.accepted == [op.op_id for op in ops]
    assert first.head == second.head == 3
    assert asyncio.run(node.log.after(0, 100)) == log_after_first


def test_pulled_operations_are_never_pushed_back(laptops: Callable[[str], Laptop], node: StandInNode) -> None:
    a, b = laptops("a"), laptops("b")
    a.ws.tasks.add_quick("From a")
    a.syncer.sync_once()
    b.syncer.sync_once()
    assert b.log.pending() == 0 and b.log.unpushed(10) == []
    pushes = node.requests.count("POST /v1/ops/push")
    b.syncer.sync_once()
    assert node.requests.count("POST /v1/ops/push") == pushes


def test_node_down_is_an_error_in_words_and_nothing_is_lost(
    laptops: Callable[[str], Laptop], node: StandInNode, tmp_path: Path
) -> None:
    a = laptops("a")
    for i in range(42):
        a.ws.tasks.add_quick(f"Offline task {i}")
    creds = a.creds.load()
    assert creds is not None
    a.creds.save(creds.model_copy(update={"node_url": f"http://127.0.0.1:{_free_port()}"}))
    with NodeClient(a.creds, connect_timeout=1) as down:
        report = Syncer(a.log, down).sync_once()
    assert not report.ok and report.summary == "node unreachable" and not report.needs_pairing
    (error,) = report.errors
    assert "cannot be reached" in error and "\n" not in error
    assert a.log.pending() == 42
    assert a.log.sync_status().last_error == error
    a.creds.save(creds)
    with NodeClient(a.creds) as back:
        assert Syncer(a.log, back).sync_once().pushed == 42
    assert a.log.pending() == 0 and a.log.sync_status().last_error is None


def test_garbage_from_the_node_is_one_line(laptops: Callable[[str], Laptop], node: StandInNode) -> None:
    a = laptops("a")
    a.ws.tasks.add_quick("Task")
    a.client.health()  # the node checks out; then it starts answering nonsense
    node.garbage = True
    with pytest.raises(NodeProtocolError) as err:
        a.client.pull(0)
    message = str(err.value)
    assert message.startswith(f"the node at {node.url} answered with something that is not Aurora's protocol")
    assert "GET /v1/ops: not JSON" in message and "\n" not in message
    report = a.syncer.sync_once()
    assert "not Aurora's protocol" in report.errors[0] and report.summary == "node speaks another protocol"
    assert a.log.pending() == 1
    with NodeClient(a.creds) as fresh, pytest.raises(NodeProtocolError, match="GET /v1/healthz"):
        fresh.pull(0)


def test_a_node_that_breaks_the_pull_contract_is_refused(
    laptops: Callable[[str], Laptop], node: StandInNode
) -> None:
    a = laptops("a")
    bad = PulledPage(cursor=0, head=0, more=True, count=0, checked=None, ops=[])  # "more", not moving on
    a.client.pull = lambda after, limit=500: bad  # type: ignore[method-assign]
    report = a.syncer.sync_once()
    assert not report.ok and "did not move the cursor" in report.errors[0]


def test_an_expired_token_is_refreshed_once_and_the_request_goes_through(
    laptops: Callable[[str], Laptop], node: StandInNode
) -> None:
    a = laptops("a")
    a.ws.tasks.add_quick("Task")
    before = a.creds.load()
    assert before is not None
    node.expire_all()
    report = a.syncer.sync_once()
    assert report.ok and report.pushed == 1
    after = a.creds.load()
    assert after is not None
    assert after.access_token != before.access_token and after.refresh_token != before.refresh_token
    assert node.requests.count("POST /v1/token/refresh") == 1
    # The new refresh token was saved: a fresh client (a restart) refreshes with it successfully.
    node.expire_all()
    with NodeClient(a.creds) as restarted:
        assert restarted.pull(0).head == 1


def test_a_revoked_device_gets_a_clear_error_and_live_sync_stops(
    laptops: Callable[[str], Laptop], node: StandInNode
) -> None:
    a = laptops("a")
    a.ws.tasks.add_quick("Task")
    node.revoked.add(a.client.device_id)
    report = a.syncer.sync_once()
    assert report.needs_pairing and report.summary == "this laptop was removed from the node"
    assert "pair again" in report.errors[0] and "\n" not in report.errors[0]
    with pytest.raises(DeviceRevokedError):
        a.client.pull(0)
    live = LiveSync(a.syncer, base=0.01, cap=0.05)
    live.start()
    assert _wait_for(lambda: not live.running, 5)
    status = live.status()
    assert status.stopped and not status.online
    assert status.describe() == "this laptop was removed from the node, 1 change waiting"
    live.stop()


def test_a_different_node_at_the_address_is_refused_before_anything_is_sent(
    laptops: Callable[[str], Laptop], node: StandInNode
) -> None:
    a = laptops("a")
    a.ws.tasks.add_quick("Private task")
    node.node_id = "someone-elses-node"
    with NodeClient(a.creds) as client:
        with pytest.raises(WrongNodeError) as err:
            client.push([op for _, op in a.log.unpushed(10)], 0)
        assert "is a different node than the one this laptop paired with" in str(err.value)
        report = Syncer(a.log, client).sync_once()
    assert report.needs_pairing and node.head() == 0 and a.log.pending() == 1


def test_pairing_stores_the_credentials_and_a_used_code_is_refused(node: StandInNode, tmp_path: Path) -> None:
    creds = EncryptedFileCredentials(tmp_path / "c", "passphrase")
    with pytest.raises(NotPairedError):
        NodeClient(creds)
    code = node.new_code()
    paired = NodeClient.pair(node.url + "/", code, "laptop", creds)
    assert creds.load() == paired and paired.node_url == node.url and paired.node_id == node.node_id
    with pytest.raises(PairingError) as err:
        NodeClient.pair(node.url, code, "laptop", creds)
    assert "aurora-node devices add" in str(err.value)
    with pytest.raises(PairingError):
        NodeClient.pair("ftp://example.org", "x", "laptop", creds)


def test_refused_operations_leave_the_queue_but_clock_ahead_ones_wait(
    laptops: Callable[[str], Laptop], node: StandInNode
) -> None:
    a = laptops("a")
    a.ws.tasks.add_quick("Fine")
    a.ws.tasks.add_quick("Refused for good")
    a.ws.tasks.add_quick("Fine too")
    ops = [op for _, op in a.log.unpushed(10)]
    node.refuse[ops[1].op_id] = "invalid_operation"
    report = a.syncer.sync_once()
    assert report.ok and (report.pushed, report.refused) == (2, 1)
    status = a.log.sync_status()
    assert status.refused == 1 and status.last_refused is not None and ops[1].op_id in status.last_refused
    assert a.log.pending() == 0
    # Now a laptop whose clock runs ten minutes fast.
    wall = time.time_ns() // 1_000_000 + 10 * 60_000
    a.ws.store.clock = HybridClock(a.ws.store.device_id, a.ws.store.clock.last, wall=lambda: wall)
    a.ws.tasks.add_quick("From the future")
    ahead = a.syncer.sync_once()
    assert not ahead.ok and "ahead of its clock" in ahead.errors[0] and a.log.pending() == 1


def test_a_change_made_on_another_paired_device_is_left_to_that_device(
    laptops: Callable[[str], Laptop], node: StandInNode
) -> None:
    """`wrong_device`: the operation came here in an export from a device that is paired itself and pushes
    its own; it leaves this queue, recorded, and holds nothing back."""
    a = laptops("a")
    a.ws.tasks.add_quick("Imported from b")
    a.ws.tasks.add_quick("Mine")
    node.refuse[a.log.unpushed(10)[0][1].op_id] = "wrong_device"
    report = a.syncer.sync_once()
    assert report.pushed == 1 and report.refused == 1
    assert a.log.pending() == 0 and "wrong_device" in (a.log.sync_status().last_refused or "")


def test_a_node_speaking_another_protocol_version_is_refused(
    laptops: Callable[[str], Laptop], node: StandInNode
) -> None:
    a = laptops("a")
    node.protocol = PROTOCOL_VERSION + 1
    with pytest.raises(NodeProtocolError, match="upgrade Aurora where it is older than on the node"):
        a.client.health()


def test_a_batch_too_large_for_the_node_is_split(laptops: Callable[[str], Laptop], node: StandInNode) -> None:
    a = laptops("a")
    for i in range(9):
        a.ws.tasks.add_quick(f"Task number {i} with a longer title to make the batch heavier")
    node.max_batch_bytes = 2500
    report = a.syncer.sync_once()
    assert report.ok and report.pushed == 9 and node.head() == 9


def test_a_node_restored_from_an_older_backup_gets_everything_again(
    laptops: Callable[[str], Laptop], node: StandInNode, tmp_path: Path
) -> None:
    a, b = laptops("a"), laptops("b")
    a.ws.tasks.add_quick("From a")
    b.ws.tasks.add_quick("From b")
    for laptop in (a, b, a):
        laptop.syncer.sync_once()
    assert a.log.pull_cursor() == 2
    # The node loses its log (same identity, empty database), as after restoring an old backup.
    fresh = Store.open(tmp_path / "restored.db")
    try:
        node.log = SqliteActionLog(fresh)
        node.origin.clear()
        report = a.syncer.sync_once()
        assert report.ok and report.pushed == 1
        assert node.head() >= 1 and a.log.pending() == 0
    finally:
        fresh.close()


# --- the background loop ----------------------------------------------------------------------------


def test_backoff_is_exponential_full_jitter_and_capped() -> None:
    ceilings = [backoff_delay(n, rand=lambda: 1.0) for n in range(10)]
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert all(backoff_delay(n, rand=lambda: 0.0) == 0 for n in range(10))
    assert backoff_delay(10_000, rand=lambda: 1.0) == 60  # no overflow on a very long outage
    draws = [backoff_delay(3) for _ in range(500)]
    assert all(0 <= d <= 8 for d in draws) and len(set(draws)) > 400
    assert 3 < sum(draws) / len(draws) < 5  # uniform over [0, 8]
    assert backoff_delay(2, base=0.5, cap=1.5, rand=lambda: 0.5) == 0.75


def test_live_sync_brings_a_change_to_the_other_laptop_within_a_second(
    laptops: Callable[[str], Laptop], node: StandInNode
) -> None:
    a, b = laptops("a"), laptops("b")
    live_a, live_b = LiveSync(a.syncer, base=0.05, cap=0.2), LiveSync(b.syncer, base=0.05, cap=0.2)
    live_a.start()
    live_b.start()
    try:
        assert _wait_for(lambda: live_a.status().live and live_b.status().live)
        task = a.ws.tasks.add_quick("Live change")
        live_a.nudge()
        started = time.monotonic()
        assert _wait_for(lambda: task.id in {t.id for t in b.ws.tasks.list_all()}, 5)
        assert time.monotonic() - started < 2
        status = live_b.status()
        assert status.online and status.live and status.describe() == "synced"
    finally:
        started = time.monotonic()
        live_a.stop()
        live_b.stop()
        assert time.monotonic() - started < 3
        assert not live_a.running and not live_b.running


def test_live_sync_refreshes_a_spent_token_when_the_socket_is_refused(
    laptops: Callable[[str], Laptop], node: StandInNode
) -> None:
    a = laptops("a")
    a.client.health()
    node.expire_all()
    live = LiveSync(a.syncer, base=0.05, cap=0.2)
    live.start()
    try:
        assert _wait_for(lambda: live.status().live)
        assert node.requests.count("POST /v1/token/refresh") == 1
    finally:
        live.stop()


def test_without_a_live_channel_live_sync_polls(laptops: Callable[[str], Laptop], node: StandInNode) -> None:
    node.live_channel = False
    a, b = laptops("a"), laptops("b")
    live_b = LiveSync(b.syncer, base=0.05, cap=0.1)
    live_b.start()
    try:
        a.ws.tasks.add_quick("Polled change")
        a.syncer.sync_once()
        assert _wait_for(lambda: b.ws.tasks.list_all() != [], 5)
        status = live_b.status()
        assert status.online and not status.live
    finally:
        live_b.stop()


def test_live_sync_rides_out_a_node_outage(laptops: Callable[[str], Laptop], node: StandInNode) -> None:
    """The node dies (sockets cut, port closed); edits pile up and the status says so; the node comes back
    on the same port and everything goes through without anyone restarting anything."""
    a = laptops("a")
    reports: list[SyncReport] = []
    live = LiveSync(a.syncer, base=0.05, cap=0.2, on_report=reports.append)
    live.start()
    try:
        assert _wait_for(lambda: live.status().live)
        node.stop()
        for i in range(3):
            a.ws.tasks.add_quick(f"While away {i}")
        live.nudge()
        assert _wait_for(lambda: live.status().summary == "node unreachable")
        status = live.status()
        assert not status.online and not status.live
        assert status.describe() == "node unreachable, 3 changes waiting"
        assert status.last_error is not None and "cannot be reached" in status.last_error
        node.start()
        assert _wait_for(lambda: live.status().describe() == "synced")
        assert node.head() == 3 and a.log.pending() == 0
        assert any(not r.ok for r in reports) and reports[-1].ok
    finally:
        live.stop()


def test_batches_in_flight_together_settle_in_order(
    laptops: Callable[[str], Laptop], node: StandInNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two push batches travel at once, but the queue moves as if they went one by one: a batch held back
    (a clock ahead) stops it there, and the batch sent after it is simply sent again later."""
    monkeypatch.setattr("aurora.app.syncer.PUSH_BATCH", 2)
    a = laptops("a")
    for i in range(7):
        a.ws.tasks.add_quick(f"Task {i}")
    ops = [op for _, op in a.log.unpushed(10)]
    node.refuse[ops[3].op_id] = "clock_ahead"
    report = a.syncer.sync_once()
    assert not report.ok and "ahead of its clock" in report.errors[0]
    assert report.pushed == 3 and a.log.pending() == 4  # batches [0 1] [2 3]: stopped at 3
    assert [op.op_id for _, op in a.log.unpushed(10)] == [op.op_id for op in ops[3:]]
    del node.refuse[ops[3].op_id]
    again = a.syncer.sync_once()
    assert again.ok and again.pushed == 4 and a.log.pending() == 0
    assert sorted(op.op_id for _, op in asyncio.run(node.log.after(0, 100))) == sorted(o.op_id for o in ops)
    # First round: [0 1], [2 3], then [4 5] once [0 1] settled (dropped unsettled); second: [3 4], [5 6].
    assert node.requests.count("POST /v1/ops/push") == 5
