"""The people screen, driven by keys, on people imported from a real mbox file."""

from __future__ import annotations

from pathlib import Path

from aurora.app.ingest.pipeline import Importer
from aurora.app.workspace import Workspace
from aurora.tui.app import AuroraApp
from aurora.tui.screens.matrix import MatrixScreen
from aurora.tui.screens.people import PeopleScreen
from tests.ingest.test_pipeline import write_mbox
from tests.tui.helpers import wait_until


async def test_people_ranked_by_engagement_with_their_history(workspace: Workspace, tmp_path: Path) -> None:
    mbox = tmp_path / "mail.mbox"
    write_mbox(mbox, 24)
    workspace.settings.me_emails.append("maya@example.com")
    Importer(workspace).run([mbox])
    ranked = workspace.people.ranked()
    assert [p.name for p in ranked][:1] == ["Dana Ruiz"]  # she and I write to each other: reciprocity
    assert ranked[0].engagement.reciprocity > ranked[-1].engagement.reciprocity
    app = AuroraApp(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen))
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, PeopleScreen))

        def detail() -> str:
            return str(app.screen.query_one("#person-detail").render())

        await wait_until(pilot, lambda: "Dana Ruiz" in detail() and "Budget review" in detail())
        assert "mail to them" in detail() and "mail from them" in detail()
        await pilot.press("j")
        await wait_until(pilot, lambda: "Dana Ruiz" not in detail())
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen))


async def test_people_screen_with_nobody_says_how_to_import(workspace: Workspace) -> None:
    app = AuroraApp(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, PeopleScreen))
        await wait_until(
            pilot, lambda: "aurora import" in str(app.screen.query_one("#person-detail").render())
        )
