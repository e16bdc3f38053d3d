"""Two writers on one workspace file (the TUI open while the CLI runs), and operations from elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aurora.app.config import Settings
from aurora.app.errors import InvalidInputError
from aurora.app.workspace import Workspace
from aurora.schema import Quadrant
from aurora.sync import Hlc, Operation, new_id


@pytest.fixture
def pair(settings: Settings) -> Iterator[tuple[Workspace, Workspace]]:
    first, second = Workspace.open(settings), Workspace.open(settings)
    yield first, second
    first.close()
    second.close()


def test_two_writers_never_issue_the_same_clock_and_the_latest_edit_wins(
    pair: tuple[Workspace, Workspace],
) -> None:
    tui, cli = pair
    task = tui.tasks.add_quick("Shared task")
    for i in range(30):
        (tui if i % 2 else cli).tasks.update(task.id, title=f"edit {i}")
    clocks = [op.hlc for op in tui.store.operations()]
    assert len(set(clocks)) == len(clocks)
    assert clocks == sorted(clocks)  # each writer saw the other's last clock before issuing its own
    assert tui.tasks.get(task.id).title == cli.tasks.get(task.id).title == "edit 29"


def test_undo_leaves_alone_a_field_changed_since(pair: tuple[Workspace, Workspace]) -> None:
    tui, cli = pair
    task = tui.tasks.add_quick("Write report")
    tui.tasks.update(task.id, notes="draft", title="Write the report")
    cli.tasks.update(task.id, notes="from cli")
    assert tui.tasks.undo() == "edit “Write the report”"
    after = tui.tasks.get(task.id)
    assert after.title == "Write report"  # the person's own change is reversed
    assert after.notes == "from cli"  # the newer change made elsewhere is kept


def _op(wall_ms: int, title: str) -> Operation:
    return Operation(
        op_id=new_id(),
        device_id="otherdevice",
        hlc=Hlc(wall_ms, 0, "otherdevice").encode(),
        entity="task",
        entity_id="t-from-elsewhere",
        fields={"title": title, "created_at": "2026-11-27T09:00:00+00:00", "deleted": False},
    )


def test_an_operation_from_a_clock_far_ahead_is_refused(workspace: Workspace) -> None:
    far = time.time_ns() // 1_000_000 + 60 * 60 * 1000
    with pytest.raises(InvalidInputError, match="in the future"), workspace.store.transaction() as tx:
        tx.apply(_op(far, "from the future"))
    assert workspace.store.operations() == []


def test_a_slightly_fast_clock_is_absorbed_and_local_edits_still_win(workspace: Workspace) -> None:
    ahead = time.time_ns() // 1_000_000 + 60 * 1000
    with workspace.store.transaction() as tx:
        tx.apply(_op(ahead, "theirs"))
    workspace.tasks.update("t-from-elsewhere", title="mine")
    assert workspace.tasks.get("t-from-elsewhere").title == "mine"


def test_reorder_skips_hidden_done_tasks_and_untangles_ties(workspace: Workspace) -> None:
    a, b, c = (workspace.tasks.add_quick(t) for t in ["A", "B", "C"])
    workspace.tasks.toggle_done(b.id)
    workspace.tasks.reorder(c.id, -1)
    assert [t.title for t in workspace.tasks.list()] == ["C", "A"]
    # Two devices appended at once: equal positions. Reordering still moves the task.
    with workspace.store.transaction() as tx:
        for t in (a, c):
            tx.change("task", t.id, {"position": 5.0})
    d = workspace.tasks.add_quick("D")
    workspace.tasks.reorder(d.id, -1)
    titles = [t.title for t in workspace.tasks.list() if t.quadrant is Quadrant.ELIMINATE]
    assert titles.index("D") == 1


def test_many_processes_opening_a_new_workspace_at_once(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    aurora = Path(sys.executable).parent / "aurora"
    procs = [
        subprocess.Popen([str(aurora), "-w", str(path), "task", "add", f"Task {i}"], stderr=subprocess.PIPE)
        for i in range(6)
    ]
    errors = [p.communicate()[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    listed = subprocess.run(
        [str(aurora), "-w", str(path), "task", "list", "--json"], capture_output=True, check=True
    )
    assert len(json.loads(listed.stdout)) == 6
