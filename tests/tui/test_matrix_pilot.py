"""Drive the matrix key by key, as a person would, and check what the store then holds."""

from __future__ import annotations

import html
from typing import ClassVar

from textual.binding import Binding, BindingType

from aurora.app.tasks import TaskFilter
from aurora.app.workspace import Workspace
from aurora.schema import Quadrant, TaskStatus
from aurora.tui.app import AuroraApp
from aurora.tui.screens.matrix import MatrixScreen
from aurora.tui.screens.notes import NotesScreen
from aurora.tui.widgets.quadrant import QuadrantPanel
from tests.tui.helpers import wait_until


def _matrix(app: AuroraApp) -> MatrixScreen:
    screen = app.screen
    assert isinstance(screen, MatrixScreen)
    return screen


def _titles(app: AuroraApp, q: Quadrant) -> list[str]:
    return [t.title for t in _matrix(app).panel(q).tasks]


async def test_add_move_complete_delete_undo_by_keys(workspace: Workspace) -> None:
    app = AuroraApp(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen))
        await pilot.press("a")
        await pilot.press(*"Call Dana tomorrow 3pm !urgent !important #sales")
        await pilot.press("enter")
        await wait_until(pilot, lambda: _titles(app, Quadrant.DO_FIRST) == ["Call Dana"])
        [task] = workspace.tasks.list()
        assert (task.urgent, task.important, task.tags) == (True, True, ["sales"])
        assert task.due is not None

        await pilot.press("shift+right")
        await wait_until(pilot, lambda: _titles(app, Quadrant.SCHEDULE) == ["Call Dana"])
        assert workspace.tasks.get(task.id).quadrant is Quadrant.SCHEDULE
        assert workspace.tasks.get(task.id).manual

        await pilot.press("l")  # focus follows to the Schedule quadrant
        await pilot.press("4")
        await wait_until(pilot, lambda: _titles(app, Quadrant.ELIMINATE) == ["Call Dana"])

        await pilot.press("u")
        await wait_until(pilot, lambda: _titles(app, Quadrant.SCHEDULE) == ["Call Dana"])
        assert workspace.tasks.get(task.id).quadrant is Quadrant.SCHEDULE

        await pilot.press("x")
        await wait_until(pilot, lambda: _titles(app, Quadrant.SCHEDULE) == [])
        assert workspace.tasks.get(task.id).status is TaskStatus.DONE
        await pilot.press("full_stop")  # show done
        await wait_until(pilot, lambda: _titles(app, Quadrant.SCHEDULE) == ["Call Dana"])
        await pilot.press("space")
        await wait_until(pilot, lambda: workspace.tasks.get(task.id).status is TaskStatus.OPEN)

        await pilot.press("d")
        await wait_until(pilot, lambda: _titles(app, Quadrant.SCHEDULE) == [])
        assert workspace.tasks.list(TaskFilter(show_done=True)) == []
        await pilot.press("u")
        await wait_until(pilot, lambda: _titles(app, Quadrant.SCHEDULE) == ["Call Dana"])
        await pilot.press("U")
        await wait_until(pilot, lambda: _titles(app, Quadrant.SCHEDULE) == [])


async def test_focus_moves_between_quadrants_and_within_lists(workspace: Workspace) -> None:
    for title in ["Tidy desk", "Sort mail"]:
        workspace.tasks.add_quick(title)
    workspace.tasks.add_quick("Taxes !important")
    app = AuroraApp(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: len(_titles(app, Quadrant.ELIMINATE)) == 2)
        screen = _matrix(app)
        assert screen.focused_panel().quadrant is Quadrant.DO_FIRST
        await pilot.press("l")
        assert screen.focused_panel().quadrant is Quadrant.SCHEDULE
        await pilot.press("j", "j")  # past the only task, on to the quadrant below
        assert screen.focused_panel().quadrant is Quadrant.ELIMINATE
        await pilot.press("down")
        current = screen.current_task()
        assert current is not None and current.title == "Sort mail"
        await pilot.press("left_square_bracket")  # reorder up
        await wait_until(pilot, lambda: _titles(app, Quadrant.ELIMINATE) == ["Sort mail", "Tidy desk"])
        assert [t.title for t in workspace.tasks.list() if t.quadrant is Quadrant.ELIMINATE] == [
            "Sort mail",
            "Tidy desk",
        ]
        await pilot.press("h")
        assert screen.focused_panel().quadrant is Quadrant.DELEGATE
        await pilot.press("up")
        assert screen.focused_panel().quadrant is Quadrant.DO_FIRST


