"""Shared pieces of the benchmarks: an isolated environment, a 10,000-task workspace, statistics, rows."""

from __future__ import annotations

import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aurora.app.config import Settings
from aurora.app.workspace import Workspace
from aurora.schema import Quadrant
from aurora.sync import new_id

N_TASKS = 10_000

# (urgent, important) flags that the scores place in each quadrant, so the start-up rescore moves nothing.
_FLAGS: dict[Quadrant, tuple[bool, bool]] = {
    Quadrant.DO_FIRST: (True, True),
    Quadrant.SCHEDULE: (False, True),
    Quadrant.DELEGATE: (True, False),
    Quadrant.ELIMINATE: (False, False),
}


@dataclass(frozen=True)
class Row:
    """One line of the summary table."""

    name: str
    value: str
    baseline: str
    ratio: str
    goal: str
    met: bool | None  # None: no goal for this figure


def isolated_root() -> Path:
    """A fresh temporary folder; Aurora's data dir and config file point into it from now on."""
    root = Path(tempfile.mkdtemp(prefix="aurora-bench-"))
    for key in list(os.environ):
        if key.startswith("AURORA_"):
            del os.environ[key]
    os.environ["AURORA_DATA_DIR"] = str(root / "data")
    os.environ["AURORA_CONFIG"] = str(root / "config.toml")  # does not exist: defaults only
    return root


def settings_for(path: Path) -> Settings:
    return Settings(workspace=str(path))


def task_fields(i: int, quadrant: Quadrant, position: float, now: datetime) -> dict[str, Any]:
    """The fields `TaskService.add` writes for a new task (plus the `updated_at` its `_write` stamps)."""
    urgent, important = _FLAGS[quadrant]
    stamp = now.isoformat()
    return {
        "title": f"Task {i:05d} of the benchmark workspace",
        "notes": "",
        "due": None,
        "urgent": urgent,
        "important": important,
        "urgency": 1.0 if urgent else 0.0,
        "importance": 1.0 if important else 0.0,
        "quadrant": int(quadrant),
        "manual": False,
        "position": position,
        "status": "open",
        "completed_at": None,
        "tags": ["bench"] if i % 3 == 0 else [],
        "source": "manual",
        "created_at": stamp,
        "deleted": False,
        "updated_at": stamp,
    }


def build_workspace(path: Path, n: int = N_TASKS) -> float:
    """Write `n` open tasks spread evenly over the quadrants in one transaction; returns seconds taken."""
    start = time.perf_counter()
    ws = Workspace.open(settings_for(path))
    try:
        now = ws.now()
        quadrants = list(Quadrant)
        with ws.store.transaction() as tx:
            for i in range(n):
                q = quadrants[i % len(quadrants)]
                tx.change("task", new_id(), task_fields(i, q, float(i // len(quadrants) + 1), now))
    finally:
        ws.close()  # the last connection to close checkpoints the WAL into the file
    return time.perf_counter() - start


def copy_workspace(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    return target


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.3f} s"


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline > 0 else float("inf")


def real_chunk_texts(path: Path) -> list[str]:
    """The chunk texts of the shared real data (mail, calendar, Slack, tasks, transcripts), imported into a
    workspace at `path` and cut as the laptop's indexer cuts them, in chunk order."""
    from aurora.app.ingest.pipeline import Importer
    from aurora.app.search import Indexer
    from tests.conftest import SHARED

    real = SHARED / "data" / "real"
    ws = Workspace.open(settings_for(path))
    try:
        folders = ["email", "calendar", "slack/export_sample", "tasks", "transcripts/subtitles"]
        Importer(ws).run([real / f for f in folders])
        Indexer(ws.store).drain_all()
        return [str(r[0]) for r in ws.store.query("SELECT text FROM chunks ORDER BY id")]
    finally:
        ws.close()
