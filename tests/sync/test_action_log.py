"""The `ActionLog` contract (`aurora.sync.protocol.ActionLog`), run against both implementations: the
laptop's SQLite log (`SqliteActionLog` over a real store file) and the node's PostgreSQL log
(`PgActionLog` on a real database).

- `ingest` stores and applies each operation not seen before, and returns those, in the order given; the
  same operations again change nothing and return []; an operation twice in one batch is new once.
- `after(cursor, limit)` lists operations by growing sequence number, at most `limit`, and a listed
  operation never changes; `head()` is the largest sequence number (0 when empty).
- `state(kind, id)` is last-writer-wins per field by HLC (a delete is the `deleted` field), i.e. the pure
  `aurora.sync.merge` folded over the operations, whatever order they arrived in; and the laptop and the
  node hold the same state after the same operations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aurora.schema import ENTITY_FIELDS, EntityKind
from aurora.sync import EntityState, Hlc, Operation
from aurora.sync.protocol import ActionLog
from tests.node.pgtest import PgTestServer
from tests.sync.replicas import Replicas, pg_replicas, sqlite_replicas
from tests.sync.strategies import (
    BASE_MS,
    FIELD_VALUES,
    KINDS,
    Key,
    deliveries,
    folded,
    histories,
)

PROPERTY = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> PgTestServer | None:
    """None for the laptop's log; the session's PostgreSQL for the node's (skipped where there is none)."""
    if request.param == "postgres":
        server: PgTestServer = request.getfixturevalue("pg_server")
        return server
    return None


@pytest.fixture
async def replicas(backend: PgTestServer | None, tmp_path: Path) -> AsyncIterator[Replicas]:
    if backend is None:
        async with sqlite_replicas(tmp_path / "replicas") as made:
            yield made
    else:
        async with pg_replicas(backend) as made:
            yield made


@pytest.fixture
async def log(replicas: Replicas) -> ActionLog:
    return await replicas.fresh()


def op(
    n: int,
    fields: dict[str, Any],
    *,
    wall: int = 0,
    counter: int = 0,
    device: str = "devA",
    kind: EntityKind = "task",
    entity_id: str = "e1",
) -> Operation:
    return Operation(
        op_id=f"op-{n}",
        device_id=device,
        hlc=Hlc(BASE_MS + wall, counter, device).encode(),
        entity=kind,
        entity_id=entity_id,
        fields=fields,
    )


def titled(n: int, title: str, **kw: Any) -> Operation:
    return op(n, {"title": title}, wall=n, entity_id=f"t{n}", **kw)


async def states_of(log: ActionLog, keys: set[Key]) -> dict[Key, EntityState | None]:
    return {key: await log.state(*key) for key in sorted(keys)}


async def everything(log: ActionLog) -> tuple[int, list[tuple[int, Operation]]]:
    return await log.head(), await log.after(0, 10_000)


# --- ingest -----------------------------------------------------------------------------------------------


async def test_an_empty_log_has_nothing(log: ActionLog) -> None:
    assert await log.head() == 0
    assert await log.after(0, 10) == []
    assert await log.state("task", "e1") is None


async def test_ingest_returns_the_new_operations_in_the_order_given(log: ActionLog) -> None:
    a, b, c, d, e = (titled(n, f"task {n}") for n in range(5))
    assert await log.ingest([c, a, b]) == [c, a, b]
    assert await log.ingest([d, b, e, c]) == [d, e]
    assert [o for _, o in await log.after(0, 100)] == [c, a, b, d, e]
    state = await log.state("task", "t3")
    assert state is not None and state.values == {"title": "task 3"}


async def test_ingesting_the_same_operations_again_changes_nothing(log: ActionLog) -> None:
    ops = [titled(n, f"task {n}") for n in range(4)]
    ops.append(op(9, {"deleted": True}, wall=9, entity_id="t1"))
    assert await log.ingest(ops) == ops
    keys = {(o.entity, o.entity_id) for o in ops}
    before, states = await everything(log), await states_of(log, keys)
    assert await log.ingest(list(reversed(ops))) == []
    assert await log.ingest(ops[2:3]) == []
    assert await log.ingest([]) == []
    assert await everything(log) == before
    assert await states_of(log, keys) == states


async def test_an_operation_twice_in_one_batch_is_new_once(log: ActionLog) -> None:
    a, b = titled(1, "one"), titled(2, "two")
    assert await log.ingest([a, a, b, a, b]) == [a, b]
    listed = await log.after(0, 100)
    assert [o for _, o in listed] == [a, b]
    assert await log.head() == listed[-1][0]


# --- after and head ---------------------------------------------------------------------------------------