async def test_edit_form_changes_the_task(workspace: Workspace) -> None:
    task = workspace.tasks.add_quick("Renew passport")
    app = AuroraApp(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: _titles(app, Quadrant.ELIMINATE) == ["Renew passport"])
        _matrix(app).panel(Quadrant.ELIMINATE).task_list.focus()
        await pilot.press("e")
        await pilot.pause()
        title = app.screen.query_one("#title")
        title.value = "Renew passport and visa"  # type: ignore[attr-defined]
        app.screen.query_one("#important").value = True  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: _titles(app, Quadrant.SCHEDULE) == ["Renew passport and visa"])
        stored = workspace.tasks.get(task.id)
        assert stored.important and stored.quadrant is Quadrant.SCHEDULE


async def test_filter_by_tag_and_text(workspace: Workspace) -> None:
    workspace.tasks.add_quick("Call Dana #sales")
    workspace.tasks.add_quick("Call plumber #home")
    app = AuroraApp(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: len(_titles(app, Quadrant.ELIMINATE)) == 2)
        await pilot.press("f", *"#home")
        await wait_until(pilot, lambda: _titles(app, Quadrant.ELIMINATE) == ["Call plumber"])
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(_titles(app, Quadrant.ELIMINATE)) == 2)


async def test_malformed_quick_add_shows_why_and_adds_nothing(workspace: Workspace) -> None:
    app = AuroraApp(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("a", *"!urgent", "enter")
        await pilot.pause()
        preview = str(app.screen.query_one("#preview").render())
        assert "needs a title" in preview
        await pilot.press("escape")
        assert isinstance(app.screen, MatrixScreen)
        assert workspace.store.operations() == []


async def test_notes_screen_by_keys(workspace: Workspace) -> None:
    app = AuroraApp(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, NotesScreen))
        await pilot.press("a")
        await pilot.press(*"Dana likes mornings")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(workspace.notes.list()) == 1)
        note = workspace.notes.list()[0]
        assert note.body == "Dana likes mornings"
        await pilot.press("p")
        await wait_until(pilot, lambda: workspace.notes.get(note.id).pinned)
        await pilot.press("c")
        await wait_until(pilot, lambda: workspace.notes.get(note.id).colour.value == "pink")
        await pilot.press("t")
        await pilot.press(*"people")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: workspace.notes.get(note.id).tags == ["people"])
        await pilot.press("d")
        await wait_until(pilot, lambda: workspace.notes.list() == [])
        await pilot.press("u")
        await wait_until(pilot, lambda: len(workspace.notes.list()) == 1)
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen))


async def test_help_lists_every_key_and_palette_runs_actions(workspace: Workspace) -> None:
    workspace.tasks.add_quick("Tidy desk")
    app = AuroraApp(workspace)
    async with app.run_test(size=(120, 50)) as pilot:
        await wait_until(pilot, lambda: _titles(app, Quadrant.ELIMINATE) == ["Tidy desk"])
        await pilot.press("question_mark")
        await pilot.pause()
        screen_text = html.unescape(app.export_screenshot()).replace("\xa0", " ")
        for binding in MatrixScreen.BINDINGS:
            assert binding.description in screen_text  # type: ignore[union-attr]
        await pilot.press("escape")
        _matrix(app).panel(Quadrant.ELIMINATE).task_list.focus()
        await pilot.press("ctrl+p")
        await pilot.press(*"Move to Do first")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: workspace.tasks.list()[0].quadrant is Quadrant.DO_FIRST)


