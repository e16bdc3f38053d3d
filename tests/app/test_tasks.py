"""The task service: what a person does on the matrix, checked in the store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aurora.app.errors import InvalidInputError, NotFoundError
from aurora.app.tasks import TaskFilter
from aurora.app.workspace import Workspace
from aurora.schema import MAX_TITLE, Quadrant, TaskStatus
from tests.conftest import FIXED_NOW


def test_quick_add_sets_due_flags_tags_and_quadrant(workspace: Workspace) -> None:
    task = workspace.tasks.add_quick("Call Dana tomorrow 3pm !urgent !important #sales")
    assert task.title == "Call Dana"
    assert task.due == FIXED_NOW.replace(hour=15) + timedelta(days=1)
    assert (task.urgent, task.important, task.tags) == (True, True, ["sales"])
    assert task.quadrant is Quadrant.DO_FIRST and not task.manual


@pytest.mark.parametrize(
    ("line", "quadrant"),
    [
        ("Renew passport !important", Quadrant.SCHEDULE),
        ("Reply to the caterer today", Quadrant.DELEGATE),
        ("Tidy the bookshelf", Quadrant.ELIMINATE),
        ("Run 5k #health", Quadrant.SCHEDULE),
        ("Board deck tomorrow #goal", Quadrant.DO_FIRST),
    ],
)
def test_quadrant_follows_scores(workspace: Workspace, line: str, quadrant: Quadrant) -> None:
    assert workspace.tasks.add_quick(line).quadrant is quadrant


def test_a_task_placed_by_hand_stays_put_until_released(workspace: Workspace) -> None:
    task = workspace.tasks.add_quick("Tidy the bookshelf")
    moved = workspace.tasks.move(task.id, Quadrant.DO_FIRST)
    assert moved.quadrant is Quadrant.DO_FIRST and moved.manual
    edited = workspace.tasks.update(task.id, important=True)
    assert edited.quadrant is Quadrant.DO_FIRST
    released = workspace.tasks.place_automatically(task.id)
    assert released.quadrant is Quadrant.SCHEDULE and not released.manual


def test_editing_the_due_date_moves_an_automatic_task(workspace: Workspace) -> None:
    task = workspace.tasks.add_quick("Renew passport !important")
    assert task.quadrant is Quadrant.SCHEDULE
    updated = workspace.tasks.update(task.id, due=FIXED_NOW + timedelta(hours=5))
    assert updated.quadrant is Quadrant.DO_FIRST


def test_complete_delete_undo_redo(workspace: Workspace) -> None:
    task = workspace.tasks.add_quick("Send invoice")
    workspace.tasks.toggle_done(task.id)
    assert workspace.tasks.list() == []
    assert [t.status for t in workspace.tasks.list(TaskFilter(show_done=True))] == [TaskStatus.DONE]
    assert workspace.tasks.undo() == "complete “Send invoice”"
    assert workspace.tasks.get(task.id).status is TaskStatus.OPEN
    workspace.tasks.delete(task.id)
    with pytest.raises(NotFoundError):
        workspace.tasks.get(task.id)
    workspace.tasks.undo()
    assert workspace.tasks.get(task.id).title == "Send invoice"
    assert workspace.tasks.redo() == "delete “Send invoice”"
    assert workspace.tasks.list() == []
    # Undo and redo are operations too: they will sync like any change.
    assert [op.fields.get("deleted") for op in workspace.store.operations()][-3:] == [True, False, True]


def test_undo_of_an_add_removes_the_task_and_redo_brings_it_back(workspace: Workspace) -> None:
    task = workspace.tasks.add_quick("Draft memo")
    workspace.tasks.undo()
    assert workspace.tasks.list() == []
    workspace.tasks.redo()
    assert [t.id for t in workspace.tasks.list()] == [task.id]


def test_nothing_to_undo(workspace: Workspace) -> None:
    assert workspace.tasks.undo() is None
    assert workspace.tasks.redo() is None


def test_reorder_within_a_quadrant(workspace: Workspace) -> None:
    ids = [workspace.tasks.add_quick(f"Chore {i}").id for i in range(4)]
    workspace.tasks.reorder(ids[3], -2)
    order = [t.id for t in workspace.tasks.list()]
    assert order == [ids[0], ids[3], ids[1], ids[2]]
    workspace.tasks.reorder(ids[0], +10)
    assert [t.id for t in workspace.tasks.list()][-1] == ids[0]
    before = len(workspace.store.operations())
    workspace.tasks.reorder(ids[0], +1)  # already last: nothing written
    assert len(workspace.store.operations()) == before


def test_filter_by_text_and_tag(workspace: Workspace) -> None:
    workspace.tasks.add_quick("Call Dana #sales")
    workspace.tasks.add_quick("Email Dana about 100%_done #legal")
    workspace.tasks.add_quick("Water plants")
    assert [t.title for t in workspace.tasks.list(TaskFilter.parse("dana #sales"))] == ["Call Dana"]
    assert [t.title for t in workspace.tasks.list(TaskFilter.parse("100%_"))] == [
        "Email Dana about 100%_done"
    ]
    assert len(workspace.tasks.list(TaskFilter.parse("dana"))) == 2


def test_rescore_moves_tasks_whose_due_date_drew_near(workspace: Workspace) -> None:
    task = workspace.tasks.add_quick("Renew passport in 20 days !important")
    assert task.quadrant is Quadrant.SCHEDULE
    workspace.tasks._now = lambda: FIXED_NOW + timedelta(days=19)
    assert workspace.tasks.rescore() == 1
    assert workspace.tasks.get(task.id).quadrant is Quadrant.DO_FIRST
    # Time moving on is not something to undo: `u` reverses the person's last act, the add.
    assert workspace.tasks.undo() == "add “Renew passport”"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("!urgent #x", "needs a title"),
        ("Do it !soon", "unknown flag"),
        ("Do it #", "needs a tag name"),
        ("x" * (MAX_TITLE + 1), f"under {MAX_TITLE}"),
        ("Tag it #" + "t" * 50, "longer than"),
    ],
)
def test_malformed_quick_add_is_refused_and_writes_nothing(
    workspace: Workspace, line: str, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        workspace.tasks.add_quick(line)
    assert workspace.store.operations() == []


def test_edit_refuses_an_empty_title(workspace: Workspace) -> None:
    task = workspace.tasks.add_quick("Real title")
    with pytest.raises(InvalidInputError, match="title"):
        workspace.tasks.update(task.id, title="   ")
    assert workspace.tasks.get(task.id).title == "Real title"


def test_short_ids_resolve(workspace: Workspace) -> None:
    task = workspace.tasks.add_quick("Find me")
    assert workspace.tasks.resolve_id(task.id[-8:]) == task.id
    with pytest.raises(NotFoundError):
        workspace.tasks.resolve_id("zzzzzzzz")
    with pytest.raises(InvalidInputError):
        workspace.tasks.resolve_id("ab")
