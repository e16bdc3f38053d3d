"""Shared fixtures. Every test runs against real SQLite files in tmp_path, never the developer's own
data: the autouse fixture points Aurora's data dir and config file into the test's folder."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from aurora.app.config import Settings
from aurora.app.workspace import Workspace

if TYPE_CHECKING:
    from tests.node.pgtest import PgTestServer

FIXED_NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
"""A Friday morning; tests that show dates use it so screens and scores are reproducible."""


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("AURORA_") and key != "AURORA_CI":
            monkeypatch.delenv(key)
    data = tmp_path / "data"
    monkeypatch.setenv("AURORA_DATA_DIR", str(data))
    monkeypatch.setenv("AURORA_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("TZ", "UTC")
    # The TUI would load torch in the background in every test; the tests that want it switch it on.
    monkeypatch.setenv("AURORA_BACKGROUND_EMBEDDING", "false")
    time.tzset()  # so astimezone() and the screens use UTC, whatever the machine's zone
    return data


SHARED = Path(os.environ.get("AURORA_SHARED", Path(__file__).resolve().parents[2] / "shared"))
"""The team's shared folder (real recorded data in `data/real`); `AURORA_SHARED` points elsewhere."""


@pytest.fixture(scope="session")
def real_data() -> Path:
    """`shared/data/real`. Tests that need it skip where it is absent, and fail under AURORA_CI=1."""
    path = SHARED / "data" / "real"
    if not path.is_dir():
        pytest.skip(f"no real data at {path}: set AURORA_SHARED to the shared folder")
    return path


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgTestServer]:
    """One real PostgreSQL for the whole session (the embedded one, or `AURORA_NODE_DATABASE_URL`'s);
    tests take fresh databases from it. Skips where none can start, which fails under AURORA_CI=1."""
    from tests.node.pgtest import PgTestServer, PgUnavailableError

    try:
        server = PgTestServer.start()
    except PgUnavailableError as error:
        pytest.skip(f"no PostgreSQL for the node's tests: {error}")
    yield server
    server.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", workspace=str(tmp_path / "work.db"), device_name="test")


@pytest.fixture
def workspace(settings: Settings) -> Iterator[Workspace]:
    ws = Workspace.open(settings, now=lambda: FIXED_NOW)
    yield ws
    ws.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI (`AURORA_CI=1`) a skipped test is a failure: CI must run everything."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("AURORA_CI") == "1" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped under AURORA_CI=1, which CI does not allow: {reason}"
