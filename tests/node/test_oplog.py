"""The node's operation log on a real PostgreSQL: ingest, merge into entities, push checks, pull, and
sequence numbers that a puller never skips while several node processes write at once."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aurora.node import oplog
from aurora.node.db import Pool, connect_pool
from aurora.node.oplog import CHANNEL, PgActionLog, _dumps, ingest_on
from aurora.node.registry import Registry
from aurora.sync import EntityState, Hlc, HybridClock, Operation, merge, new_id
from aurora.sync.protocol import MAX_BATCH, MAX_CLOCK_AHEAD_MS, MAX_OP_BYTES, PullResponse, PushRequest
from tests.node.pgtest import PgTestServer

NOW_MS = 1_800_000_000_000


class Device:
    """Makes operations for one device, stamped by its own clock."""

    def __init__(self, device_id: str, start_ms: int = NOW_MS) -> None:
        self.id = device_id
        self.clock = HybridClock(device_id, wall=lambda: start_ms)

    def op(self, entity_id: str = "t1", **fields: Any) -> Operation:
        return Operation(
            op_id=new_id(),
            device_id=self.id,
            hlc=self.clock.now().encode(),
            entity="task",
            entity_id=entity_id,
            fields=fields or {"title": "a task"},
        )


def raw(op: Operation) -> dict[str, Any]:
    return op.model_dump()


async def entity_rows(pool: Pool) -> dict[tuple[str, str], EntityState]:
    async with pool.connection() as conn:
        cur = await conn.execute('SELECT entity, entity_id, "values", clocks FROM entities')
        return {(e, i): EntityState(v, c) for e, i, v, c in await cur.fetchall()}


def folded(ops: list[Operation]) -> dict[tuple[str, str], EntityState]:
    states: dict[tuple[str, str], EntityState] = {}
    for op in ops:
        key = (op.entity, op.entity_id)
        states[key] = merge(states.get(key), op)
    return states


# --- ingest ---------------------------------------------------------------------------------------------


async def test_an_empty_log_has_head_zero_and_no_state(action_log: PgActionLog) -> None:
    assert await action_log.head() == 0
    assert await action_log.after(0, 10) == []
    assert await action_log.state("task", "nope") is None


async def test_ingest_stores_new_operations_in_order_once(action_log: PgActionLog) -> None:
    dev = Device("devA")
    ops = [dev.op(f"t{i}", title=f"task {i}") for i in range(5)]
    assert await action_log.ingest(ops) == ops
    assert await action_log.ingest(ops) == []
    assert await action_log.ingest([ops[2], ops[2]]) == []
    listed = await action_log.after(0, 100)
    assert [op for _, op in listed] == ops
    seqs = [seq for seq, _ in listed]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert await action_log.head() == seqs[-1]
    assert await action_log.after(seqs[1], 2) == listed[2:4]


async def test_a_batch_repeating_an_operation_stores_it_once(action_log: PgActionLog) -> None:
    dev = Device("devA")
    first, second = dev.op(title="one"), dev.op(title="two")
    assert await action_log.ingest([first, second, first]) == [first, second]
    assert len(await action_log.after(0, 10)) == 2


async def test_ingest_merges_each_field_by_its_clock(action_log: PgActionLog) -> None:
    a, b = Device("devA"), Device("devB", NOW_MS + 5)
    older = a.op(title="old", urgent=True)
    newer = b.op(title="new")
    await action_log.ingest([newer])
    await action_log.ingest([older])  # arrives late: loses title, still sets urgent
    state = await action_log.state("task", "t1")
    assert state == EntityState({"title": "new", "urgent": True}, {"title": newer.hlc, "urgent": older.hlc})


async def test_ingest_announces_the_new_head_when_it_commits(pg_url: str, action_log: PgActionLog) -> None:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as listener:
        await listener.execute(f"LISTEN {CHANNEL}")
        await action_log.ingest([Device("devA").op()])
        await action_log.ingest([Device("devA").op(), Device("devA").op()])
        heads = []
        async for note in listener.notifies(timeout=5, stop_after=2):
            heads.append(int(note.payload))
    assert heads == [1, 3]


async def test_numbers_read_back_exactly_as_they_were_stored(action_log: PgActionLog) -> None:
    # jsonb keeps numbers as decimals: a float written with an exponent would come back as an integer.
    op = Device("devA").op(position=3.602879272399667e16)
    await action_log.ingest([op])
    [(_, stored)] = await action_log.after(0, 1)
    assert stored == op
    assert type(stored.fields["position"]) is float
    state = await action_log.state("task", "t1")
    assert state is not None and state.values["position"] == op.fields["position"]
    assert type(state.values["position"]) is float


@st.composite
def histories(draw: st.DrawFn) -> list[Operation]:
    """A few devices editing a few tasks with colliding wall clocks; every HLC unique (counter = index)."""
    values: dict[str, st.SearchStrategy[Any]] = {
        "title": st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=6),
        "urgent": st.booleans(),
        "quadrant": st.integers(1, 4),
        "deleted": st.booleans(),
        "tags": st.lists(st.sampled_from(["home", "work", "vip"]), max_size=2, unique=True),
        "position": st.floats(allow_nan=False, allow_infinity=False, width=32),
    }
    ops = []
    for index in range(draw(st.integers(1, 12))):
        names = draw(st.sets(st.sampled_from(sorted(values)), min_size=1, max_size=3))
        device = draw(st.sampled_from(["devA", "devB", "devC"]))
        hlc = Hlc(NOW_MS + draw(st.integers(0, 3)), index, device)
        ops.append(
            Operation(
                op_id=new_id(),
                device_id=device,
                hlc=hlc.encode(),
                entity="task",
                entity_id=draw(st.sampled_from(["t1", "t2"])),
                fields={name: draw(values[name]) for name in sorted(names)},
            )
        )
    return ops


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=histories(), data=st.data())
async def test_entities_equal_the_merge_of_the_operations_in_any_order(
    pool: Pool, ops: list[Operation], data: st.DataObject
) -> None:
    async with pool.connection() as conn:
        await conn.execute("TRUNCATE ops, entities RESTART IDENTITY")
    log = PgActionLog(pool)
    arrivals = data.draw(st.permutations(ops)) + data.draw(st.lists(st.sampled_from(ops), max_size=4))
    while arrivals:
        size = data.draw(st.integers(1, len(arrivals)))
        await log.ingest(arrivals[:size])
        arrivals = arrivals[size:]
    assert await entity_rows(pool) == folded(ops)
    assert sorted(op.op_id for _, op in await log.after(0, 100)) == sorted(op.op_id for op in ops)


# --- push -----------------------------------------------------------------------------------------------


def node_log(pool: Pool) -> PgActionLog:
    return PgActionLog(pool, wall_ms=lambda: NOW_MS)


async def test_a_corrupt_operation_is_refused_alone(pool: Pool) -> None:
    log = node_log(pool)
    dev = Device("devA")
    good = [dev.op("t1"), dev.op("t2")]
    corrupt = {**raw(dev.op("t3")), "fields": {"no_such_field": 1}}
    answer = await log.push("devA", PushRequest(ops=[raw(good[0]), corrupt, raw(good[1])]))
    assert answer.accepted == [good[0].op_id, good[1].op_id]
    [rejected] = answer.rejected
    assert (rejected.index, rejected.op_id, rejected.code) == (1, corrupt["op_id"], "invalid_operation")
    assert "no_such_field" in rejected.message and "\n" not in rejected.message
    assert answer.head == await log.head() == 2
    assert await log.state("task", "t3") is None
    assert await log.state("task", "t2") is not None


async def test_a_retried_push_is_acknowledged_again_and_changes_nothing(pool: Pool) -> None:
    log = node_log(pool)
    batch = PushRequest(ops=[raw(Device("devA").op(f"t{i}")) for i in range(3)])
    first = await log.push("devA", batch)
    second = await log.push("devA", batch)
    assert first == second
    assert await log.head() == 3


async def test_push_refuses_what_is_not_storable(pool: Pool) -> None:
    log = node_log(pool)
    async with pool.connection() as conn:  # devB is paired: devA may not push as devB
        await conn.execute("INSERT INTO devices (id, name) VALUES ('devB', 'b')")
    dev = Device("devA")
    cases = {
        "op_too_large": {**raw(dev.op()), "fields": {"notes": "x" * (MAX_OP_BYTES + 1)}},
        "wrong_device": raw(Device("devB").op()),
        "clock_ahead": raw(Device("devA", NOW_MS + MAX_CLOCK_AHEAD_MS + 1000).op()),
        "not json": {**raw(dev.op()), "fields": {"position": float("nan")}},
        "nul": {**raw(dev.op()), "fields": {"title": "a\x00b"}},
        "surrogate": {**raw(dev.op()), "fields": {"title": "a\ud800"}},
        "missing": {"op_id": "x"},
    }
    just_ahead = raw(Device("devA", NOW_MS + MAX_CLOCK_AHEAD_MS).op("ok"))
    answer = await log.push("devA", PushRequest(ops=[*cases.values(), just_ahead]))
    codes = {list(cases)[r.index]: r.code for r in answer.rejected}
    assert codes == {
        "op_too_large": "op_too_large",
        "wrong_device": "wrong_device",
        "clock_ahead": "clock_ahead",
        "not json": "invalid_operation",
        "nul": "invalid_operation",
        "surrogate": "invalid_operation",
        "missing": "invalid_operation",
    }
    assert answer.accepted == [just_ahead["op_id"]]
    assert all(len(r.message) <= 500 and "\n" not in r.message for r in answer.rejected)
    assert await log.head() == 1


async def test_push_records_the_devices_pending_count(pool: Pool, registry: Registry) -> None:
    device_id = await registry.add_device("laptop")
    log = node_log(pool)
    await log.push(device_id, PushRequest(ops=[], pending=42))
    info = await registry.get(device_id)
    assert info is not None and info.pending_ops == 42 and info.last_seen is not None


# --- pull -----------------------------------------------------------------------------------------------


async def test_pull_leaves_out_the_devices_own_operations_but_moves_past_them(
    action_log: PgActionLog,
) -> None:
    a, b = Device("devA"), Device("devB")
    theirs = [b.op("t1"), b.op("t2")]
    await action_log.ingest([theirs[0], a.op("t3"), a.op("t4"), theirs[1], a.op("t5")])
    answer = await action_log.pull("devA", 0)
    assert [p.op for p in answer.ops] == theirs
    assert [p.seq for p in answer.ops] == [1, 4]
    assert (answer.cursor, answer.head, answer.more) == (5, 5, False)
    # A device that alone writes still reaches the head.
    alone = await action_log.pull("devA", 4)
    assert (alone.ops, alone.cursor, alone.more) == ([], 5, False)


async def test_pull_pages_with_the_more_flag(action_log: PgActionLog) -> None:
    b = Device("devB")
    await action_log.ingest([b.op(f"t{i}") for i in range(7)])
    cursor, pages = 0, []
    while True:
        answer = await action_log.pull("devA", cursor, limit=3)
        pages.append([p.seq for p in answer.ops])
        cursor = answer.cursor
        if not answer.more:
            break
    assert pages == [[1, 2, 3], [4, 5, 6], [7]]
    assert cursor == 7


async def test_pull_at_the_head_has_nothing_more(action_log: PgActionLog) -> None:
    await action_log.ingest([Device("devB").op(f"t{i}") for i in range(3)])
    answer = await action_log.pull("devA", 0, limit=3)
    assert (len(answer.ops), answer.cursor, answer.more) == (3, 3, False)


async def test_a_cursor_past_the_head_comes_back_as_the_head(action_log: PgActionLog) -> None:
    await action_log.ingest([Device("devB").op()])
    answer = await action_log.pull("devA", 50)
    assert (answer.ops, answer.cursor, answer.head) == ([], 1, 1)


async def test_pull_refuses_a_limit_out_of_range(action_log: PgActionLog) -> None:
    for limit in (0, MAX_BATCH + 1):
        try:
            await action_log.pull("devA", 0, limit=limit)
        except ValueError as error:
            assert f"1 to {MAX_BATCH}" in str(error)
        else:
            raise AssertionError(f"limit {limit} was accepted")


# --- several node processes -----------------------------------------------------------------------------


async def test_a_writer_that_commits_late_is_not_skipped(pg_server: PgTestServer, pg_url: str) -> None:
    """Writer A takes its sequence numbers, then stalls before committing while writer B pushes: B must
    wait, or a puller would see B's later numbers, move past A's, and never read A's operations."""
    async with pg_server.pool(pg_url) as pool_a, pg_server.pool(pg_url) as pool_b:
        puller = PgActionLog(pool_b)
        slow_ops = [Device("devA").op("a1"), Device("devA").op("a2")]
        fast_ops = [Device("devB").op("b1")]
        async with pool_a.connection() as conn:
            async with conn.transaction():
                await ingest_on(conn, slow_ops)
                fast = asyncio.create_task(PgActionLog(pool_b).ingest(fast_ops))
                await asyncio.sleep(0.2)
                assert not fast.done(), "the second writer must wait for the first to commit"
                assert await puller.after(0, 10) == []
        await fast
        seen = await puller.after(0, 10)
        assert [op for _, op in seen] == slow_ops + fast_ops
        assert [seq for seq, _ in seen] == [1, 2, 3]


