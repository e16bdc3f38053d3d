"""The node embeds what it stores: triggers queue changed entities, workers claim them with SKIP LOCKED,
vectors match the laptop's own, failures retry then park, and laptops fetch vectors over the API.

Real PostgreSQL (with pgvector) throughout; the real all-MiniLM-L6-v2 model where vectors are compared,
a recording stand-in where the test is about who embeds what and when.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray

from aurora.app.embed import Embedder
from aurora.app.search import Indexer, chunking
from aurora.app.workspace import Workspace
from aurora.node import auth
from aurora.node.config import NodeSettings
from aurora.node.db import Pool, connect_pool
from aurora.node.embed_jobs import (
    DIM,
    SEARCHED_KINDS,
    EmbedWorker,
    QueueStatus,
    embedding_in_background,
    queue_status,
    text_hash,
)
from aurora.node.oplog import PgActionLog, ingest_on
from aurora.node.vectors_api import MAX_ENTITIES, decode_vector
from aurora.schema import ENTITY_FIELDS
from aurora.sync import HybridClock, Operation, new_id
from tests.node.pgtest import PgTestServer
from tests.node.server import pairing_code, running_node

LONG_BODY = "\n\n".join(
    f"Paragraph {p}: the supplier in Leeds confirmed the shipment of {p * 12} crates for the spring "
    "fair, and asked whether the invoice should go to the Manchester office or straight to accounts. "
    "Dana will call them on Thursday to settle it before the quarter closes."
    for p in range(12)
)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


class Recorder:
    """A stand-in model: deterministic unit vectors, every text it was given counted, optionally slow or
    choking on texts that hold `poison`."""

    name = "recorder"
    dim = DIM

    def __init__(self, delay: float = 0.0, poison: str | None = None) -> None:
        self.delay = delay
        self.poison = poison
        self.seen: Counter[str] = Counter()
        self.calls = 0
        self._lock = threading.Lock()

    def load(self) -> None:
        pass

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> NDArray[np.float32]:
        with self._lock:
            self.calls += 1
            self.seen.update(texts)
        time.sleep(self.delay)
        if self.poison and any(self.poison in t for t in texts):
            raise ValueError("the model choked on this text")
        return np.stack([_unit(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)


def _unit(text: str) -> NDArray[np.float32]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


class Laptop:
    """Operations as one laptop makes them."""

    def __init__(self) -> None:
        self.id = new_id()
        self.clock = HybridClock(self.id)

    def op(self, entity: str, entity_id: str, **fields: Any) -> Operation:
        return Operation(
            op_id=new_id(),
            device_id=self.id,
            hlc=self.clock.now().encode(),
            entity=entity,  # type: ignore[arg-type]
            entity_id=entity_id,
            fields=fields,
        )

    def unchecked(self, entity: str, entity_id: str, **fields: Any) -> Operation:
        """An operation whose values are not checked (ingest stores what it is given)."""
        return Operation.model_construct(
            op_id=new_id(),
            device_id=self.id,
            hlc=self.clock.now().encode(),
            entity=entity,
            entity_id=entity_id,
            fields=fields,
        )


def _stamp() -> str:
    return "2026-03-02T09:30:00+00:00"


def _task(title: str, notes: str = "", **more: Any) -> dict[str, Any]:
    return {
        "title": title,
        "notes": notes,
        "tags": ["work"],
        "source": "manual",
        "created_at": _stamp(),
        "deleted": False,
        "quadrant": 2,
        "status": "open",
        **more,
    }


async def _jobs(pool: Pool) -> dict[tuple[str, str], dict[str, Any]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT entity, entity_id, version, attempts, last_error, claimed_by, locked_until "
            "FROM embed_jobs"
        )
        names = ("version", "attempts", "last_error", "claimed_by", "locked_until")
        return {(r[0], r[1]): dict(zip(names, r[2:], strict=True)) for r in await cur.fetchall()}


async def _vectors(pool: Pool) -> dict[tuple[str, str], list[tuple[int, str, str, NDArray[np.float32]]]]:
    """(entity, id) -> [(ord, model, text hash, vector)] in order, read back through the API's decoder."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT entity, entity_id, ord, model, text_hash, vector::real[] FROM chunk_vectors "
            "ORDER BY entity, entity_id, ord"
        )
        found: dict[tuple[str, str], list[tuple[int, str, str, NDArray[np.float32]]]] = {}
        for e, i, o, m, h, v in await cur.fetchall():
            found.setdefault((e, i), []).append((o, m, h, np.asarray(v, dtype=np.float32)))
        return found


