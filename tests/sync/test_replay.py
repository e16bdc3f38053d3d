"""Replaying a workspace's operation log into a fresh replica, against real SQLite files.

The replica receives the operations shuffled and with duplicates, as sync may deliver them; it must end
up holding exactly what the workspace that made them holds.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aurora.app.config import Settings
from aurora.app.workspace import Workspace
from aurora.schema import NoteColour, Quadrant
from aurora.sync import Hlc, Operation
from tests.conftest import FIXED_NOW


def make_history(ws: Workspace) -> None:
    """A few dozen changes of every kind the services make, undo and redo included."""
    tasks, notes = ws.tasks, ws.notes
    dana = tasks.add_quick("Call Dana tomorrow 3pm !urgent #sales")
    report = tasks.add_quick("Write the quarterly report by friday !important #work")
    gym = tasks.add_quick("Gym #health")
    milk = tasks.add_quick("Buy milk")
    taxes = tasks.add_quick("File taxes next week !i")
    tasks.move(milk.id, Quadrant.DO_FIRST)
    tasks.move(gym.id, Quadrant.DELEGATE)
    tasks.toggle_done(dana.id)
    tasks.update(report.id, title="Write the Q4 report", tags=["work", "vip"])
    tasks.update(taxes.id, urgent=True, notes="receipts are in the blue folder")
    tasks.delete(gym.id)
    tasks.undo()  # gym is back
    tasks.toggle_done(milk.id)
    tasks.undo()  # milk is open again
    tasks.redo()  # and done again
    tasks.delete(taxes.id)
    plants = tasks.add_quick("Water the plants")
    tasks.undo()  # the add is undone: plants is deleted
    tasks.redo()  # and back
    tasks.move(plants.id, Quadrant.SCHEDULE)
    tasks.reorder(report.id, -1)
    tasks.update(dana.id, due=None, important=True)
    tasks.toggle_done(dana.id)  # reopened
    tasks.place_automatically(milk.id)
    tasks.update(plants.id, title="Water the plants and the garden")
    tasks.undo()
    throwaway = tasks.add_quick("Throwaway task")
    tasks.delete(throwaway.id)

    groceries = notes.add("Groceries: eggs, flour", tags=["home"])
    idea = notes.add("An idea for the offsite", colour=NoteColour.BLUE, pinned=True)
    wifi = notes.add("Wi-fi password is on the fridge")
    notes.update(groceries.id, body="Groceries: eggs, flour, milk")
    notes.toggle_pin(groceries.id)
    notes.cycle_colour(idea.id)
    notes.cycle_colour(idea.id)
    notes.delete(wifi.id)
    notes.undo()  # wi-fi note is back
    notes.update(idea.id, tags=["work", "offsite"])
    notes.undo()
    notes.redo()
    scratch = notes.add("Scratch")
    notes.delete(scratch.id)


def snapshot(ws: Workspace) -> dict[str, Any]:
    """Everything a replica holds: what the services show, and the raw rows with their field clocks."""
    return {
        "tasks": [t.model_dump() for t in ws.tasks.list_all()],
        "notes": [n.model_dump() for n in ws.notes.list()],
        "task_rows": ws.store.query("SELECT * FROM tasks ORDER BY id"),
        "note_rows": ws.store.query("SELECT * FROM notes ORDER BY id"),
    }


def ops_rows(ws: Workspace) -> int:
    return int(ws.store.query("SELECT count(*) FROM ops")[0][0])


@pytest.fixture
def history(workspace: Workspace) -> list[Operation]:
    make_history(workspace)
    ops = workspace.store.operations()
    assert len(ops) >= 40
    return ops


@pytest.fixture
def open_replica(settings: Settings, tmp_path: Path) -> Iterator[Any]:
    opened: list[Workspace] = []

    def open_(name: str = "replica") -> Workspace:
        replica_settings = settings.model_copy(update={"workspace": str(tmp_path / f"{name}.db")})
        ws = Workspace.open(replica_settings, now=lambda: FIXED_NOW)
        opened.append(ws)
        return ws

    yield open_
    for ws in opened:
        ws.close()


def test_the_history_covers_tasks_notes_deletes_and_undos(
    workspace: Workspace, history: list[Operation]
) -> None:
    # Guard the scenario itself, so the replay below tests something.
    before = snapshot(workspace)
    assert {op.entity for op in history} == {"task", "note"}
    assert any(op.fields.get("deleted") is True for op in history)
    assert any(op.fields.get("deleted") is False and "title" not in op.fields for op in history)
    assert len({op.op_id for op in history}) == len(history)
    assert len({op.hlc for op in history}) == len(history)
    assert [op.hlc for op in history] == sorted(op.hlc for op in history)
    titles = {t["title"] for t in before["tasks"]}
    assert "Buy milk" in titles and "Gym" in titles and "Throwaway task" not in titles
    assert not any(title.startswith("File taxes") for title in titles)
    assert len(before["task_rows"]) == 7 and len(before["note_rows"]) == 4
    assert len(before["notes"]) == 3


@pytest.mark.parametrize("seed", range(6))
def test_a_replica_converges_whatever_the_order(
    workspace: Workspace, history: list[Operation], open_replica: Any, seed: int
) -> None:
    rng = random.Random(seed)
    delivery = history + rng.sample(history, k=len(history) // 3)
    rng.shuffle(delivery)
    replica = open_replica()
    assert replica.store.device_id != workspace.store.device_id

    applied: list[bool] = []
    if seed % 2:
        with replica.store.transaction() as tx:
            applied = [tx.apply(op) for op in delivery]
    else:
        for op in delivery:
            with replica.store.transaction() as tx:
                applied.append(tx.apply(op))

    assert sum(applied) == len(history)
    assert ops_rows(replica) == len(history)
    assert snapshot(replica) == snapshot(workspace)
    assert {op.op_id: op for op in replica.store.operations()} == {op.op_id: op for op in history}
    assert replica.store.pending_ops() == len(history)

    # The replica's clock has seen every operation: its next change is later than all of them.
    latest = max(Hlc.decode(op.hlc) for op in history)
    assert replica.store.clock.last >= Hlc(latest.wall_ms, latest.counter, replica.store.device_id)
    task = replica.tasks.list_all()[0]
    replica.tasks.update(task.id, title="Edited on the replica")
    mine = replica.store.operations()[-1]
    assert mine.device_id == replica.store.device_id
    assert mine.hlc > max(op.hlc for op in history)
    assert replica.tasks.get(task.id).title == "Edited on the replica"


def test_a_replica_fed_in_reverse_converges(
    workspace: Workspace, history: list[Operation], open_replica: Any
) -> None:
    replica = open_replica()
    with replica.store.transaction() as tx:
        for op in reversed(history):
            assert tx.apply(op)
    assert snapshot(replica) == snapshot(workspace)


def test_a_partial_replica_catches_up(
    workspace: Workspace, history: list[Operation], open_replica: Any
) -> None:
    # Half the log arrives, the replica is closed and reopened, then everything arrives (again).
    rng = random.Random(42)
    first = rng.sample(history, k=len(history) // 2)
    replica = open_replica()
    with replica.store.transaction() as tx:
        for op in first:
            assert tx.apply(op)
    replica.close()
    replica = open_replica()
    with replica.store.transaction() as tx:
        results = [tx.apply(op) for op in history]
    assert sum(results) == len(history) - len(first)
    assert snapshot(replica) == snapshot(workspace)


def test_applying_an_operation_twice_is_a_no_op(
    workspace: Workspace, history: list[Operation], open_replica: Any
) -> None:
    replica = open_replica()
    op = history[0]
    with replica.store.transaction() as tx:
        assert tx.apply(op) is True
    after_first = snapshot(replica)
    assert ops_rows(replica) == 1

    with replica.store.transaction() as tx:
        assert tx.apply(op) is False
    assert ops_rows(replica) == 1
    assert snapshot(replica) == after_first

    # Within one transaction too.
    second = history[1]
    with replica.store.transaction() as tx:
        assert tx.apply(second) is True
        assert tx.apply(second) is False
    assert ops_rows(replica) == 2

    # And the workspace that made an operation does not take it again.
    rows = ops_rows(workspace)
    before = snapshot(workspace)
    with workspace.store.transaction() as tx:
        assert all(tx.apply(op) is False for op in history)
    assert ops_rows(workspace) == rows
    assert snapshot(workspace) == before


def test_a_stale_operation_does_not_overwrite_newer_fields(
    workspace: Workspace, history: list[Operation], open_replica: Any
) -> None:
    # Re-sending an old operation under a new id (same clock value, same fields) is a new operation to
    # the log, but its fields lose to the later writes: nothing visible changes.
    before = snapshot(workspace)
    old = history[0]
    resent = old.model_copy(update={"op_id": "resent-" + old.op_id})
    with workspace.store.transaction() as tx:
        assert tx.apply(resent) is True
    after = snapshot(workspace)
    assert after["tasks"] == before["tasks"]
    assert after["notes"] == before["notes"]
