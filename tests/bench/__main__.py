"""Run every benchmark and print a summary table: `.venv/bin/python -m tests.bench` from the repository root.

Nothing touches the user's data: Aurora's data dir and config file point into a temporary folder, which is
removed at the end (pass --keep to leave it). Name benchmarks to run only those: startup, move, commit,
import, search, quality, sync, inference, embedqueue, chat.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time

# sync_speed reads AURORA_BENCH_SECONDS when imported, so it is imported before the environment is cleared.
from tests.bench import sync_speed
from tests.bench.common import N_TASKS, Row, build_workspace, copy_workspace, isolated_root

BENCHMARKS = (
    "startup",
    "move",
    "commit",
    "import",
    "search",
    "quality",
    "sync",
    "inference",
    "embedqueue",
    "chat",
)


def _table(rows: list[Row]) -> str:
    header = ("benchmark", "value", "baseline (same run)", "ratio", "goal", "verdict")
    verdict = {None: "-", True: "met", False: "MISSED"}
    cells = [header] + [(r.name, r.value, r.baseline, r.ratio, r.goal, verdict[r.met]) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    args = sys.argv[1:]
    keep = "--keep" in args
    chosen = {a for a in args if not a.startswith("-")} or set(BENCHMARKS)
    unknown = chosen - set(BENCHMARKS)
    if unknown:
        print(f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    root = isolated_root()
    # Imported after the environment is isolated, so no setting is read from the user's files.
    from tests.bench import (
        chat_retrieval,
        commit,
        embed_queue,
        import_speed,
        inference_speed,
        move,
        search_quality,
        search_speed,
        startup,
    )

    started = time.perf_counter()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; temp {root}")
    source = root / "bench10k.db"
    print(f"built a workspace of {N_TASKS} tasks in {build_workspace(source):.2f} s")
    rows: list[Row] = []
    try:
        for name, module in (("startup", startup), ("move", move), ("commit", commit)):
            if name in chosen:
                print()
                rows += module.run(copy_workspace(source, root / f"{name}.db"))
        runners = (
            ("import", import_speed),
            ("search", search_speed),
            ("quality", search_quality),
            ("sync", sync_speed),
            ("inference", inference_speed),
            ("embedqueue", embed_queue),
            ("chat", chat_retrieval),
        )
        for name, runner in runners:
            if name in chosen:
                print()
                rows += runner.run(root)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(_table(rows))
    print(f"\nall benchmarks took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
