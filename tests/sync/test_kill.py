"""Kill -9 tests: real processes, killed with SIGKILL at random points of a sync, restarted, synced again.

The world: a real `aurora-node` process (`python -m aurora.node.cli serve`) on a fresh PostgreSQL database
and a free loopback port, and two laptops, each a workspace file paired once with the node (tokens in the
encrypted file beside it). A laptop is a process, `tests/sync/kill_client.py`: it opens its workspace,
makes some local changes (new tasks and edits of tasks it already has, so the laptops edit the same tasks),
then syncs until nothing is pending and the pull is complete, printing a marker at each step.

Each round SIGKILLs one process at one point, chosen in turn so every point is hit, with a random delay:

- a laptop while it commits local changes, while the node handles its push, between the node's answer and
  recording it (the acknowledgement), after recording it, while its pull is in flight, while it applies a
  pulled page, and after applying it; the laptop runs again in a later round;
- the node while a laptop's large push (two or three batches of 500) or pull is in flight; the node is
  restarted at once on the same port and the laptop, still running, must finish on its own.

The node process is reused between laptop kills; the laptops pair once. At the end both laptops sync with
no kills (A, B, A) and the test checks what a user would notice:

- nothing confirmed is lost: every operation a laptop reported committed is in its file, every operation
  the node acknowledged is on the node, every operation of either laptop is on the node, and every operation
  on the node is on both laptops;
- nothing is applied twice: `op_id` is unique in every ops table, and every entity's state, on each laptop
  and on the node, is the merge of its operations (and the same on all three);
- `PRAGMA integrity_check` is ok on both SQLite files (also every 25 kills along the way).

Rounds: 20 kills locally, 200 under `AURORA_CI=1`, any number with `AURORA_KILL_ROUNDS=N`. The seed is
printed (`-s`) and in every failure message; `AURORA_KILL_SEED=S` replays its schedule (the kills land by
the clock, so not always at the same instruction). Each laptop run is started while the one before works
(`--wait`: it loads, about 0.3 s, then waits for its orders), so process start-up is hidden, not skipped.

A second test kills a laptop between the node's answer to a token refresh and saving the new tokens: the
laptop must stay paired (the node takes the old refresh token again while its replacement is unused).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import apsw
import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet

from aurora.app.credentials import FILE_SUFFIX, EncryptedFileCredentials
from aurora.app.node_client import NodeClient
from aurora.app.store import Store
from aurora.sync import EntityState, Operation, merge
from tests.node.pgtest import PgTestServer
from tests.node.server import pairing_code

# Read when this module is imported: the repository's autouse fixture clears `AURORA_*` for each test.
_ROUNDS_SET = os.environ.get("AURORA_KILL_ROUNDS")
_CI = os.environ.get("AURORA_CI") == "1"
KILLS = int(_ROUNDS_SET) if _ROUNDS_SET else (200 if _CI else 20)
"""SIGKILLs to deliver (to a live process) before the final sync."""
_SEED_SET = os.environ.get("AURORA_KILL_SEED")

CLIENT = Path(__file__).with_name("kill_client.py")
INTEGRITY_EVERY = 25
WAIT_S = 90.0
"""Longest wait for any one marker or exit; a laptop round takes well under a second."""


# --- processes --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class NodeProcess:
    """`python -m aurora.node.cli serve` on one port, started again on the same port after a kill."""

    def __init__(self, database_url: str, data_dir: Path, port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._env = os.environ | {
            "AURORA_NODE_DATABASE_URL": database_url,
            "AURORA_NODE_DATA_DIR": str(data_dir),
            "AURORA_NODE_HOST": "127.0.0.1",
            "AURORA_NODE_PORT": str(port),
        }
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts: list[float] = []
        """Seconds from spawn to a healthy answer, per start."""

    def start(self) -> None:
        began = time.perf_counter()
        with self.log.open("ab") as out:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "aurora.node.cli", "serve"],
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=self.url, timeout=2.0, trust_env=False) as http:
            while True:
                if self._proc.poll() is not None:
                    raise AssertionError(f"the node exited at start:\n{_tail(self.log)}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"the node did not answer within 30 s:\n{_tail(self.log)}")
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.01)
        self.starts.append(time.perf_counter() - began)

    def kill(self) -> bool:
        """SIGKILL the node; True if it was running until then."""
        proc = self._proc
        if proc is None:
            return False
        alive = proc.poll() is None
        if alive:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        self._proc = None
        return alive and proc.returncode == -signal.SIGKILL


class ClientRun:
    """One run of the laptop script, started ahead of need (`--wait`: it loads and waits for its orders)
    so its start overlaps the round before; `go` sets it off. Its stdout markers are read by a thread."""

    def __init__(self, laptop: Laptop, env: dict[str, str], extra: tuple[str, ...] = ()) -> None:
        self.laptop = laptop
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.spawned = time.perf_counter()
        self.loaded: float | None = None
        """When the script had imported everything (perf_counter)."""
        with laptop.stderr.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(CLIENT), str(laptop.path), "--wait", *extra],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        self._reader = threading.Thread(target=self._read, name=f"{laptop.name} markers", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        stream: IO[str] = self.proc.stdout
        for line in stream:
            text = line.rstrip("\n")
            if text == "loaded":
                self.loaded = time.perf_counter()
            self.lines.append(text)
            self._queue.put(text)
        self._queue.put(None)

    def go(self, changes: int, seed: int) -> ClientRun:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"go {changes} {seed}\n")
        self.proc.stdin.flush()
        return self

    def wait_for(self, matches: Callable[[list[str]], bool], nth: int = 1) -> bool:
        """Block until the `nth` marker that `matches` (its words); False if the process ended first."""
        seen = 0
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{self.laptop.name}: no marker for {WAIT_S:.0f} s") from None
            if line is None:
                return False
            if matches(line.split()):
                seen += 1
                if seen >= nth:
                    return True

    def kill(self) -> bool:
        """SIGKILL the laptop; True if it was running until then."""
        alive = self.proc.poll() is None
        if alive:
            self.proc.send_signal(signal.SIGKILL)
        self.finish()
        return alive and self.proc.returncode == -signal.SIGKILL

    def finish(self, timeout: float = WAIT_S) -> int:
        """Wait for the exit (and every marker); the exit status. A run never sent off exits at once."""
        try:
            assert self.proc.stdin is not None
            if self.proc.poll() is None:
                self.proc.stdin.close()  # orders given already; for a spare, end of input: exit
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.laptop.name} did not finish within {timeout:.0f} s") from None
        finally:
            self._reader.join(10)
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None and not stream.closed:
                    stream.close()
        self.laptop.absorb(self.lines)
        return int(self.proc.returncode)


class Spares:
    """A loaded, waiting laptop process per laptop: taking one starts its successor at once."""

    def __init__(self, env: dict[str, str]) -> None:
        self._env = env
        self._waiting: dict[str, ClientRun] = {}
        self._taken: list[ClientRun] = []

    def go(self, laptop: Laptop, changes: int, seed: int) -> ClientRun:
        run = self._waiting.pop(laptop.name, None) or ClientRun(laptop, self._env)
        self._waiting[laptop.name] = ClientRun(laptop, self._env)
        self._taken.append(run)
        return run.go(changes, seed)

    @property
    def startups(self) -> list[float]:
        """Seconds from spawn to loaded (imports done), per run taken."""
        return [r.loaded - r.spawned for r in self._taken if r.loaded is not None]

    def close(self) -> None:
        for run in self._waiting.values():
            run.finish()
        self._waiting.clear()


@dataclass
class Laptop:
    name: str
    path: Path
    stderr: Path
    committed: set[str] = field(default_factory=set)
    """Operations the laptop reported committed locally: they must survive any kill."""
    acked_through: int = 0
    """Local seq up to which the laptop recorded the node's acknowledgement."""
    refused: list[str] = field(default_factory=list)

    def absorb(self, lines: list[str]) -> None:
        for line in lines:
            word, _, rest = line.partition(" ")
            if word == "committed":
                self.committed.update(rest.split())
            elif word == "acked":
                self.acked_through = max(self.acked_through, int(rest))
            elif word == "refused":
                self.refused.append(rest)


