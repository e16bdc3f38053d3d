"""Snapshots of each screen at a fixed terminal size, on the demo workspace at a fixed time.

Update after an intended change with `pytest tests/tui/test_snapshots.py --snapshot-update`, then look at
the report before committing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from aurora.app.config import Settings
from aurora.app.demo import build_demo
from aurora.app.workspace import Workspace
from aurora.tui.app import AuroraApp
from aurora.tui.screens.matrix import MatrixScreen
from aurora.tui.screens.notes import NotesScreen
from tests.conftest import FIXED_NOW
from tests.tui.helpers import wait_until

SIZE = (120, 36)
SnapCompare = Callable[..., bool]


@pytest.fixture
def demo(settings: Settings) -> Iterator[Workspace]:
    path = build_demo(settings, now=FIXED_NOW)
    ws = Workspace.open(settings.model_copy(update={"workspace": str(path)}), now=lambda: FIXED_NOW)
    yield ws
    ws.close()


async def _matrix_ready(pilot: Pilot[Any]) -> None:
    app = pilot.app

    def ready() -> bool:
        screen = app.screen
        return (
            isinstance(screen, MatrixScreen) and sum(len(p.tasks) for p in screen.query("QuadrantPanel")) > 0
        )  # type: ignore[attr-defined]

    await wait_until(pilot, ready)
    await pilot.pause(0.2)


def _then(*steps: Callable[[Pilot[Any]], Awaitable[None]]) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        for step in steps:
            await step(pilot)
        # A blinking cursor is drawn or not depending on when the picture is taken: hold it still.
        for field in pilot.app.screen.query("Input, TextArea"):
            field.cursor_blink = False  # type: ignore[attr-defined]
        await pilot.pause(0.05)

    return run


def _keys(*keys: str, settle: float = 0.3) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def press(pilot: Pilot[Any]) -> None:
        await pilot.press(*keys)
        await pilot.pause(settle)

    return press


def test_matrix_screen(snap_compare: SnapCompare, demo: Workspace) -> None:
    assert snap_compare(AuroraApp(demo), terminal_size=SIZE, run_before=_matrix_ready)


def test_matrix_screen_light_theme(snap_compare: SnapCompare, demo: Workspace) -> None:
    assert snap_compare(AuroraApp(demo, theme="light"), terminal_size=SIZE, run_before=_matrix_ready)


def test_quick_add_with_live_preview(snap_compare: SnapCompare, demo: Workspace) -> None:
    async def typed(pilot: Pilot[Any]) -> None:
        await pilot.press("a", *"Call Dana 2026-11-28 15:00 !urgent #sales")
        await wait_until(pilot, lambda: "Call Dana" in str(pilot.app.screen.query_one("#preview").render()))

    assert snap_compare(AuroraApp(demo), terminal_size=SIZE, run_before=_then(_matrix_ready, typed))


def test_help_screen(snap_compare: SnapCompare, demo: Workspace) -> None:
    assert snap_compare(
        AuroraApp(demo), terminal_size=(120, 44), run_before=_then(_matrix_ready, _keys("question_mark"))
    )


def test_notes_screen(snap_compare: SnapCompare, demo: Workspace) -> None:
    async def notes_ready(pilot: Pilot[Any]) -> None:
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, NotesScreen))
        await wait_until(pilot, lambda: pilot.app.screen.query_one("#notes-list").option_count > 0)  # type: ignore[attr-defined]
        await pilot.pause(0.2)

    assert snap_compare(AuroraApp(demo), terminal_size=SIZE, run_before=_then(_matrix_ready, notes_ready))


def test_snapshot_folder_is_committed() -> None:
    """Snapshots are compared against files in git; without them every run would pass vacuously."""
    folder = Path(__file__).parent / "__snapshots__" / "test_snapshots"
    assert folder.is_dir() and len(list(folder.glob("*.svg"))) >= 7


def test_edit_task_form(snap_compare: SnapCompare, demo: Workspace) -> None:
    async def open_form(pilot: Pilot[Any]) -> None:
        await pilot.press("e")
        await wait_until(pilot, lambda: bool(pilot.app.screen.query("#title")))
        await pilot.pause(0.2)

    assert snap_compare(AuroraApp(demo), terminal_size=(120, 40), run_before=_then(_matrix_ready, open_form))


def test_note_form(snap_compare: SnapCompare, demo: Workspace) -> None:
    async def open_form(pilot: Pilot[Any]) -> None:
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, NotesScreen))
        await wait_until(pilot, lambda: pilot.app.screen.query_one("#notes-list").option_count > 0)  # type: ignore[attr-defined]
        await pilot.press("e")
        await wait_until(pilot, lambda: bool(pilot.app.screen.query("#body")))
        await pilot.pause(0.2)

    assert snap_compare(AuroraApp(demo), terminal_size=(120, 40), run_before=_then(_matrix_ready, open_form))
