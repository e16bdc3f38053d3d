from __future__ import annotations

import pytest

from aurora.app.errors import InvalidInputError
from aurora.app.workspace import Workspace
from aurora.schema import MAX_BODY, NoteColour


def test_notes_add_pin_colour_tag_delete_undo(workspace: Workspace) -> None:
    first = workspace.notes.add("Wi-Fi password is on the fridge", tags=["home"])
    second = workspace.notes.add("Dana prefers mornings", colour=NoteColour.PINK)
    assert [n.id for n in workspace.notes.list()] == [second.id, first.id]
    workspace.notes.toggle_pin(first.id)
    assert [n.id for n in workspace.notes.list()] == [first.id, second.id]
    assert workspace.notes.cycle_colour(second.id).colour is NoteColour.BLUE
    assert workspace.notes.update(second.id, tags=["#People", "sales"]).tags == ["people", "sales"]
    assert [n.id for n in workspace.notes.list("#people")] == [second.id]
    assert [n.id for n in workspace.notes.list("fridge")] == [first.id]
    workspace.notes.delete(first.id)
    assert [n.id for n in workspace.notes.list()] == [second.id]
    workspace.notes.undo()
    assert workspace.notes.get(first.id).pinned


@pytest.mark.parametrize(("body", "message"), [("   ", "needs some text"), ("x" * (MAX_BODY + 1), "at most")])
def test_bad_notes_are_refused(workspace: Workspace, body: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        workspace.notes.add(body)
    assert workspace.notes.list() == []