# --- what each replica holds --------------------------------------------------------------------------


@dataclass
class Replica:
    name: str
    ops: list[Operation]
    states: dict[tuple[str, str], EntityState]
    duplicate_op_ids: int

    @property
    def op_ids(self) -> set[str]:
        return {op.op_id for op in self.ops}

    def merged(self) -> dict[tuple[str, str], EntityState]:
        """Each entity's state as the pure merge of its operations."""
        states: dict[tuple[str, str], EntityState] = {}
        for op in self.ops:
            key = (op.entity, op.entity_id)
            states[key] = merge(states.get(key), op)
        return states


def _laptop_replica(laptop: Laptop) -> tuple[Replica, list[tuple[int, str, int]]]:
    """The laptop's operations and entity states, and its log as (seq, op_id, from_node)."""
    store = Store.open(laptop.path)
    try:
        rows = store.query("SELECT seq, op_id, device_id, hlc, entity, entity_id, fields, from_node FROM ops")
        duplicates = store.query("SELECT count(*) - count(DISTINCT op_id) FROM ops")[0][0]
        ops = [
            Operation.model_construct(
                op_id=r[1], device_id=r[2], hlc=r[3], entity=r[4], entity_id=r[5], fields=json.loads(r[6])
            )
            for r in sorted(rows)
        ]
        states: dict[tuple[str, str], EntityState] = {}
        for entity, entity_id in sorted({(op.entity, op.entity_id) for op in ops}):
            state = store.load(entity, entity_id)
            if state is not None:
                states[(entity, entity_id)] = state
    finally:
        store.close()
    log = [(int(r[0]), str(r[1]), int(r[7])) for r in rows]
    return Replica(laptop.name, ops, states, int(duplicates)), log


