"""Robbie's mood in the status bar: derived on a worker thread from the real workspace, shown on every
screen's bar, changing as overdue tasks pile up, and worried when sync fails."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from aurora.app.mood import Workload, derive_mood
from aurora.app.syncer import LiveStatus
from aurora.app.workspace import Workspace
from aurora.schema import Quadrant
from aurora.tui import app as app_module
from aurora.tui.app import AuroraApp
from aurora.tui.screens.matrix import MatrixScreen
from aurora.tui.screens.notes import NotesScreen
from aurora.tui.widgets.status_bar import StatusBar, mood_text
from tests.conftest import FIXED_NOW
from tests.tui.helpers import wait_until


def _bar(app: AuroraApp) -> str:
    return str(app.screen.query_one(StatusBar).render())


def _add_overdue(workspace: Workspace, count: int, now: datetime = FIXED_NOW) -> None:
    for n in range(count):
        workspace.tasks.add(f"Overdue {n}", due=now - timedelta(days=1 + n), quadrant=Quadrant.SCHEDULE)


def test_the_label_is_a_few_words() -> None:
    assert mood_text(None) == ""
    assert mood_text(derive_mood(Workload())) == "Robbie: calm"
    assert mood_text(derive_mood(Workload(overdue=3))) == "Robbie: busy (3 overdue)"
    heavy = derive_mood(Workload(overdue=4, do_first=3, meetings_soon=2))
    assert mood_text(heavy) == "Robbie: stretched (4 overdue, 3 to do first)"


async def test_the_mood_follows_overdue_tasks(workspace: Workspace) -> None:
    app = AuroraApp(workspace)
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen) and "open task" in _bar(app))
        assert app.mood is None and "Robbie" not in _bar(app)  # nothing shown before the first

        app.refresh_mood()
        await wait_until(pilot, lambda: "Robbie: calm" in _bar(app))
        assert app.mood is not None and app.mood.label == "calm"

        _add_overdue(workspace, 3)
        app.refresh_mood()
        await wait_until(pilot, lambda: "Robbie: busy (3 overdue)" in _bar(app))

        _add_overdue(workspace, 2, FIXED_NOW - timedelta(days=5))
        app.refresh_mood()
        await wait_until(pilot, lambda: "Robbie: stretched (5 overdue)" in _bar(app))
        assert app.mood.label == "stretched" and "brief" in app.mood.tone  # what the chat passes on

        await pilot.press("n")  # a screen opened later starts from the latest mood
        await wait_until(pilot, lambda: isinstance(app.screen, NotesScreen) and "note" in _bar(app))
        assert "Robbie: stretched (5 overdue)" in _bar(app)


async def test_a_failing_sync_worries_robbie(workspace: Workspace) -> None:
    failing = LiveStatus(online=False, live=False, pending=4, last_sync=None, last_error="node unreachable",
                         summary="node unreachable")  # fmt: skip
    workspace.live_status = lambda: failing
    app = AuroraApp(workspace)
    async with app.run_test(size=(200, 30)) as pilot:
        await wait_until(pilot, lambda: "open task" in _bar(app))
        app.refresh_mood()
        await wait_until(pilot, lambda: "Robbie: worried about sync" in _bar(app))
        assert "(sync failing, 4 changes waiting)" in _bar(app)


async def test_the_app_derives_it_again_on_its_own(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "MOOD_EVERY", timedelta(seconds=0.1))
    app = AuroraApp(workspace)
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_until(pilot, lambda: "Robbie: calm" in _bar(app))  # no one asked: the interval did
        _add_overdue(workspace, 3)
        await wait_until(pilot, lambda: "Robbie: busy (3 overdue)" in _bar(app))