async def _drain(worker: EmbedWorker) -> int:
    total = 0
    while done := await worker.run_once():
        total += done
    return total


# --- the triggers ---------------------------------------------------------------------------------------


async def test_the_trigger_watches_exactly_the_fields_the_laptop_searches(pool: Pool) -> None:
    async with pool.connection() as conn:
        for kind, fields in ENTITY_FIELDS.items():
            for field in fields:
                cur = await conn.execute(
                    "SELECT aurora_searched_changed(%s, jsonb_build_object(%s::text, 1), '{}')", (kind, field)
                )
                row = await cur.fetchone()
                assert row is not None and row[0] == (field in chunking.SEARCHED_COLUMNS.get(kind, ())), field
    assert set(SEARCHED_KINDS) == set(chunking.SEARCHED_COLUMNS)
    log, laptop = PgActionLog(pool), Laptop()
    for kind, columns in chunking.SEARCHED_COLUMNS.items():
        await log.ingest([laptop.op(kind, f"{kind}-1", deleted=False)])
        for field in sorted(ENTITY_FIELDS[kind]):
            async with pool.connection() as conn:
                await conn.execute("DELETE FROM embed_jobs")
            value: Any = True if field == "deleted" else f"changed {field}"
            await log.ingest([laptop.unchecked(kind, f"{kind}-1", **{field: value})])
            queued = (kind, f"{kind}-1") in await _jobs(pool)
            assert queued == (field in columns), (kind, field)
    async with pool.connection() as conn:
        await conn.execute("DELETE FROM embed_jobs")
    await log.ingest([laptop.op("interaction", "i-1", kind="meeting")])
    assert await _jobs(pool) == {}


async def test_a_push_queues_each_changed_entity_once_and_bumps_a_claimed_ones_version(pool: Pool) -> None:
    log, laptop = PgActionLog(pool), Laptop()
    await log.ingest([laptop.op("task", "t1", **_task("Call Dana")), laptop.op("note", "n1", body="Milk")])
    jobs = await _jobs(pool)
    assert set(jobs) == {("task", "t1"), ("note", "n1")} and jobs[("task", "t1")]["version"] == 1
    await log.ingest([laptop.op("task", "t1", title="Call Dana today")])
    assert (await _jobs(pool))[("task", "t1")]["version"] == 1  # waiting: whoever claims it reads the latest
    claim = await EmbedWorker(pool, Recorder()).claim()
    assert claim is not None and {j.key: j.version for j in claim.jobs} == {
        ("task", "t1"): 1,
        ("note", "n1"): 1,
    }
    assert claim.jobs[1].values is not None and claim.jobs[1].values["title"] == "Call Dana today"
    await log.ingest([laptop.op("task", "t1", title="Call Dana now"), laptop.op("task", "t1", notes="Q3")])
    assert (await _jobs(pool))[("task", "t1")]["version"] == 2  # claimed: one statement, one bump
    await log.ingest([laptop.op("task", "t1", quadrant=1, status="done")])  # not searched: nothing
    assert (await _jobs(pool))[("task", "t1")]["version"] == 2


# --- the worker -----------------------------------------------------------------------------------------