async def test_status_bar_counts_pending_changes(workspace: Workspace) -> None:
    workspace.tasks.add_quick("One")
    workspace.notes.add("A note")
    app = AuroraApp(workspace)
    async with app.run_test(size=(120, 40)) as pilot:

        def status() -> str:
            return str(app.screen.query_one("#status").render())

        await wait_until(pilot, lambda: "2 changes waiting" in status())
        assert "offline" in status() and "1 open task" in status() and "1 note" in status()
        await pilot.press("ctrl+t")
        assert app.theme == "textual-light"
        assert all(isinstance(p, QuadrantPanel) for p in app.screen.query(".quadrant"))


async def test_a_bug_ends_the_app_without_a_traceback_on_screen(workspace: Workspace) -> None:
    """An unexpected exception is kept for the CLI (which logs it and prints one line), not printed."""
    import pytest

    class Buggy(AuroraApp):
        BINDINGS: ClassVar[list[BindingType]] = [Binding("f12", "explode", "Explode")]

        def action_explode(self) -> None:
            raise RuntimeError("boom")

    app = Buggy(workspace)
    with pytest.raises(RuntimeError, match="boom"):
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("f12")
            await pilot.pause()
    assert isinstance(app.crash, RuntimeError)
    assert app._exit_renderables == []


async def test_keys_answer_while_the_disk_is_busy(workspace: Workspace) -> None:
    """Another process holds the write lock: the write waits in the background, the UI does not."""
    import time

    import apsw

    from aurora.tui.screens.help import HelpModal

    task = workspace.tasks.add_quick("Tidy desk")
    app = AuroraApp(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: _titles(app, Quadrant.ELIMINATE) == ["Tidy desk"])
        _matrix(app).panel(Quadrant.ELIMINATE).task_list.focus()
        other = apsw.Connection(str(workspace.path))
        other.execute("BEGIN IMMEDIATE")  # holds the write lock, as a long write elsewhere would
        try:
            await pilot.press("x")  # its write now waits for the lock, on the database thread
            started = time.monotonic()
            await pilot.press("question_mark")
            await wait_until(pilot, lambda: isinstance(app.screen, HelpModal), timeout=1.0)
            # Well under the 5 s the write may wait for the lock (generous: CI machines are shared).
            assert time.monotonic() - started < 1.5
            assert workspace.tasks.get(task.id).status is TaskStatus.OPEN  # not written yet
        finally:
            other.execute("COMMIT")
            other.close()
        await pilot.press("escape")
        await wait_until(pilot, lambda: workspace.tasks.get(task.id).status is TaskStatus.DONE)


async def test_long_quadrant_scrolls_with_the_cursor(workspace: Workspace) -> None:
    with workspace.store.transaction() as tx:
        for i in range(60):
            tx.change(
                "task",
                f"t{i:02d}",
                {"title": f"Chore {i:02d}", "quadrant": 4, "position": float(i), "status": "open",
                 "created_at": "2026-11-27T09:00:00+00:00", "deleted": False, "tags": []},
            )  # fmt: skip
    app = AuroraApp(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: len(_titles(app, Quadrant.ELIMINATE)) == 60)
        task_list = _matrix(app).panel(Quadrant.ELIMINATE).task_list
        task_list.focus()
        await pilot.press("end")
        assert task_list.current_task_id == "t59"
        await wait_until(pilot, lambda: task_list.scroll_offset.y > 0)  # the last row is on screen
        await pilot.press("2")  # move it away: the list shrinks by one, the cursor stays in range
        await wait_until(pilot, lambda: len(_titles(app, Quadrant.ELIMINATE)) == 59)
        assert task_list.current_task_id == "t58"
        await pilot.press("home")
        assert task_list.current_task_id == "t00" and task_list.scroll_offset.y == 0
        await pilot.press("pagedown")
        assert task_list.current_task_id not in {"t00", None}