async def test_after_lists_by_growing_seq_within_the_limit(log: ActionLog) -> None:
    ops = [titled(n, f"task {n}") for n in range(7)]
    await log.ingest(ops[:3])
    first = await log.after(0, 100)
    head = await log.head()
    await log.ingest(ops[3:5])
    await log.ingest(ops[5:])

    listed = await log.after(0, 100)
    seqs = [seq for seq, _ in listed]
    assert [o for _, o in listed] == ops
    assert all(x < y for x, y in pairwise(seqs))
    assert seqs[0] >= 1
    assert listed[:3] == first  # a listed operation never changes, nor does its number
    assert seqs[3] > head  # numbers only grow
    assert await log.head() == seqs[-1]

    assert await log.after(0, 2) == listed[:2]
    assert await log.after(seqs[1], 3) == listed[2:5]
    assert await log.after(seqs[4], 100) == listed[5:]
    assert await log.after(seqs[-1], 100) == []
    assert await log.after(0, 0) == []
    # A cursor between two numbers (a log may have holes) lists from the next one.
    assert await log.after(seqs[2], 1) == [listed[3]]


async def test_head_follows_the_log(log: ActionLog) -> None:
    assert await log.head() == 0
    await log.ingest([titled(1, "one")])
    one = await log.head()
    assert one >= 1
    await log.ingest([titled(1, "one")])
    assert await log.head() == one  # nothing new, no new number
    await log.ingest([titled(2, "two"), titled(3, "three")])
    assert await log.head() > one
    assert await log.head() == (await log.after(0, 100))[-1][0]


# --- state ------------------------------------------------------------------------------------------------


async def test_each_field_keeps_the_value_with_the_latest_clock(log: ActionLog) -> None:
    created = op(
        1,
        {"title": "Buy milk", "quadrant": 4, "deleted": False, "created_at": "2025-06-15T09:00:00+00:00"},
        wall=10,
        device="devA",
    )
    renamed = op(2, {"title": "Buy oat milk"}, wall=20, device="devB")
    older = op(3, {"title": "Buy soy milk", "notes": "from C"}, wall=15, device="devC")
    deleted = op(4, {"deleted": True}, wall=30, device="devA")
    # The same millisecond and counter: the device id breaks the tie, and "devB" sorts after "devA".
    restored = op(5, {"deleted": False}, wall=30, device="devB")

    await log.ingest([renamed, deleted])
    state = await log.state("task", "e1")
    assert state is not None and state.values == {"title": "Buy oat milk", "deleted": True}

    await log.ingest([restored, created])
    await log.ingest([older])
    state = await log.state("task", "e1")
    assert state is not None
    assert state.values == {
        "title": "Buy oat milk",
        "notes": "from C",
        "quadrant": 4,
        "deleted": False,
        "created_at": "2025-06-15T09:00:00+00:00",
    }
    assert state.clocks == {
        "title": renamed.hlc,
        "notes": older.hlc,
        "quadrant": created.hlc,
        "deleted": restored.hlc,
        "created_at": created.hlc,
    }


async def test_a_delete_is_a_field_that_a_later_edit_does_not_undo(log: ActionLog) -> None:
    created = op(1, {"title": "Gym", "deleted": False}, wall=1)
    deleted = op(2, {"deleted": True}, wall=3, device="devB")
    edited = op(3, {"title": "Gym at 7"}, wall=2, device="devC")
    await log.ingest([deleted, edited, created])
    state = await log.state("task", "e1")
    assert state is not None and state.values == {"title": "Gym at 7", "deleted": True}