def _node_replica(database_url: str) -> Replica:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT op_id, device_id, hlc, entity, entity_id, fields FROM ops ORDER BY seq"
        ).fetchall()
        (duplicates,) = conn.execute("SELECT count(*) - count(DISTINCT op_id) FROM ops").fetchone() or (0,)
        entities = conn.execute('SELECT entity, entity_id, "values", clocks FROM entities').fetchall()
    ops = [
        Operation.model_construct(
            op_id=r[0], device_id=r[1], hlc=r[2], entity=r[3], entity_id=r[4], fields=r[5]
        )
        for r in rows
    ]
    states = {(str(e), str(i)): EntityState(dict(v), dict(c)) for e, i, v, c in entities}
    return Replica("node", ops, states, int(duplicates))


def _integrity(path: Path) -> str:
    conn = apsw.Connection(str(path))
    try:
        return "; ".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def _sample(ids: set[str], n: int = 3) -> str:
    return ", ".join(sorted(ids)[:n])


# --- the schedule -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KillPoint:
    target: str
    """"laptop" or "node"."""
    marker: str
    """The stdout marker after which the kill lands."""
    max_delay_s: float
    """The kill lands uniformly in [0, max_delay_s] after the marker."""


KILL_POINTS = (
    KillPoint("laptop", "committed", 0.010),  # mid local transaction
    KillPoint("laptop", "push", 0.040),  # while the node stores the batch
    KillPoint("laptop", "pushed", 0.004),  # answer in, acknowledgement not yet recorded
    KillPoint("laptop", "acked", 0.010),  # acknowledgement recorded
    KillPoint("laptop", "pull", 0.020),  # pull in flight
    KillPoint("laptop", "pulled", 0.020),  # applying a non-empty page
    KillPoint("laptop", "applied", 0.010),  # page applied, cursor moved
    KillPoint("node", "push", 0.080),  # a large push in flight
    KillPoint("node", "push", 0.080),
    KillPoint("node", "pull", 0.030),  # a large pull in flight
)


def _schedule(rng: random.Random) -> Iterator[KillPoint]:
    """Every kill point once per cycle, in a fresh random order each cycle."""
    for _ in itertools.count():
        points = list(KILL_POINTS)
        rng.shuffle(points)
        yield from points


def _matcher(marker: str) -> Callable[[list[str]], bool]:
    if marker == "pulled":
        return lambda words: words[0] == "pulled" and int(words[1]) > 0
    return lambda words: words[0] == marker


# --- the test ---------------------------------------------------------------------------------------


@pytest.fixture
def database_url(pg_server: PgTestServer) -> Iterator[str]:
    url = asyncio.run(pg_server.create_database())
    yield url
    asyncio.run(pg_server.drop_database(url))


def _pair(laptop: Laptop, node_url: str, database_url: str, key: str) -> None:
    laptop.path.parent.mkdir(parents=True)
    store = Store.open(laptop.path)
    device_id = store.device_id
    store.close()
    credentials = EncryptedFileCredentials(laptop.path.with_name(laptop.path.name + FILE_SUFFIX), key)
    code = pairing_code(database_url, laptop.name)
    NodeClient.pair(node_url, code, laptop.name, credentials, device_id=device_id)


