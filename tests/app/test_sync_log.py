"""The laptop's log as sync sees it, on real SQLite files: the ActionLog contract, the push and pull
cursors, and the sync status that survives a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aurora.app.config import Settings
from aurora.app.errors import InvalidInputError
from aurora.app.store import Store
from aurora.app.sync_log import SqliteActionLog
from aurora.app.workspace import Workspace
from aurora.sync import Hlc, Operation, new_id

_counter = iter(range(1, 10**9))


def _op(
    title: str, *, device: str = "elsewhere", entity_id: str | None = None, ahead_ms: int = 0
) -> Operation:
    """An operation made on another device; the counter keeps every clock value unique, as a real
    device's clock does."""
    wall = time.time_ns() // 1_000_000 + ahead_ms
    return Operation(
        op_id=new_id(),
        device_id=device,
        hlc=Hlc(wall, next(_counter), device).encode(),
        entity="task",
        entity_id=entity_id or new_id(),
        fields={"title": title, "created_at": "2026-11-27T09:00:00+00:00", "deleted": False},
    )


@pytest.fixture
def log(workspace: Workspace) -> SqliteActionLog:
    return SqliteActionLog(workspace.store)


async def test_ingest_applies_each_operation_once_and_returns_the_new_ones_in_order(
    log: SqliteActionLog,
) -> None:
    first, second, third = _op("one"), _op("two"), _op("three")
    assert await log.ingest([first, second]) == [first, second]
    assert await log.ingest([second, third, first, third]) == [third]
    assert await log.ingest([first, second, third]) == []
    state = await log.state("task", first.entity_id)
    assert state is not None and state.values["title"] == "one"
    assert await log.state("task", "never-seen") is None


async def test_after_lists_the_log_in_seq_order_and_head_is_the_last_seq(
    log: SqliteActionLog, workspace: Workspace
) -> None:
    assert await log.head() == 0
    assert await log.after(0, 10) == []
    workspace.tasks.add_quick("Local task")
    ops = [_op(f"remote {i}") for i in range(3)]
    await log.ingest(ops)
    listed = await log.after(0, 100)
    seqs = [seq for seq, _ in listed]
    assert seqs == sorted(seqs) and len(seqs) == 4
    assert [op.op_id for _, op in listed[1:]] == [op.op_id for op in ops]
    assert await log.head() == seqs[-1]
    assert await log.after(seqs[1], 1) == [listed[2]]


def test_local_and_imported_operations_are_pending_but_pulled_ones_are_not(
    log: SqliteActionLog, workspace: Workspace
) -> None:
    workspace.tasks.add_quick("Made here")
    with workspace.store.transaction() as tx:
        assert tx.apply(_op("imported from an export"))  # the old call: not from the node, so pushed
    assert log.apply_pulled([_op("pulled")], cursor=7) == 1
    assert log.pending() == workspace.store.pending_ops() == 2
    titles = [op.fields["title"] for _, op in log.unpushed(10)]
    assert titles[1] == "imported from an export" and "pulled" not in titles


def test_the_wire_form_of_pending_operations_is_what_the_protocol_carries(
    log: SqliteActionLog, workspace: Workspace
) -> None:
    """A push sends the log as SQLite writes it: the same operations, the same values (text with
    quotes, escapes and non-Latin letters, large and tiny floats, lists), in the same order."""
    workspace.tasks.add_quick("Plain")
    awkward = {
        "title": 'Quote " backslash \\ tab\t newline\n café 東京 😀 \u2028',
        "position": 1e16,
        "urgency": 1e-07,
        "tags": ["ünï", "a,b", ""],
        "created_at": "2026-11-27T09:00:00+00:00",
        "deleted": False,
    }
    with workspace.store.transaction() as tx:
        tx.change("task", new_id(), awkward)
    expected = log.unpushed(10)
    wire = log.unpushed_wire(10)
    assert [(p.seq, p.op_id) for p in wire] == [(seq, op.op_id) for seq, op in expected]
    assert [json.loads(p.wire) for p in wire] == [op.model_dump(mode="json") for _, op in expected]
    assert json.loads(wire[-1].wire)["fields"]["title"] == awkward["title"]
    assert [p.seq for p in log.unpushed_wire(10, after=wire[0].seq)] == [wire[1].seq]