EXAMPLES: dict[EntityKind, dict[str, Any]] = {
    "task": {
        "title": "Write the Q4 report",
        "notes": "numbers in the blue folder",
        "due": "2025-12-01T17:00:00+01:00",
        "urgent": True,
        "important": True,
        "urgency": 0.75,
        "importance": 1.0,
        "quadrant": 1,
        "manual": False,
        "position": 3.602879272399667e16,
        "status": "open",
        "completed_at": None,
        "tags": ["work", "q4"],
        "source": "manual",
        "created_at": "2025-06-15T09:00:00+00:00",
        "updated_at": "2025-06-15T09:00:00+00:00",
        "deleted": False,
    },
    "note": {
        "body": "Wi-fi password is on the fridge 🧊",
        "colour": "blue",
        "pinned": True,
        "tags": ["home"],
        "created_at": "2025-06-15T09:00:00+00:00",
        "updated_at": "2025-06-15T09:00:00+00:00",
        "deleted": False,
    },
    "item": {
        "kind": "mail",
        "source": "gmail",
        "external_id": "<abc@example.com>",
        "title": "Offsite agenda",
        "body": "See you on Friday.",
        "occurred_at": "2025-06-14T08:30:00-05:00",
        "ends_at": None,
        "thread_id": "thread-1",
        "participants": [{"name": "Dana", "email": "dana@example.com", "role": "from"}],
        "extra": {"labels": ["INBOX"], "size": 1234, "score": 0.5, "big": 1e300, "nested": {"x": None}},
        "created_at": "2025-06-15T09:00:00+00:00",
        "updated_at": "2025-06-15T09:00:00+00:00",
        "deleted": False,
    },
    "person": {
        "name": "Dana Scully",
        "emails": ["dana@example.com"],
        "phones": ["+1 555 0100"],
        "org": "FBI",
        "job_title": "Agent",
        "vip": True,
        "notes": "prefers mornings",
        "created_at": "2025-06-15T09:00:00+00:00",
        "updated_at": "2025-06-15T09:00:00+00:00",
        "deleted": False,
    },
    "interaction": {
        "person_id": "p1",
        "item_id": "i1",
        "kind": "mail_in",
        "occurred_at": "2025-06-14T13:30:00+00:00",
        "created_at": "2025-06-15T09:00:00+00:00",
        "updated_at": "2025-06-15T09:00:00+00:00",
        "deleted": False,
    },
}
EDITS: dict[EntityKind, dict[str, Any]] = {
    "task": {"title": "Write the Q4 report today", "tags": [], "due": None, "position": -0.5},
    "note": {"body": "Wi-fi: see fridge", "pinned": False},
    "item": {"extra": {}, "thread_id": None},
    "person": {"vip": False, "emails": ["dana@example.com", "ds@example.org"]},
    "interaction": {"kind": "meeting", "deleted": True},
}


async def test_every_entity_kind_is_stored_under_its_own_kind(log: ActionLog) -> None:
    assert set(EXAMPLES) == set(KINDS)
    ops: list[Operation] = []
    for n, kind in enumerate(KINDS):
        assert set(EXAMPLES[kind]) == ENTITY_FIELDS[kind]
        ops.append(op(2 * n, EXAMPLES[kind], wall=1, counter=n, kind=kind, entity_id="x1"))
        ops.append(op(2 * n + 1, EDITS[kind], wall=2, counter=n, kind=kind, entity_id="x1", device="devB"))
    assert await log.ingest(ops) == ops
    for kind in KINDS:
        state = await log.state(kind, "x1")
        assert state is not None, kind
        assert state.values == EXAMPLES[kind] | EDITS[kind], kind
        assert set(state.clocks) == ENTITY_FIELDS[kind]
        assert await log.state(kind, "x2") is None
    assert [o for _, o in await log.after(0, 100)] == ops


def test_every_field_of_every_kind_has_values() -> None:
    """The generators below cover the schema: a new field must get values here too."""
    assert {kind: set(fields) for kind, fields in FIELD_VALUES.items()} == {
        kind: set(ENTITY_FIELDS[kind]) for kind in KINDS
    }


# --- properties -------------------------------------------------------------------------------------------


@PROPERTY
@given(ops=histories(), data=st.data())
async def test_any_delivery_order_gives_the_merge_of_the_operations(
    replicas: Replicas, ops: list[Operation], data: st.DataObject
) -> None:
    log = await replicas.fresh()
    expected = folded(ops)
    new: list[Operation] = []
    for batch in deliveries(data, ops):
        new += await log.ingest(batch)
    assert sorted(o.op_id for o in new) == sorted(o.op_id for o in ops)  # each new exactly once
    assert await states_of(log, set(expected)) == expected
    listed = await log.after(0, 10_000)
    assert [o for _, o in listed] == new  # stored in arrival order, each as it was sent
    assert await log.head() == listed[-1][0]


@pytest.fixture
async def both(pg_server: PgTestServer, tmp_path: Path) -> AsyncIterator[tuple[Replicas, Replicas]]:
    async with sqlite_replicas(tmp_path / "laptops") as laptops, pg_replicas(pg_server) as nodes:
        yield laptops, nodes


@PROPERTY
@given(ops=histories(), data=st.data())
async def test_the_laptop_and_the_node_agree_whatever_the_order(
    both: tuple[Replicas, Replicas], ops: list[Operation], data: st.DataObject
) -> None:
    """Two deliveries of the same operations (orders, duplicates and batches drawn apart) to each kind of
    replica: all four hold the same state for every entity, which is the merge of the operations."""
    expected = folded(ops)
    keys = set(expected)
    held: dict[str, dict[Key, EntityState | None]] = {}
    for makers in both:
        for run in ("first", "second"):
            log = await makers.fresh()
            for batch in deliveries(data, ops):
                await log.ingest(batch)
            held[f"{makers.name} {run}"] = await states_of(log, keys)
    assert held["sqlite first"] == held["postgres first"]
    assert held["sqlite first"] == held["sqlite second"]
    assert held["postgres first"] == held["postgres second"]
    assert held["sqlite first"] == expected