async def test_the_worker_embeds_what_was_pushed_as_the_laptop_would(
    pool: Pool, embedder: Embedder, workspace: Workspace
) -> None:
    log, laptop = PgActionLog(pool), Laptop()
    item = {
        "kind": "mail",
        "source": "gmail",
        "external_id": "m1",
        "title": "Spring fair shipment",
        "body": LONG_BODY,
        "occurred_at": _stamp(),
        "deleted": False,
        "participants": [{"name": "Dana Lee", "email": "dana@example.com", "role": "from"}],
        "extra": {},
    }
    rows = {
        ("task", "t1"): _task("Call Dana about the invoice", "She prefers mornings"),
        ("note", "n1"): {"body": "The wifi password is on the fridge", "tags": ["home"], "deleted": False},
        ("item", "i1"): item,
        ("person", "p1"): {
            "name": "Dana Lee",
            "emails": ["dana@example.com"],
            "org": "Acme",
            "job_title": "Buyer",
            "notes": "",
            "deleted": False,
        },
    }
    ops = [laptop.op(kind, entity_id, **fields) for (kind, entity_id), fields in rows.items()]
    await log.ingest(ops)
    worker = EmbedWorker(pool, embedder, batch=3)
    await worker.prepare()
    assert await _drain(worker) == 4
    assert await _jobs(pool) == {}
    stored = await _vectors(pool)

    # The same operations on a laptop, indexed by the laptop's own indexer: the same chunks, the same vectors.
    with workspace.store.transaction() as tx:
        for op in ops:
            tx.apply(op)
    Indexer(workspace.store).drain_all()
    laptop_chunks: dict[tuple[str, str], list[str]] = {}
    for kind, entity_id, _ord, text in workspace.store.query(
        "SELECT kind, entity_id, ord, text FROM chunks ORDER BY kind, entity_id, ord"
    ):
        laptop_chunks.setdefault((str(kind), str(entity_id)), []).append(str(text))
    assert set(laptop_chunks) == set(stored) == set(rows)
    for key, texts in laptop_chunks.items():
        assert [row[0] for row in stored[key]] == list(range(len(texts)))
        own = embedder.encode(texts)
        for (_ord, model, digest, vector), text, mine in zip(stored[key], texts, own, strict=True):
            assert model == "all-MiniLM-L6-v2" and digest == text_hash(text)
            assert float(vector @ mine) > 0.9999
    assert len(stored[("item", "i1")]) > 2
    assert await queue_status(pool) == QueueStatus(0, 0, sum(len(v) for v in stored.values()))


async def test_only_changed_chunks_are_encoded_again_and_stale_ones_removed(pool: Pool) -> None:
    log, laptop, model = PgActionLog(pool), Laptop(), Recorder()
    worker = EmbedWorker(pool, model)
    await log.ingest([laptop.op("note", "n1", body=LONG_BODY, tags=[], deleted=False)])
    await _drain(worker)
    first = await _vectors(pool)
    chunks = chunking.chunks("note", {"body": LONG_BODY, "tags": []})
    assert len(first[("note", "n1")]) == len(chunks) > 3 and sum(model.seen.values()) == len(chunks)
    model.seen.clear()
    edited = LONG_BODY.rsplit("\n\n", 1)[0] + "\n\nA new last paragraph."
    await log.ingest([laptop.op("note", "n1", body=edited)])
    await _drain(worker)
    new_chunks = chunking.chunks("note", {"body": edited, "tags": []})
    assert set(model.seen) == set(new_chunks) - set(chunks)  # the unchanged passages are not encoded again
    await log.ingest([laptop.op("note", "n1", body="Short now")])
    await _drain(worker)
    assert [(o, h) for o, _m, h, _v in (await _vectors(pool))[("note", "n1")]] == [
        (0, text_hash("Short now"))
    ]
    await log.ingest([laptop.op("note", "n1", deleted=True)])
    await _drain(worker)
    assert ("note", "n1") not in await _vectors(pool) and await _jobs(pool) == {}


async def test_a_claim_takes_the_smallest_of_the_next_due_entities(pool: Pool) -> None:
    log, laptop = PgActionLog(pool), Laptop()
    words = np.random.default_rng(3).integers(0, 10**9, 3000)  # text that does not compress to nothing
    sizes = {"n1": 1800, "n2": 10, "n3": 900, "n4": 40}
    await log.ingest(
        [laptop.op("note", k, body=" ".join(map(str, words[:n])), deleted=False) for k, n in sizes.items()]
    )
    worker = EmbedWorker(pool, Recorder(), batch=2)  # its window: the next 8 due
    first, second = await worker.claim(), await worker.claim()
    assert first is not None and second is not None
    assert [j.entity_id for j in first.jobs] == ["n2", "n4"]
    assert [j.entity_id for j in second.jobs] == ["n1", "n3"]