class World:
    """The node process, two paired laptops, and the rounds that kill them."""

    def __init__(self, database_url: str, root: Path, seed: int) -> None:
        self.database_url = database_url
        self.seed = seed
        self.rng = random.Random(seed)
        key = Fernet.generate_key().decode()  # a Fernet key, not a passphrase: no scrypt at each start
        self.node = NodeProcess(database_url, root / "node", _free_port(), root / "node.log")
        self.laptops = [
            Laptop(name, root / name / "work.db", root / f"{name}.stderr")
            for name in ("laptop-a", "laptop-b")
        ]
        self.spares = Spares(os.environ | {"AURORA_CREDENTIALS_KEY": key})
        self.kills: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()
        self.runs = 0
        self._last = self.laptops[0]
        self.node.start()
        for laptop in self.laptops:
            _pair(laptop, self.node.url, database_url, key)

    def close(self) -> None:
        self.spares.close()
        self.node.kill()

    def context(self) -> str:
        """What a failure message needs: the seed and the logs' tails."""
        logs = "\n".join(f"--- {lt.name} stderr:\n{_tail(lt.stderr)}" for lt in self.laptops)
        return f"seed {self.seed}\n--- node log:\n{_tail(self.node.log)}\n{logs}"

    def start(self, laptop: Laptop, changes: int = 0) -> ClientRun:
        self.runs += 1
        self._last = laptop
        return self.spares.go(laptop, changes, self.rng.randrange(2**31))

    def round(self, point: KillPoint) -> bool:
        """One round; True if a live process was killed (False: the run ended before the kill point)."""
        name = f"{point.target}@{point.marker}"
        delay = self.rng.uniform(0, point.max_delay_s)
        killed = (
            self._laptop_round(point, delay) if point.target == "laptop" else self._node_round(point, delay)
        )
        (self.kills if killed else self.misses)[name] += 1
        for laptop in self.laptops:
            assert not laptop.refused, (
                f"the node refused operations for good: {laptop.refused}\n{self.context()}"
            )
        return killed

    def _laptop_round(self, point: KillPoint, delay: float) -> bool:
        rng = self.rng
        laptop = rng.choice(self.laptops)
        if point.marker in ("committed", "push", "pushed", "acked"):
            # Now and then two batches, so a kill can land between them.
            changes = rng.randint(501, 700) if rng.random() < 0.25 else rng.randint(1, 150)
        else:
            changes = rng.randint(0, 40)
        nth = rng.randint(1, 3) if point.marker == "committed" else rng.randint(1, 1 + changes // 500)
        client = self.start(laptop, changes)
        if client.wait_for(_matcher(point.marker), nth):
            time.sleep(delay)
            if client.kill():
                return True
        status = client.finish()
        assert status == 0, f"{laptop.name} failed (exit {status}): {client.lines[-3:]}\n{self.context()}"
        return False

    def _node_round(self, point: KillPoint, delay: float) -> bool:
        rng = self.rng
        if point.marker == "push":  # a large push: two or three batches of the laptop's own changes
            laptop, changes, nth = rng.choice(self.laptops), rng.randint(600, 1000), rng.randint(1, 2)
        else:  # a large pull: what the other laptop pushed last
            laptop, changes, nth = next(lt for lt in self.laptops if lt is not self._last), 0, 1
        client = self.start(laptop, changes)
        killed = False
        if client.wait_for(_matcher(point.marker), nth):
            time.sleep(delay)
            killed = self.node.kill()
            self.node.start()
        status = client.finish()
        assert status == 0, (
            f"{laptop.name} did not ride out the node's restart (exit {status}): {client.lines[-3:]}\n"
            f"{self.context()}"
        )
        return killed

    def check_files(self, when: str) -> None:
        for laptop in self.laptops:
            result = _integrity(laptop.path)
            assert result == "ok", f"{laptop.name}'s file is damaged {when}: {result}\n{self.context()}"

    def final_sync(self) -> None:
        """No kills: A pushes, B pushes and pulls everything, A pulls B's."""
        a, b = self.laptops
        for laptop in (a, b, a):
            client = self.start(laptop)
            status = client.finish()
            assert status == 0 and client.lines[-1:] == ["done 0"], (
                f"{laptop.name}'s final sync failed (exit {status}): {client.lines[-3:]}\n{self.context()}"
            )

    def verify(self) -> Replica:
        """Every check of the module docstring; the node's replica, for the summary."""
        node = _node_replica(self.database_url)
        replicas = [node]
        for laptop in self.laptops:
            replica, log = _laptop_replica(laptop)
            replicas.append(replica)
            own = {op_id for _, op_id, from_node in log if not from_node}
            acked = {op_id for seq, op_id, from_node in log if not from_node and seq <= laptop.acked_through}
            lost = laptop.committed - replica.op_ids
            assert not lost, f"{laptop.name} lost {len(lost)} committed operations ({_sample(lost)})"
            # A kill may land after a commit and before its marker: the file may hold more than was reported.
            assert laptop.committed <= own
            lost = acked - node.op_ids
            assert not lost, f"the node lost {len(lost)} acknowledged operations ({_sample(lost)})"
            lost = own - node.op_ids
            assert not lost, (
                f"{len(lost)} of {laptop.name}'s operations never reached the node ({_sample(lost)})"
            )
            lost = node.op_ids - replica.op_ids
            assert not lost, (
                f"{len(lost)} of the node's operations never reached {laptop.name} ({_sample(lost)})"
            )
        for replica in replicas:
            assert replica.duplicate_op_ids == 0, (
                f"{replica.name} holds {replica.duplicate_op_ids} operations twice"
            )
            assert len(replica.ops) == len(node.ops), f"{replica.name}: {len(replica.ops)} operations"
            merged = replica.merged()
            wrong = sorted(
                k for k in merged.keys() | replica.states.keys() if replica.states.get(k) != merged.get(k)
            )
            assert not wrong, (
                f"{replica.name}: {len(wrong)} entities differ from the merge of their operations, e.g. "
                f"{wrong[0]}: {replica.states.get(wrong[0])} != {merged.get(wrong[0])}"
            )
            assert replica.states == node.states, f"{replica.name} and the node disagree"
        return node


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2] if values else 0.0


