"""Sync speed: operations from one laptop to another through the node, and the node's request rate.

1. **10,000 operations, laptop A to laptop B.** A real node process (uvicorn, one worker, on loopback) on a
   fresh PostgreSQL database; two real SQLite workspaces, paired. A makes 10,000 task changes locally (not
   timed), then:

   - **End to end, B live** (the goal's figure): B runs as the TUI runs it, in its own process
     (`python -m tests.bench.sync_speed live-laptop ...`), its background sync live (`LiveSync`, the
     node's WebSocket open). The clock runs from A's `Syncer.sync_once()` starting (its push: batches of
     `PUSH_BATCH`, two in flight) until B's workspace holds all 10,000 (B pulls as the node announces
     each batch, and applies).
   - **One after the other**: A's `sync_once()` (push), then B's (pull and apply), B in this process;
     each timed alone. What a laptop that was offline meanwhile sees is the second figure.

   Beside them, the baseline measured in the same run: the raw cost of storing the same rows, that is
   the inserts B's apply makes (10,000 task rows and 10,000 op rows) in one SQLite transaction on a fresh
   workspace with the same pragmas, plus one PostgreSQL COPY each of the op rows and entity rows the node
   keeps, in one transaction on a fresh database. Goal: under 1 s end to end. Medians of 3 runs of each
   kind, each on fresh databases and a fresh node. Beside the times, the CPU seconds each process used
   (from Linux's /proc): where the time goes. All four processes (A, the node, PostgreSQL, B) share this
   machine's cores, as they would not in use.

2. **Node request rate.** 100 devices, each paired with its own token and its own keep-alive connection,
   pull (empty: the node holds no operations) as fast as the node answers, for 30 s (`AURORA_BENCH_SECONDS`
   to change it); requests per second and p95 latency. Baseline, same client, same run: a bare FastAPI app
   with one `GET /ping` returning `{}`, served by uvicorn the same way (its own process, one worker,
   log level warning). Goals: at least 0.5x the bare rate, p95 under 50 ms. The load generator is a
   minimal HTTP/1.1 client on raw asyncio streams (uvloop where installed), not httpx: 100 httpx clients
   saturated their own core at ~2,000 requests/s and measured themselves (bare FastAPI and the node came
   out alike).

The servers run as `python -m tests.bench.sync_speed serve node|ping PORT` (node settings from
`AURORA_NODE_*`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import httpx

from tests.bench.common import Row, percentile, ratio, secs

if TYPE_CHECKING:
    from aurora.app.credentials import CredentialsStore
    from aurora.app.store import Store
    from aurora.app.syncer import Syncer
    from aurora.sync import Operation
    from tests.node.pgtest import PgTestServer

SECONDS = float(os.environ.get("AURORA_BENCH_SECONDS") or 30)
"""Length of each request-rate run. Read at import: `tests.bench` imports this module before it clears
`AURORA_*` from the environment."""

N_OPS = 10_000
RUNS = 3
DEVICES = 100
GOAL_SECONDS = 1.0
GOAL_RATE_RATIO = 0.5
GOAL_P95_S = 0.050

_T = TypeVar("_T")


# --- servers in their own processes -------------------------------------------------------------------


def _serve(kind: str, port: int) -> None:
    """The child process: the node (settings from `AURORA_NODE_*`) or the bare app, on uvicorn."""
    import uvicorn
    from fastapi import FastAPI

    if kind == "node":
        from aurora.node.api import create_app
        from aurora.node.config import NodeSettings

        app = create_app(NodeSettings(), serving=True)  # as `aurora-node serve` makes it
    else:
        app = FastAPI()

        @app.get("/ping")
        async def ping() -> dict[str, Any]:
            return {}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, workers=1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pids: Iterable[int]) -> float:
    """User and system CPU seconds these processes have used so far (Linux's /proc; 0 elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def _postgres_pids() -> list[int]:
    """Every PostgreSQL process on this machine (the test server's postmaster and its backends)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _cpu_by_process(processes: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each named group of processes, and of PostgreSQL's (all of them)."""
    used = {name: _cpu_seconds(pids) for name, pids in processes.items()}
    return used | {"PostgreSQL": _cpu_seconds(_postgres_pids())}


@dataclass(frozen=True)
class _Served:
    url: str
    pid: int


@contextmanager
def _server(kind: str, root: Path, database_url: str | None = None) -> Iterator[_Served]:
    """Start `kind` ("node" or "ping") in a process; yields its base URL and pid once it answers."""
    port = _free_port()
    env = dict(os.environ)
    if database_url is not None:
        env |= {"AURORA_NODE_DATABASE_URL": database_url, "AURORA_NODE_DATA_DIR": str(root / "node")}
    log = root / f"{kind}-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.sync_speed", "serve", kind, str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=url, timeout=2.0, trust_env=False) as http:
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the {kind} server did not start: {log.read_text()[-2000:]}")
                try:
                    if http.get("/healthz" if kind == "node" else "/ping").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
        yield _Served(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- 1. ten thousand operations from A to B -----------------------------------------------------------


def _syncer(path: Path, key: str, pair: Callable[[Store, CredentialsStore], None] | None = None) -> Syncer:
    """The workspace at `path` with its sync, its tokens in the encrypted file beside it (`key`); `pair`
    pairs it first, when it is not paired yet."""
    from aurora.app.credentials import FILE_SUFFIX, EncryptedFileCredentials
    from aurora.app.node_client import NodeClient
    from aurora.app.store import Store
    from aurora.app.sync_log import SqliteActionLog
    from aurora.app.syncer import Syncer

    store = Store.open(path)
    credentials = EncryptedFileCredentials(path.with_name(path.name + FILE_SUFFIX), key)
    if pair is not None:
        pair(store, credentials)
    return Syncer(SqliteActionLog(store), NodeClient(credentials))


def _paired_syncer(path: Path, node_url: str, database_url: str, key: str) -> Syncer:
    from aurora.app.node_client import NodeClient
    from tests.node.server import pairing_code

    def pair(store: Store, credentials: CredentialsStore) -> None:
        code = pairing_code(database_url, path.stem)
        NodeClient.pair(node_url, code, path.stem, credentials, device_id=store.device_id)

    return _syncer(path, key, pair)


def _make_changes(syncer: Syncer, n: int) -> None:
    """`n` new tasks on A, as the benchmark workspace builds them (one transaction, not timed)."""
    from aurora.schema import Quadrant
    from aurora.sync import new_id
    from tests.bench.common import task_fields

    store = syncer.log.store
    now = datetime.now().astimezone()
    quadrants = list(Quadrant)
    with store.transaction() as tx:
        for i in range(n):
            q = quadrants[i % 4]
            tx.change("task", new_id(), task_fields(i, q, float(i // 4 + 1), now))


def _baseline(ops: list[Operation], root: Path, database_url: str) -> tuple[float, float]:
    """Seconds to store the same rows raw: (SQLite inserts in one transaction, PostgreSQL COPY)."""
    import psycopg

    from aurora.app.store import Store, database
    from aurora.app.store.rows import insert_sql, to_column
    from aurora.sync import merge

    path = root / "baseline.db"
    Store.open(path).close()  # the schema, as a workspace has it
    task_rows: list[dict[str, Any]] = []
    op_rows: list[tuple[Any, ...]] = []
    entity_rows: list[tuple[str, str, str, str]] = []
    for op in ops:
        row = {name: to_column("task", name, value) for name, value in op.fields.items()}
        clocks = json.dumps(dict.fromkeys(op.fields, op.hlc), sort_keys=True)
        task_rows.append(row | {"id": op.entity_id, "field_clocks": clocks})
        fields = json.dumps(op.fields)
        op_rows.append((op.op_id, op.device_id, op.hlc, op.entity, op.entity_id, fields))
        state = merge(None, op)
        entity_rows.append((op.entity, op.entity_id, json.dumps(state.values), json.dumps(state.clocks)))
    insert_task = insert_sql("task", tuple(task_rows[0]))

    conn = database.open_connection(path, busy_timeout_ms=5000)
    try:
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert_task, task_rows)
        conn.executemany(
            "INSERT INTO ops (op_id, device_id, hlc, entity, entity_id, fields, from_node) "
            "VALUES (?, ?, ?, ?, ?, ?, 1)",
            op_rows,
        )
        conn.execute("COMMIT")
        sqlite_s = time.perf_counter() - start
    finally:
        conn.close()

    with psycopg.connect(database_url) as pg:
        start = time.perf_counter()
        with pg.cursor() as cur:
            with cur.copy("COPY ops (op_id, device_id, hlc, entity, entity_id, fields) FROM STDIN") as copy:
                for op_row in op_rows:
                    copy.write_row(op_row)
            with cur.copy('COPY entities (entity, entity_id, "values", clocks) FROM STDIN') as copy:
                for entity_row in entity_rows:
                    copy.write_row(entity_row)
        pg.commit()
        pg_s = time.perf_counter() - start
    return sqlite_s, pg_s


class _Transfer(NamedTuple):
    push_s: float
    pull_s: float
    sqlite_s: float
    """Baseline: the same rows inserted in one SQLite transaction."""
    pg_s: float
    """Baseline: the same rows copied into PostgreSQL."""
    cpu: dict[str, float]
    """CPU seconds by phase and process: "push laptop", "push node", "push PostgreSQL", "pull ..."."""


def _one_transfer(pg: PgTestServer, root: Path, run: int) -> _Transfer:
    """One run, on fresh databases and a fresh node."""
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    folder = root / f"sync-run{run}"
    folder.mkdir()
    node_db = asyncio.run(pg.create_database())
    base_db = asyncio.run(pg.create_database())
    try:
        with _server("node", folder, node_db) as node:
            a = _paired_syncer(folder / "a.db", node.url, node_db, key)
            b = _paired_syncer(folder / "b.db", node.url, node_db, key)
            try:
                _make_changes(a, N_OPS)
                ops = a.log.store.operations()
                # Where the time goes: A and B run in this process, one after the other.
                processes = {"laptop": [os.getpid()], "node": [node.pid]}
                cpu_start = _cpu_by_process(processes)
                start = time.perf_counter()
                pushed = a.sync_once()
                middle = time.perf_counter()
                cpu_middle = _cpu_by_process(processes)
                pulled = b.sync_once()
                end = time.perf_counter()
                cpu_end = _cpu_by_process(processes)
                assert pushed.ok and pushed.pushed == N_OPS, pushed
                assert pulled.ok and pulled.applied == N_OPS, pulled
                assert b.log.store.query("SELECT count(*) FROM tasks")[0][0] == N_OPS
            finally:
                for side in (a, b):
                    side.client.close()
                    side.log.store.close()
        sqlite_s, pg_s = _baseline(ops, folder, base_db)
    finally:
        asyncio.run(pg.drop_database(node_db))
        asyncio.run(pg.drop_database(base_db))
    used = {f"push {name}": cpu_middle[name] - cpu_start[name] for name in cpu_start} | {
        f"pull {name}": cpu_end[name] - cpu_middle[name] for name in cpu_start
    }
    return _Transfer(middle - start, end - middle, sqlite_s, pg_s, used)


def _live_laptop(path: Path, key: str, expected: int) -> None:
    """The child process: laptop B as the TUI runs it, its background sync live (`LiveSync`, the node's
    WebSocket open). Prints `ready` once live, then `done T CPU` when its workspace holds `expected` tasks:
    T the monotonic time it saw them all (the same clock as the parent's on Linux), CPU its own seconds."""
    import threading

    from aurora.app.syncer import LiveSync, SyncReport

    syncer = _syncer(path, key)
    store = syncer.log.store
    done = threading.Event()
    seen_at: list[float] = []

    def on_report(report: SyncReport) -> None:  # after each round: no polling beside the sync itself
        if not done.is_set() and store.query("SELECT count(*) FROM tasks")[0][0] >= expected:
            seen_at.append(time.monotonic())
            done.set()

    live = LiveSync(syncer, on_report=on_report)
    live.start()
    deadline = time.monotonic() + 30
    while not (live.status().live and live.rounds >= 1):
        if time.monotonic() > deadline:
            raise SystemExit("laptop B did not go live")
        time.sleep(0.01)
    print("ready", flush=True)
    if not done.wait(120):
        raise SystemExit("laptop B did not receive every operation")
    print(f"done {seen_at[0]} {_cpu_seconds([os.getpid()])}", flush=True)
    live.stop()
    store.close()


class _Live(NamedTuple):
    end_to_end_s: float
    """From A's sync starting to B holding every operation."""
    push_s: float
    """A's sync (its push), meanwhile."""
    cpu: dict[str, float]
    """CPU seconds each process used in that time: "laptop A", "node", "PostgreSQL", "laptop B"."""


def _one_live_transfer(pg: PgTestServer, root: Path, run: int) -> _Live:
    """One run with B live: A pushes while B, its WebSocket open, pulls as the node announces each batch.
    Fresh databases and a fresh node."""
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    folder = root / f"live-run{run}"
    folder.mkdir()
    node_db = asyncio.run(pg.create_database())
    try:
        with _server("node", folder, node_db) as node:
            a = _paired_syncer(folder / "a.db", node.url, node_db, key)
            b = _paired_syncer(folder / "b.db", node.url, node_db, key)
            b.client.close()
            b.log.store.close()
            child = subprocess.Popen(
                [sys.executable, "-m", "tests.bench.sync_speed", "live-laptop", str(folder / "b.db"), key,
                 str(N_OPS)],
                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            )  # fmt: skip
            try:
                _make_changes(a, N_OPS)
                assert child.stdout is not None
                if child.stdout.readline().strip() != "ready":
                    raise RuntimeError("laptop B did not go live")
                processes = {"laptop A": [os.getpid()], "node": [node.pid]}
                cpu_start = _cpu_by_process(processes)
                b_start = _cpu_seconds([child.pid])
                start = time.monotonic()
                pushed = a.sync_once()
                push_s = time.monotonic() - start
                assert pushed.ok and pushed.pushed == N_OPS, pushed
                words = child.stdout.readline().split()
                if words[:1] != ["done"]:
                    raise RuntimeError(f"laptop B: {' '.join(words)}")
                end = float(words[1])
                used = {name: t - cpu_start[name] for name, t in _cpu_by_process(processes).items()}
                used["laptop B"] = float(words[2]) - b_start
                child.wait(30)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
                a.client.close()
                a.log.store.close()
    finally:
        asyncio.run(pg.drop_database(node_db))
    return _Live(end - start, push_s, used)


def _transfer(pg: PgTestServer, root: Path) -> Row:
    runs = [_one_transfer(pg, root, i) for i in range(RUNS)]
    live = [_one_live_transfer(pg, root, i) for i in range(RUNS)]
    push = statistics.median(r.push_s for r in runs)
    pull = statistics.median(r.pull_s for r in runs)
    total = statistics.median(r.push_s + r.pull_s for r in runs)
    end_to_end = statistics.median(r.end_to_end_s for r in live)
    live_push = statistics.median(r.push_s for r in live)
    sqlite_s = statistics.median(r.sqlite_s for r in runs)
    pg_s = statistics.median(r.pg_s for r in runs)
    base = statistics.median(r.sqlite_s + r.pg_s for r in runs)
    rr = ratio(end_to_end, base)
    met = end_to_end < GOAL_SECONDS
    print(
        f"{N_OPS} operations A -> node -> B, end to end with B live: {secs(end_to_end)} "
        f"({N_OPS / end_to_end:,.0f} ops/s; A's push {secs(live_push)} meanwhile; median of {RUNS}) | "
        f"baseline raw rows {secs(base)} "
        f"(SQLite inserts in one transaction {secs(sqlite_s)} + PostgreSQL COPY {secs(pg_s)}) | ratio "
        f"{rr:.1f}x | goal <{GOAL_SECONDS:.0f} s | {'met' if met else 'MISSED'}"
    )
    print(
        f"  one after the other (A pushes, then B pulls): {secs(total)} (push {secs(push)}, pull and apply "
        f"{secs(pull)}; median of {RUNS}); ratio {ratio(total, base):.1f}x"
    )
    print(
        "  live runs (end to end, push): "
        + "; ".join(f"{secs(r.end_to_end_s)}, {secs(r.push_s)}" for r in live)
    )
    print(
        "  runs one after the other (push, pull, SQLite, COPY): "
        + "; ".join(", ".join(secs(t) for t in (r.push_s, r.pull_s, r.sqlite_s, r.pg_s)) for r in runs)
    )
    cpu = {name: statistics.median(r.cpu[name] for r in runs) for name in runs[0].cpu}
    print("  CPU seconds, one after the other: " + ", ".join(f"{n} {sec:.2f}" for n, sec in cpu.items()))
    cpu_live = {name: statistics.median(r.cpu[name] for r in live) for name in live[0].cpu}
    print("  CPU seconds, B live: " + ", ".join(f"{n} {sec:.2f}" for n, sec in cpu_live.items()))
    return Row(
        f"{N_OPS} ops laptop A -> node -> laptop B (live)",
        f"{secs(end_to_end)} ({N_OPS / end_to_end:,.0f} ops/s)",
        f"raw SQLite inserts + PG COPY {secs(base)}",
        f"{rr:.1f}x",
        f"<{GOAL_SECONDS:.0f} s",
        met,
    )


# --- 2. the node's request rate -----------------------------------------------------------------------


async def _pair_devices(url: str, database_url: str, n: int) -> list[str]:
    """`n` paired devices' access tokens (codes made as `aurora-node devices add` makes them)."""
    from aurora.node import auth
    from aurora.node.db import connect_pool

    pool = await connect_pool(database_url, 1, 2)
    try:
        codes = [await auth.new_pairing_code(pool, f"bench-{i}") for i in range(n)]
    finally:
        await pool.close()
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=30) as http:
        answers = await asyncio.gather(
            *(http.post("/v1/pair", json={"code": c, "name": f"bench-{i}"}) for i, c in enumerate(codes))
        )
    return [str(a.raise_for_status().json()["access_token"]) for a in answers]


class _Connection:
    """One device's keep-alive HTTP/1.1 connection, as lean as a client gets: the request's bytes made
    once, the answer read by its `Content-Length`. httpx costs ~0.5 ms of CPU a request, so 100 httpx
    clients saturated the core they ran on at ~2,000 requests/s and measured themselves, not the server
    (both servers came out alike however fast they were)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        self._reader = reader
        self._writer = writer
        self._request = request

    @classmethod
    async def open(cls, url: str, path: str, token: str | None) -> _Connection:
        parsed = httpx.URL(url)
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        lines = [f"GET {path} HTTP/1.1", f"Host: {parsed.host}:{parsed.port}"]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        return cls(reader, writer, request)

    async def get(self) -> int:
        """One request; the answer's status code (its body read and dropped)."""
        self._writer.write(self._request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        marker = head.lower().find(b"content-length:")
        if marker < 0:
            raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")
        length = int(head[marker + 15 : head.index(b"\r\n", marker)])
        await self._reader.readexactly(length)
        return status

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


async def _hammer(url: str, path: str, tokens: list[str | None], seconds: float) -> tuple[int, list[float]]:
    """One task per device, each with its own connection, requesting `path` back to back for `seconds`;
    (requests answered 200, latencies in seconds)."""
    latencies: list[float] = []
    failures = 0
    connections = await asyncio.gather(*(_Connection.open(url, path, token) for token in tokens))

    async def device(connection: _Connection, stop: float) -> None:
        nonlocal failures
        while time.perf_counter() < stop:
            start = time.perf_counter()
            status = await connection.get()
            latencies.append(time.perf_counter() - start)
            if status != 200:
                failures += 1

    try:
        # Warm-up: every connection used, every code path run once.
        statuses = await asyncio.gather(*(c.get() for c in connections))
        assert set(statuses) == {200}, f"warm-up answers {sorted(set(statuses))} from {path}"
        stop = time.perf_counter() + seconds
        await asyncio.gather(*(device(c, stop) for c in connections))
    finally:
        await asyncio.gather(*(c.close() for c in connections))
    assert failures == 0, f"{failures} requests to {path} failed"
    return len(latencies), latencies


def _run_client(work: Coroutine[Any, Any, _T]) -> _T:
    """Run the load generator on uvloop where it is installed (the node's extra brings it), so the client
    spends as little of the shared CPUs as it can."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(work)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(work)


def _request_rate(pg: PgTestServer, root: Path) -> list[Row]:
    database_url = asyncio.run(pg.create_database())
    folder = root / "rate"
    folder.mkdir()
    try:
        with _server("ping", folder) as ping:
            count, lat = _run_client(_hammer(ping.url, "/ping", [None] * DEVICES, SECONDS))
        bare_rate, bare_p95 = count / SECONDS, percentile(lat, 95)
        with _server("node", folder, database_url) as node:
            tokens: list[str | None] = list(asyncio.run(_pair_devices(node.url, database_url, DEVICES)))
            count, lat = _run_client(_hammer(node.url, "/v1/ops?after=0&limit=500", tokens, SECONDS))
        node_rate, node_p95 = count / SECONDS, percentile(lat, 95)
        node_p50 = statistics.median(lat)
    finally:
        asyncio.run(pg.drop_database(database_url))
    rr = node_rate / bare_rate if bare_rate else 0.0
    rate_met = rr >= GOAL_RATE_RATIO
    p95_met = node_p95 < GOAL_P95_S
    print(
        f"empty pulls, {DEVICES} devices for {SECONDS:.0f} s: {node_rate:,.0f} requests/s, p50 "
        f"{node_p50 * 1000:.1f} ms, p95 {node_p95 * 1000:.1f} ms | baseline bare FastAPI GET /ping "
        f"{bare_rate:,.0f} requests/s, p95 {bare_p95 * 1000:.1f} ms | ratio {rr:.2f}x | goals >="
        f"{GOAL_RATE_RATIO}x: {'met' if rate_met else 'MISSED'}, p95 <{GOAL_P95_S * 1000:.0f} ms: "
        f"{'met' if p95_met else 'MISSED'}"
    )
    return [
        Row(
            f"node empty pulls, {DEVICES} devices",
            f"{node_rate:,.0f} req/s",
            f"bare FastAPI /ping {bare_rate:,.0f} req/s",
            f"{rr:.2f}x",
            f">={GOAL_RATE_RATIO}x",
            rate_met,
        ),
        Row(
            f"node empty pull p95, {DEVICES} devices",
            f"{node_p95 * 1000:.1f} ms",
            f"bare FastAPI /ping p95 {bare_p95 * 1000:.1f} ms",
            f"{ratio(node_p95, bare_p95):.2f}x",
            f"<{GOAL_P95_S * 1000:.0f} ms",
            p95_met,
        ),
    ]


def run(root: Path) -> list[Row]:
    from tests.node.pgtest import PgTestServer, PgUnavailableError

    try:
        pg = PgTestServer.start()
    except PgUnavailableError as error:
        print(f"sync: no PostgreSQL ({error}); skipped")
        return []
    try:
        return [_transfer(pg, root), *_request_rate(pg, root)]
    finally:
        pg.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"] and len(sys.argv) == 4:
        _serve(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["live-laptop"] and len(sys.argv) == 5:
        _live_laptop(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        print(
            "usage: python -m tests.bench.sync_speed serve node|ping PORT | live-laptop WORKSPACE KEY N",
            file=sys.stderr,
        )
        sys.exit(2)