async def test_a_job_a_push_is_changing_is_not_claimed_until_the_push_commits(
    pg_server: PgTestServer, pg_url: str, pool: Pool
) -> None:
    log, laptop = PgActionLog(pool), Laptop()
    await log.ingest([laptop.op("task", "t1", **_task("Old title"))])
    worker = EmbedWorker(pool, Recorder())
    async with pg_server.pool(pg_url) as pushing, pushing.connection() as conn, conn.transaction():
        await ingest_on(conn, [laptop.op("task", "t1", title="New title")])
        assert await worker.claim() is None  # the push holds the job's row: skipped, not read stale
    claim = await worker.claim()
    assert claim is not None and claim.jobs[0].values is not None
    assert claim.jobs[0].values["title"] == "New title"


async def test_a_change_made_while_embedding_is_embedded_again(pool: Pool) -> None:
    log, laptop, model = PgActionLog(pool), Laptop(), Recorder()
    worker = EmbedWorker(pool, model)
    await log.ingest([laptop.op("task", "t1", **_task("First title"))])
    claim = await worker.claim()
    assert claim is not None
    await worker.embed(claim)
    await log.ingest([laptop.op("task", "t1", title="Second title")])  # while the claim is held
    await worker.finish(claim)
    job = (await _jobs(pool))[("task", "t1")]
    assert job["version"] == 2 and job["claimed_by"] is None and job["locked_until"] is None
    assert await worker.run_once() == 1
    (row,) = (await _vectors(pool))[("task", "t1")]
    assert row[2] == text_hash(chunking.chunks("task", _task("Second title"))[0])
    assert await _jobs(pool) == {}


async def test_two_workers_on_their_own_connections_never_embed_one_job_twice(
    pg_server: PgTestServer, pg_url: str, pool: Pool
) -> None:
    log, laptop = PgActionLog(pool), Laptop()
    titles = [f"Task {n}: follow up with supplier {n % 7} about order {n * 13}" for n in range(120)]
    await log.ingest([laptop.op("task", f"t{n}", **_task(t)) for n, t in enumerate(titles)])
    async with pg_server.pool(pg_url) as other:
        model_a, model_b = Recorder(delay=0.02), Recorder(delay=0.02)
        a = EmbedWorker(pool, model_a, batch=7, idle_s=0.05)
        b = EmbedWorker(other, model_b, batch=7, idle_s=0.05)
        stop = asyncio.Event()
        runs = [asyncio.create_task(a.run(stop)), asyncio.create_task(b.run(stop))]
        deadline = time.monotonic() + 60
        while (await queue_status(pool)).queued and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*runs)
    both = model_a.seen + model_b.seen
    assert model_a.calls > 2 and model_b.calls > 2  # both took part
    assert set(both) == {chunking.chunks("task", _task(t))[0] for t in titles}
    assert max(both.values()) == 1  # no text was encoded twice
    assert len(await _vectors(pool)) == 120 and await _jobs(pool) == {}


async def test_a_dead_workers_claim_is_claimed_again_when_its_lease_runs_out(pool: Pool) -> None:
    log, laptop = PgActionLog(pool), Laptop()
    await log.ingest([laptop.op("task", f"t{n}", **_task(f"Task {n}")) for n in range(3)])
    dead = EmbedWorker(pool, Recorder(), lease_s=0.5)
    claim = await dead.claim()  # ... and then the process is killed: nothing more from it
    assert claim is not None and len(claim.jobs) == 3
    alive = EmbedWorker(pool, Recorder(), lease_s=30)
    assert await alive.run_once() == 0  # leased to the dead worker
    await asyncio.sleep(0.6)
    assert await alive.run_once() == 3
    assert len(await _vectors(pool)) == 3 and await _jobs(pool) == {}
    await dead.embed(claim)  # a worker that was only slow, not dead: its claim was lost, it writes nothing
    await dead.finish(claim)
    assert await _jobs(pool) == {}