def test_sigkill_at_random_points_loses_nothing_and_applies_nothing_twice(
    database_url: str, tmp_path: Path
) -> None:
    started = time.perf_counter()
    seed = int(_SEED_SET) if _SEED_SET else random.randrange(2**32)
    print(f"\nkill test: seed {seed}, {KILLS} kills")
    world = World(database_url, tmp_path, seed)
    try:
        schedule = _schedule(world.rng)
        point = next(schedule)
        while (done := sum(world.kills.values())) < KILLS:
            assert sum(world.misses.values()) < KILLS + 20, (
                f"too many rounds ended before their kill point\n{world.context()}"
            )
            if world.round(point):
                if (done + 1) % INTEGRITY_EVERY == 0:
                    world.check_files(f"after {done + 1} kills")
                point = next(schedule)
            # A round that ended before its kill point is tried again at the same point (with a fresh
            # delay): a quick point (a small page applied in a few ms) still gets its kills in a short run.
        killing = time.perf_counter() - started
        # Every point was reached: a marker that no longer prints (a renamed method) must not turn its
        # kills into quiet misses.
        never = {f"{p.target}@{p.marker}" for p in KILL_POINTS} - set(world.kills)
        assert not never, f"no kill landed at {sorted(never)}\n{world.context()}"
        world.final_sync()
    finally:
        world.close()
    world.check_files("at the end")
    node = world.verify()

    kills = ", ".join(f"{k} {v}" for k, v in sorted(world.kills.items()))
    client_start, node_start = _median(world.spares.startups), _median(world.node.starts)
    print(
        f"kill test: {sum(world.kills.values())} kills ({kills}); {sum(world.misses.values())} rounds ended "
        f"before their kill point; {len(node.ops)} operations, {len(node.states)} tasks, the same on every "
        f"replica; {world.runs} laptop runs (spawn to loaded: median {client_start:.2f} s); node started "
        f"{len(world.node.starts)} times (spawn to healthy: median {node_start:.2f} s); "
        f"kills {killing:.1f} s, in all {time.perf_counter() - started:.1f} s"
    )


def test_a_laptop_killed_before_saving_refreshed_tokens_stays_paired(
    database_url: str, tmp_path: Path
) -> None:
    key = Fernet.generate_key().decode()
    env = os.environ | {"AURORA_CREDENTIALS_KEY": key}
    node = NodeProcess(database_url, tmp_path / "node", _free_port(), tmp_path / "node.log")
    laptop = Laptop("laptop", tmp_path / "laptop" / "work.db", tmp_path / "laptop.stderr")
    node.start()
    try:
        _pair(laptop, node.url, database_url, key)
        # An access token at the end of its life (every 15 minutes in real use): the next request refreshes.
        stored = EncryptedFileCredentials(laptop.path.with_name(laptop.path.name + FILE_SUFFIX), key)
        paired = stored.load()
        assert paired is not None
        stored.save(paired.model_copy(update={"access_expires_at": 0.0}))

        first = ClientRun(laptop, env, ("--pause-before-save",)).go(3, 1)
        assert first.wait_for(lambda words: words[0] == "saving-tokens"), first.lines
        assert first.kill()
        again = ClientRun(laptop, env).go(0, 2)
        status = again.finish()
    finally:
        node.kill()
    assert status == 0 and again.lines[-1:] == ["done 0"], (
        f"after a kill mid-refresh the laptop no longer syncs (exit {status}): {again.lines[-1:]}"
    )