async def test_two_node_processes_pushing_while_a_device_pulls_lose_nothing(
    pg_server: PgTestServer, pg_url: str
) -> None:
    async with pg_server.pool(pg_url) as pool_a, pg_server.pool(pg_url) as pool_b:
        writers = [PgActionLog(pool_a), PgActionLog(pool_b)]
        devices = [Device("devA"), Device("devB")]
        per_writer, batches = 300, 30
        written: list[Operation] = []

        async def write(index: int) -> None:
            rng = random.Random(index)
            for _ in range(batches):
                ops = [devices[index].op(f"t{rng.randrange(20)}") for _ in range(per_writer // batches)]
                written.extend(ops)
                await writers[index].ingest(ops)
                await asyncio.sleep(rng.random() / 500)

        pulled: list[tuple[int, Operation]] = []
        done = asyncio.Event()

        async def pull() -> None:
            reader = PgActionLog(pool_a)
            cursor = 0
            while True:
                finished = done.is_set()  # read before the page, so the last page comes after every commit
                page = await reader.after(cursor, 7)
                pulled.extend(page)
                if page:
                    cursor = page[-1][0]
                elif finished:
                    return
                else:
                    await asyncio.sleep(0)

        reader = asyncio.create_task(pull())
        await asyncio.gather(write(0), write(1))
        done.set()
        await reader
        seqs = [seq for seq, _ in pulled]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert sorted(op.op_id for _, op in pulled) == sorted(op.op_id for op in written)
        assert len(pulled) == 2 * per_writer
        assert await entity_rows(pool_a) == folded(written)


async def test_pull_json_is_the_pull_answer_and_says_whether_the_device_may_pull(
    pool: Pool, registry: Registry
) -> None:
    """The API sends `pull_json` as it is: it must be exactly the `PullResponse` of `pull`, read back by a
    laptop's validation, numbers and text included."""
    log = PgActionLog(pool)
    b = Device("devB")
    ops = [
        b.op("t1", title='Café ☕ "quoted" \\ back\nslash', position=3.602879272399667e16),
        b.op("t2", title="plain", urgent=True, quadrant=2, tags=["home", "work"]),
        b.op("t3", title="zero", position=0.1, urgency=1.0),
    ]
    await log.ingest(ops)
    device_id = await registry.add_device("laptop")
    page = await log.pull_json(device_id, 0, limit=2)
    parsed = PullResponse.model_validate_json(page.body)
    assert parsed == await log.pull(device_id, 0, limit=2)
    assert [p.op for p in parsed.ops] == ops[:2] and (parsed.cursor, parsed.head, parsed.more) == (2, 3, True)
    assert type(parsed.ops[0].op.fields["position"]) is float
    assert page.op_count == 2 and page.device_active
    assert not (await log.pull_json("never-paired", 0)).device_active
    await registry.revoke(device_id)
    assert not (await log.pull_json(device_id, 0)).device_active


async def test_a_pushed_operation_is_stored_as_it_was_sent(pool: Pool) -> None:
    """Push stores each operation as validated: numbers that jsonb would turn into integers, an integer
    the check made a float, and text outside ASCII, read back equal."""
    log = node_log(pool)
    dev = Device("devA")
    sent = [dev.op("t1", title="Ünïcode ✓", position=3.602879272399667e16), dev.op("t2", position=-1e300)]
    as_int = {**raw(dev.op("t3")), "fields": {"position": 5}}  # an integer in a float field: a float
    answer = await log.push("devA", PushRequest(ops=[*(raw(op) for op in sent), as_int]))
    assert answer.accepted == [*(op.op_id for op in sent), as_int["op_id"]] and not answer.rejected
    stored = [op for _, op in await log.after(0, 10)]
    assert stored[:2] == sent and stored[2].fields == {"position": 5.0}
    assert all(type(op.fields["position"]) is float for op in stored)
    t3 = await log.state("task", "t3")
    assert t3 is not None and type(t3.values["position"]) is float
    state = await log.state("task", "t1")
    assert state is not None and state.values == {"title": "Ünïcode ✓", "position": 3.602879272399667e16}


async def test_an_unencodable_op_id_is_refused_without_being_echoed(pool: Pool) -> None:
    log = node_log(pool)
    broken = {**raw(Device("devA").op()), "op_id": "a\ud800", "device_id": "x\udfff"}
    answer = await log.push("devA", PushRequest(ops=[broken]))
    [rejected] = answer.rejected
    assert (rejected.op_id, rejected.code) == (None, "invalid_operation")


def _sized(op: Operation, size: int, **fields: Any) -> dict[str, Any]:
    """`op` as sent, its notes padded so that its JSON is `size` bytes."""
    sent = {**raw(op), "fields": {**fields, "notes": ""}}
    sent["fields"]["notes"] = "x" * (size - len(_dumps(sent).encode("utf-8")))
    assert len(_dumps(sent).encode("utf-8")) == size
    return sent


async def test_the_size_limit_measures_what_was_sent(pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    """An integer in a float field is stored as a float, two bytes longer: the limit is on what was sent.
    (No kind's fields reach the real limit along with a float field, so the limit is lowered here.)"""
    limit = 2000
    monkeypatch.setattr(oplog, "MAX_OP_BYTES", limit)
    log = node_log(pool)
    dev = Device("devA")
    at_limit = _sized(dev.op("t1"), limit, position=5)
    over = _sized(dev.op("t2"), limit + 1, position=5)
    plain_over = _sized(dev.op("t3"), limit + 1, position=5.0)
    answer = await log.push("devA", PushRequest(ops=[at_limit, over, plain_over]))
    assert answer.accepted == [at_limit["op_id"]]
    assert [(r.index, r.code) for r in answer.rejected] == [(1, "op_too_large"), (2, "op_too_large")]
    assert all(f"is {limit + 1} bytes" in r.message for r in answer.rejected)
    state = await log.state("task", "t1")
    assert state is not None and state.values["position"] == 5.0 and type(state.values["position"]) is float


async def test_a_push_stores_the_merge_of_new_held_and_twice_set_entities(pool: Pool) -> None:
    """Entities new to the node and set once are built by PostgreSQL from the operation; the rest are
    merged in Python: all of them equal the merge of the operations."""
    log = node_log(pool)
    a, b = Device("devA"), Device("devB", NOW_MS - 5000)
    first = [a.op("held", title="held", position=1.0), a.op("both", title="first")]
    await log.push("devA", PushRequest(ops=[raw(op) for op in first]))
    later = [
        a.op("fresh", title="fresh", urgent=True, tags=["x"]),
        b.op("held", title="older, loses", notes="new field"),
        a.op("twice", title="one"),
        a.op("twice", position=2.0),
        b.op("both", title="older"),
        a.op("both", title="newest"),
    ]
    answer = await log.push("devA", PushRequest(ops=[raw(op) for op in later]))
    assert len(answer.accepted) == len(later) and not answer.rejected
    assert await entity_rows(pool) == folded(first + later)


async def test_connections_the_server_closed_are_replaced_at_checkout(pg_url: str) -> None:
    """A restart closes every connection; the pool must not hand those out (its check at checkout skips
    the round trip only for a connection the server has said nothing on)."""
    pool = await connect_pool(pg_url, 3, 3)
    try:
        log = PgActionLog(pool)
        await pool.wait()
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT pg_backend_pid()")
            row = await cur.fetchone()
            assert row is not None
            own = row[0]
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            for _ in range(100):  # until every pooled connection is gone
                cur = await admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                )
                row = await cur.fetchone()
                if row is not None and row[0] == 0:
                    break
                await asyncio.sleep(0.02)
        for _ in range(6):  # every connection the pool held, and then some
            assert await log.head() == 0
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT pg_backend_pid()")
            row = await cur.fetchone()
            assert row is not None and row[0] != own
    finally:
        await pool.close()
