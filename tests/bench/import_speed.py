"""Import speed: messages per second through `aurora import` (parse, records, people, rows and operations,
committed), beside a bare stdlib parse of the same mbox in the same run (mailbox + email, body text read).

Two inputs: the largest mbox in the shared real data, and 10,000 generated messages. Median of 3 runs each,
each into a fresh workspace.
"""

from __future__ import annotations

import email.policy
import mailbox
import os
import statistics
import time
from pathlib import Path

from tests.bench.common import Row

RUNS = 3
GENERATED = 10_000


def _bare_parse(path: Path) -> int:
    box = mailbox.mbox(str(path), factory=None, create=False)
    count = 0
    for key in box.iterkeys():
        msg = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
        if body is not None:
            body.get_content()
        count += 1
    return count


def _aurora_import(path: Path, db: Path) -> int:
    from aurora.app.config import Settings
    from aurora.app.ingest.pipeline import Importer
    from aurora.app.workspace import Workspace

    ws = Workspace.open(Settings(workspace=str(db)))
    try:
        [report] = Importer(ws).run([path])
        return report.new
    finally:
        ws.close()


def _rate(path: Path, root: Path, label: str) -> Row:
    ours: list[float] = []
    bare: list[float] = []
    count = 0
    for i in range(RUNS):
        start = time.perf_counter()
        n_bare = _bare_parse(path)
        bare.append(n_bare / (time.perf_counter() - start))
        db = root / f"import-{label}-{i}.db"
        start = time.perf_counter()
        count = _aurora_import(path, db)
        ours.append(count / (time.perf_counter() - start))
    mine, base = statistics.median(ours), statistics.median(bare)
    print(f"import {label}: {mine:,.0f} messages/s ({count} messages, median of {RUNS}) | "
          f"bare stdlib parse {base:,.0f}/s | {mine / base:.2f}x")  # fmt: skip
    return Row(f"import {label} ({count} msgs)", f"{mine:,.0f} msg/s", f"stdlib parse {base:,.0f} msg/s",
               f"{mine / base:.2f}x", "reported", None)  # fmt: skip


def run(root: Path) -> list[Row]:
    from tests.conftest import SHARED
    from tests.ingest.test_pipeline import write_mbox

    rows: list[Row] = []
    real = SHARED / "data" / "real" / "email"
    boxes = sorted(real.rglob("*.mbox"), key=lambda p: p.stat().st_size) if real.is_dir() else []
    if boxes:
        rows.append(_rate(boxes[-1], root, f"largest real mbox {boxes[-1].name}"))
    else:
        print(f"no real data at {real}: set AURORA_SHARED; measuring generated mail only")
    generated = root / "generated.mbox"
    write_mbox(generated, GENERATED)
    print(f"generated {GENERATED} messages ({os.path.getsize(generated) // 1024} KiB)")
    rows.append(_rate(generated, root, "generated mbox"))
    return rows