def test_unpushed_goes_in_seq_order_and_mark_pushed_never_moves_back(
    log: SqliteActionLog, workspace: Workspace
) -> None:
    for i in range(5):
        workspace.tasks.add_quick(f"Task {i}")
    batch = log.unpushed(3)
    assert [op.fields["title"] for _, op in batch] == ["Task 0", "Task 1", "Task 2"]
    log.mark_pushed(batch[-1][0])
    assert log.pending() == 2
    log.mark_pushed(batch[0][0])  # a late answer for an older batch
    assert log.pending() == 2
    assert [op.fields["title"] for _, op in log.unpushed(10)] == ["Task 3", "Task 4"]
    # The batch after one still in flight: after its last seq (and never before the cursor).
    first = log.unpushed(1)
    assert [op.fields["title"] for _, op in log.unpushed(10, after=first[0][0])] == ["Task 4"]
    assert log.unpushed(10, after=0) == log.unpushed(10)


def test_operations_read_back_from_the_log_equal_those_written(log: SqliteActionLog) -> None:
    """The log's own rows are not validated again when read, but read back as the same operations."""
    ops = [_op("one"), _op("two ✓")]
    with log.store.transaction() as tx:
        for op in ops:
            tx.apply(op)
    assert [op for _, op in log.unpushed(10)] == ops
    assert [op.model_dump() for _, op in log.after_now(0, 10)] == [op.model_dump() for op in ops]


def test_apply_pulled_moves_the_cursor_with_the_operations(log: SqliteActionLog) -> None:
    assert log.pull_cursor() == 0
    page = [_op("a"), _op("b")]
    assert log.apply_pulled(page, cursor=12) == 2
    assert log.pull_cursor() == 12
    assert log.apply_pulled(page, cursor=15) == 0  # the same page again: nothing new, cursor moves on
    assert log.pull_cursor() == 15
    log.apply_pulled([], cursor=3)  # never backwards
    assert log.pull_cursor() == 15


def test_a_failure_inside_apply_pulled_leaves_neither_operations_nor_cursor(
    log: SqliteActionLog, workspace: Workspace
) -> None:
    """Applying and moving the cursor is one transaction: the second operation fails (stamped an hour
    ahead) after the first was applied, and the first must be rolled back with the cursor unmoved."""
    good, bad = _op("good"), _op("from the future", ahead_ms=3_600_000)
    with pytest.raises(InvalidInputError):
        log.apply_pulled([good, bad], cursor=40)
    assert log.pull_cursor() == 0
    assert workspace.store.load("task", good.entity_id) is None
    assert workspace.store.operations() == []
    assert log.apply_pulled([good], cursor=40) == 1  # and the retry goes through


def test_reset_cursors_requeues_everything_made_here(log: SqliteActionLog, workspace: Workspace) -> None:
    workspace.tasks.add_quick("Mine")
    log.apply_pulled([_op("theirs")], cursor=9)
    log.mark_pushed(log.unpushed(10)[-1][0])
    assert log.pending() == 0
    log.reset_cursors()
    assert log.pending() == 1 and log.pull_cursor() == 0


def test_sync_status_survives_reopening_the_store(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "status.db"
    store = Store.open(path)
    try:
        log = SqliteActionLog(store)
        assert log.sync_status().last_sync is None and log.sync_status().refused == 0
        log.record_sync(None)
        refusals = ["op 1 refused (invalid_operation: bad)", "op 2 refused"]
        log.record_sync("the node at http://x cannot be reached", refusals)
    finally:
        store.close()
    store = Store.open(path)
    try:
        status = SqliteActionLog(store).sync_status()
    finally:
        store.close()
    assert status.last_sync is not None and status.last_attempt is not None
    assert status.last_attempt >= status.last_sync
    assert status.last_error == "the node at http://x cannot be reached"
    assert status.refused == 2 and status.last_refused == "op 2 refused"


def test_a_successful_sync_clears_the_last_error(log: SqliteActionLog) -> None:
    log.record_sync("boom")
    log.record_sync(None)
    assert log.sync_status().last_error is None


@pytest.fixture
def two_stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    first, second = Store.open(tmp_path / "one.db"), Store.open(tmp_path / "two.db")
    yield first, second
    first.close()
    second.close()


async def test_two_logs_fed_the_same_operations_in_any_order_agree(two_stores: tuple[Store, Store]) -> None:
    one, two = SqliteActionLog(two_stores[0]), SqliteActionLog(two_stores[1])
    entity = new_id()
    ops = [_op(f"title {i}", device=f"d{i % 3}", entity_id=entity) for i in range(9)]
    await one.ingest(ops)
    await two.ingest(list(reversed(ops)) + ops[:4])
    assert await one.state("task", entity) == await two.state("task", entity)
