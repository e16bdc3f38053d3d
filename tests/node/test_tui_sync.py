"""The TUI syncs by itself with a real node: a change made by key reaches the node, a change made on
another device appears on the matrix, and the status bar says so; with the node gone, it says that too."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from aurora.app import sync_service
from aurora.app.workspace import Workspace
from aurora.schema import Quadrant
from aurora.sync import HybridClock, Operation, new_id
from aurora.tui.app import AuroraApp
from aurora.tui.screens.matrix import MatrixScreen
from aurora.tui.widgets.status_bar import StatusBar
from tests.node.server import pairing_code, running_node
from tests.tui.helpers import wait_until


@pytest.fixture(autouse=True)
def _token_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURORA_CREDENTIALS_KEY", "a secret only for this test")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")


def _status(app: AuroraApp) -> str:
    return str(app.screen.query_one(StatusBar).render())


def _titles(app: AuroraApp) -> set[str]:
    screen = app.screen
    assert isinstance(screen, MatrixScreen)
    return {t.title for q in Quadrant for t in screen.panel(q).tasks}


async def test_the_tui_syncs_both_ways_in_the_background(
    workspace: Workspace, pg_url: str, tmp_path: Path
) -> None:
    with running_node(pg_url, tmp_path / "node") as url:
        sync_service.pair(workspace.path, workspace.store, url, pairing_code(pg_url, "tui"))
        other = httpx.post(f"{url}/v1/pair", json={"code": pairing_code(pg_url, "phone")}).json()
        bearer = {"Authorization": f"Bearer {other['access_token']}"}
        app = AuroraApp(workspace)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: "online" in _status(app), timeout=15)
            assert "synced" in _status(app) and "waiting" not in _status(app)
            await pilot.press("a", *"Buy stamps", "enter")

            def on_node() -> bool:
                pulled = httpx.get(f"{url}/v1/ops", params={"after": 0}, headers=bearer).json()
                return any(p["op"]["fields"].get("title") == "Buy stamps" for p in pulled["ops"])

            await wait_until(pilot, on_node, timeout=15)
            clock = HybridClock(other["device_id"])
            op = Operation(op_id=new_id(), device_id=other["device_id"], hlc=clock.now().encode(),
                           entity="task", entity_id=new_id(),
                           fields={"title": "Added on the phone", "status": "open"})  # fmt: skip
            pushed = httpx.post(
                f"{url}/v1/ops/push", json={"ops": [op.model_dump(mode="json")]}, headers=bearer
            )
            assert pushed.json()["accepted"] == [op.op_id]
            await wait_until(pilot, lambda: "Added on the phone" in _titles(app), timeout=15)
        # The app closed its sync thread and store: the workspace is still usable here.
        assert workspace.store.pending_ops() == 0


async def test_with_the_node_gone_the_status_bar_says_so_and_keys_still_answer(
    workspace: Workspace, pg_url: str, tmp_path: Path
) -> None:
    with running_node(pg_url, tmp_path / "node") as url:
        sync_service.pair(workspace.path, workspace.store, url, pairing_code(pg_url, "tui"))
    workspace.tasks.add("Written offline")
    app = AuroraApp(workspace)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: "unreachable" in _status(app), timeout=15)
        assert "offline" in _status(app) and "1 change waiting" in _status(app)
        await pilot.press("a", *"Still works", "enter")
        await wait_until(pilot, lambda: "Still works" in _titles(app), timeout=5)
        await wait_until(pilot, lambda: "2 changes waiting" in _status(app), timeout=15)
