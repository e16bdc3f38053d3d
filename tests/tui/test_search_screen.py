"""Search from the keyboard: `/`, type, read a result, make a task of it."""

from __future__ import annotations

from aurora.app.workspace import Workspace
from aurora.tui.app import AuroraApp
from aurora.tui.screens.matrix import MatrixScreen
from aurora.tui.screens.search import ReaderModal, SearchScreen
from tests.tui.helpers import wait_until


async def test_search_read_and_make_a_task(workspace: Workspace) -> None:
    workspace.notes.add(
        "The boiler makes a knocking noise; Ravi the plumber comes on Tuesday.", tags=["home"]
    )
    workspace.tasks.add_quick("Renew the car insurance #admin")
    workspace.search.drain_all()
    app = AuroraApp(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen))
        await pilot.press("slash")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen))
        await pilot.press(*"plumb")  # a prefix finds the word as you type
        results = app.screen.query_one("#results")
        await wait_until(pilot, lambda: results.option_count == 1)  # type: ignore[attr-defined]
        await pilot.press("enter", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ReaderModal))
        text = str(app.screen.query_one("#reader-text").render())
        assert "knocking noise" in text and "#home" in text
        await pilot.press("t")
        await wait_until(pilot, lambda: any(t.source == "search:note" for t in workspace.tasks.list()))
        await pilot.press("escape", "escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen))


async def test_hostile_and_empty_queries_keep_the_screen_alive(workspace: Workspace) -> None:
    workspace.tasks.add_quick("Quarterly report")
    workspace.search.drain_all()
    app = AuroraApp(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("slash")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen))
        await pilot.press(*'"((( NEAR( AND * [/b]')
        await pilot.pause(0.3)
        await pilot.press(*" quarterly")
        results = app.screen.query_one("#results")
        await wait_until(pilot, lambda: results.option_count == 1)  # type: ignore[attr-defined]
        for _ in range(60):
            await pilot.press("backspace")
        await pilot.pause(0.3)
        assert isinstance(app.screen, SearchScreen)
        assert results.option_count == 0  # type: ignore[attr-defined]