async def test_a_worker_killed_with_sigkill_leaves_its_jobs_to_the_next(pg_url: str, pool: Pool) -> None:
    await PgActionLog(pool).ingest([Laptop().op("note", "n1", body="Water the plants", deleted=False)])
    script = (
        "import asyncio, sys, time\n"
        "from aurora.node.db import connect_pool\n"
        "from aurora.node.embed_jobs import EmbedWorker\n"
        "from tests.node.test_embed_jobs import Recorder\n"
        "async def main():\n"
        "    pool = await connect_pool(sys.argv[1], 1, 1)\n"
        "    claim = await EmbedWorker(pool, Recorder(), lease_s=1.0).claim()\n"
        "    print(len(claim.jobs), flush=True)\n"
        "    time.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    with subprocess.Popen([sys.executable, "-c", script, pg_url], stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "1"
        finally:
            child.kill()  # SIGKILL: no cleanup of any kind
            child.wait(10)
    worker = EmbedWorker(pool, Recorder())
    assert await worker.run_once() == 0
    await asyncio.sleep(1.1)
    assert await worker.run_once() == 1 and ("note", "n1") in await _vectors(pool)


async def test_a_failing_job_is_retried_then_parked_with_its_error(pool: Pool) -> None:
    log, laptop = PgActionLog(pool), Laptop()
    await log.ingest(
        [
            laptop.op("task", "good", **_task("Book the dentist")),
            laptop.op("task", "bad", **_task("POISON pill")),
        ]
    )
    worker = EmbedWorker(pool, Recorder(poison="POISON"), max_attempts=3, retry_base_s=30)
    assert await worker.run_once() == 2
    jobs = await _jobs(pool)
    assert set(jobs) == {("task", "bad")} and ("task", "good") in await _vectors(pool)
    bad = jobs[("task", "bad")]
    assert bad["attempts"] == 1 and bad["claimed_by"] is None
    assert bad["last_error"] == "ValueError: the model choked on this text"
    assert await worker.run_once() == 0  # waiting for its retry
    quick = EmbedWorker(pool, Recorder(poison="POISON"), max_attempts=3, retry_base_s=0)
    async with pool.connection() as conn:
        await conn.execute("UPDATE embed_jobs SET locked_until = NULL")
    assert await quick.run_once() == 1 and await quick.run_once() == 1
    assert await quick.run_once() == 0  # parked after 3 attempts
    assert await queue_status(pool, max_attempts=3) == QueueStatus(0, 1, 1)
    assert (await _jobs(pool))[("task", "bad")]["attempts"] == 3
    await log.ingest([laptop.op("task", "bad", title="A harmless title")])  # a change un-parks it
    assert (await _jobs(pool))[("task", "bad")]["attempts"] == 0
    assert await quick.run_once() == 1 and await _jobs(pool) == {}


# --- in `aurora-node serve` -----------------------------------------------------------------------------


def _in_thread(coro: Any) -> Any:
    with ThreadPoolExecutor(1) as runner:
        return runner.submit(asyncio.run, coro).result()


def test_serve_runs_a_worker_unless_it_is_turned_off(pg_url: str, tmp_path: Path) -> None:
    async def push_and_wait(entity_id: str, seconds: float) -> bool:
        pool = await connect_pool(pg_url, 1, 1)
        try:
            await PgActionLog(pool).ingest([Laptop().op("note", entity_id, body="Pick up the parcel")])
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if ("note", entity_id) in await _vectors(pool):
                    return True
                await asyncio.sleep(0.1)
            return False
        finally:
            await pool.close()

    settings = NodeSettings(database_url=pg_url, data_dir=tmp_path)
    with embedding_in_background(settings.model_copy(update={"embed": False})):
        assert not _in_thread(push_and_wait("n1", 1.5))
    with embedding_in_background(settings):
        assert _in_thread(push_and_wait("n2", 60))
    assert NodeSettings().embed  # on by default


def test_the_node_does_not_load_the_laptops_store() -> None:
    code = (
        "import sys, aurora.node.embed_jobs, aurora.node.vectors_api; "
        "laptop = ('apsw', 'aurora.app.store', 'aurora.app.search.indexer'); "
        "print(' '.join(m for m in laptop if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


# --- POST /v1/vectors -----------------------------------------------------------------------------------


@pytest.fixture
def node(pg_url: str, tmp_path: Path) -> Iterator[str]:
    with running_node(pg_url, tmp_path / "node") as url:
        yield url


def _pair(node: str, pg_url: str, name: str = "laptop") -> dict[str, str]:
    answer = httpx.post(f"{node}/v1/pair", json={"code": pairing_code(pg_url, name), "name": name})
    assert answer.status_code == 200, answer.text
    tokens: dict[str, str] = answer.json()
    return tokens


def test_laptops_fetch_vectors_for_entities_they_lack(node: str, pg_url: str) -> None:
    tokens = _pair(node, pg_url)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    laptop = Laptop()
    laptop.id = tokens["device_id"]
    laptop.clock = HybridClock(laptop.id)
    ops = [
        laptop.op("note", "n1", body=LONG_BODY, tags=[], deleted=False),
        laptop.op("task", "t1", **_task("Renew the passport")),
    ]
    pushed = httpx.post(f"{node}/v1/ops/push", json={"ops": [op.model_dump() for op in ops]}, headers=headers)
    assert pushed.status_code == 200 and len(pushed.json()["accepted"]) == 2

    async def embed_the_note() -> None:
        pool = await connect_pool(pg_url, 1, 2)
        try:
            async with pool.connection() as conn:  # the task stays queued
                await conn.execute("UPDATE embed_jobs SET attempts = 99 WHERE entity = 'task'")
            await _drain(EmbedWorker(pool, Recorder(), max_attempts=5))
        finally:
            await pool.close()

    _in_thread(embed_the_note())
    ask = {
        "entities": [
            {"entity": "note", "entity_id": "n1"},
            {"entity": "task", "entity_id": "t1"},
            {"entity": "note", "entity_id": "nobody"},
            {"entity": "note", "entity_id": "n1"},
        ]
    }
    answer = httpx.post(f"{node}/v1/vectors", json=ask, headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["dim"] == DIM and body["encoding"] == "f32le-base64"
    assert body["pending"] == [{"entity": "task", "entity_id": "t1"}]
    (note,) = body["entities"]
    texts = chunking.chunks("note", {"body": LONG_BODY, "tags": []})
    assert note["model"] == "recorder" and [c["ord"] for c in note["chunks"]] == list(range(len(texts)))
    for chunk, text in zip(note["chunks"], texts, strict=True):
        assert chunk["text_hash"] == text_hash(text)
        assert np.array_equal(decode_vector(chunk["vector"]), _unit(text))  # exact, float32 for float32
    other_model = httpx.post(f"{node}/v1/vectors", json={**ask, "model": "all-MiniLM-L6-v2"}, headers=headers)
    assert other_model.json()["entities"] == []


def test_the_vectors_route_needs_a_device_and_keeps_its_limits(node: str, pg_url: str) -> None:
    one = {"entities": [{"entity": "note", "entity_id": "n1"}]}
    refused = httpx.post(f"{node}/v1/vectors", json=one)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    bad = httpx.post(f"{node}/v1/vectors", json=one, headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401
    tokens = _pair(node, pg_url)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert httpx.post(f"{node}/v1/vectors", json=one, headers=headers).json()["entities"] == []
    too_many = {"entities": [{"entity": "note", "entity_id": f"n{n}"} for n in range(MAX_ENTITIES + 1)]}
    for wrong in (
        too_many,
        {"entities": []},
        {"entities": [{"entity": "note"}]},
        {"entities": [{"entity": "Note; DROP", "entity_id": "x"}]},
        {**one, "extra": 1},
        {"entities": [{"entity": "note", "entity_id": "x" * 65}]},
        {**one, "model": "mini\x00lm"},  # PostgreSQL text cannot hold NUL: refused, not a server error
    ):
        answer = httpx.post(f"{node}/v1/vectors", json=wrong, headers=headers)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_request", wrong

    async def revoke() -> None:
        pool = await connect_pool(pg_url, 1, 1)
        try:
            await auth.revoke_device(pool, tokens["device_id"])
        finally:
            await pool.close()

    _in_thread(revoke())
    gone = httpx.post(f"{node}/v1/vectors", json=one, headers=headers)
    assert gone.status_code == 403 and gone.json()["error"]["code"] == "device_revoked"
