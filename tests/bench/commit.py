"""Benchmark 3: one change with its logged operation, committed, vs the bare UPDATE of the same row.

Both run on the same workspace file (10,000 tasks) in `BEGIN IMMEDIATE` transactions: the Store's writer
connection through `Store.transaction()` / `Transaction.change`, and a second apsw connection opened by
`database.open_connection` (so the same pragmas: WAL, synchronous=FULL, the same extensions) running
`UPDATE tasks SET title = ? WHERE id = ?`. Rounds alternate between the two.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import apsw

from aurora.app.store import Store, database
from tests.bench.common import Row, median, ms, ratio

N = 200
ROUNDS = 5
GOAL_RATIO = 1.5


def _store_round(store: Store, task_id: str, tag: str) -> list[float]:
    times: list[float] = []
    for i in range(N):
        start = time.perf_counter()
        with store.transaction() as tx:
            tx.change("task", task_id, {"title": f"t{tag}{i}"})
        times.append(time.perf_counter() - start)
    return times


def _bare_round(conn: apsw.Connection, task_id: str, tag: str) -> list[float]:
    times: list[float] = []
    for i in range(N):
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE tasks SET title = ? WHERE id = ?", (f"b{tag}{i}", task_id))
        conn.execute("COMMIT")
        times.append(time.perf_counter() - start)
    return times


def _wal_frames_per_commit(conn: apsw.Connection, commit: Callable[[int], None], n: int = 50) -> float:
    """WAL frames (pages) one commit appends: the WAL is emptied, auto-checkpoints paused, frames counted."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        for i in range(n):
            commit(i)
        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()  # (busy, frames in WAL, copied)
        assert row is not None
        return int(row[1]) / n
    finally:
        conn.execute("PRAGMA wal_autocheckpoint = 1000")


def run(workspace: Path) -> list[Row]:
    store = Store.open(workspace)
    bare = database.open_connection(workspace, busy_timeout_ms=5000)
    try:
        task_id = str(store.query("SELECT id FROM tasks ORDER BY id LIMIT 1 OFFSET 5000")[0][0])
        sync = bare.execute("PRAGMA synchronous").fetchone()
        mode = bare.execute("PRAGMA journal_mode").fetchone()
        assert sync is not None and int(sync[0]) == 2, "the bare connection must use synchronous=FULL"
        assert mode is not None and str(mode[0]).lower() == "wal"
        # Warm-up: statement caches and pages of both connections.
        _store_round(store, task_id, "w")
        _bare_round(bare, task_id, "w")
        store_medians: list[float] = []
        bare_medians: list[float] = []
        for r in range(ROUNDS):
            if r % 2 == 0:
                store_medians.append(median(_store_round(store, task_id, str(r))))
                bare_medians.append(median(_bare_round(bare, task_id, str(r))))
            else:
                bare_medians.append(median(_bare_round(bare, task_id, str(r))))
                store_medians.append(median(_store_round(store, task_id, str(r))))

        # Not timed: how many pages each kind of commit writes, which is what its COMMIT (fsync) pays for.
        def one_change(i: int) -> None:
            with store.transaction() as tx:
                tx.change("task", task_id, {"title": f"f{i}"})

        def one_update(i: int) -> None:
            bare.execute("BEGIN IMMEDIATE")
            bare.execute("UPDATE tasks SET title = ? WHERE id = ?", (f"g{i}", task_id))
            bare.execute("COMMIT")

        frames_change = _wal_frames_per_commit(store._writer, one_change)
        frames_bare = _wal_frames_per_commit(bare, one_update)
    finally:
        bare.close()
        store.close()
    change, plain = median(store_medians), median(bare_medians)
    rr = ratio(change, plain)
    met = rr <= GOAL_RATIO
    print(
        f"change+operation commit: {ms(change)} per commit (median of {ROUNDS} rounds x {N}) | "
        f"baseline bare UPDATE commit {ms(plain)} | ratio {rr:.2f}x | goal <={GOAL_RATIO}x | "
        f"{'met' if met else 'MISSED'}"
    )
    pages = f"change+operation {frames_change:.1f}, bare UPDATE {frames_bare:.1f}"
    print(f"  WAL pages written per commit: {pages}")
    print(f"  round medians change: {', '.join(ms(t) for t in store_medians)}")
    print(f"  round medians bare:   {', '.join(ms(t) for t in bare_medians)}")
    return [
        Row(
            "change+operation commit (synchronous=FULL)",
            ms(change),
            f"bare UPDATE commit {ms(plain)}",
            f"{rr:.2f}x",
            f"<={GOAL_RATIO}x",
            met,
        )
    ]
