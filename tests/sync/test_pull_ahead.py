"""`Syncer._pull` asks for the next page while it applies the current one: the pages must still be
applied in order, the cursor must move only with an applied page, and a page fetched ahead of one that
failed must not be applied."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, cast

from aurora.app.node_client import NodeClient, PulledPage
from aurora.app.store import Store
from aurora.app.sync_log import SqliteActionLog
from aurora.app.syncer import Syncer
from aurora.sync import Hlc, Operation
from aurora.sync.protocol import PulledOp, PushResponse

BASE_MS = 1_750_000_000_000


def _op(n: int, wall_ms: int = BASE_MS) -> Operation:
    return Operation(op_id=f"op-{n:04d}", device_id="devB", hlc=Hlc(wall_ms + n, 0, "devB").encode(),
                     entity="task", entity_id=f"t{n}", fields={"title": f"task {n}"})  # fmt: skip


class _Node:
    """Pages of 2 operations, seq = n + 1; records each pull's cursor and what the log held then."""

    def __init__(self, ops: list[Operation], log: SqliteActionLog) -> None:
        self.ops = ops
        self.log = log
        self.asked: list[tuple[int, int]] = []
        self.lock = threading.Lock()
        self.url = "http://node.test"

    def push(self, ops: Any, pending: int) -> PushResponse:
        return PushResponse(accepted=[op.op_id for op in ops], head=len(self.ops))

    def pull(self, after: int, limit: int) -> PulledPage:
        with self.lock:
            self.asked.append((after, self.log.pull_cursor()))
        page = [PulledOp(seq=n + 1, op=op) for n, op in enumerate(self.ops) if n + 1 > after][:2]
        cursor = page[-1].seq if page else len(self.ops)
        ops = [p.op for p in page]
        return PulledPage(cursor, len(self.ops), cursor < len(self.ops), len(ops), None, ops)


def _syncer(tmp_path: Path, ops: list[Operation]) -> tuple[Syncer, _Node, Store]:
    store = Store.open(tmp_path / "b.db")
    log = SqliteActionLog(store)
    node = _Node(ops, log)
    return Syncer(log, cast(NodeClient, node)), node, store


def test_pages_fetched_ahead_are_applied_in_order(tmp_path: Path) -> None:
    syncer, node, store = _syncer(tmp_path, [_op(n) for n in range(7)])
    try:
        report = syncer.sync_once()
        assert report.ok and report.pulled == report.applied == 7
        assert [after for after, _ in node.asked] == [0, 2, 4, 6]
        # Each page is asked for once the one before it is read: before or after it is applied (the
        # order of two threads), never later.
        assert all(held in (after - 2, after) for after, held in node.asked[1:])
        assert syncer.log.pull_cursor() == 7
        assert [op.op_id for op in store.operations()] == [f"op-{n:04d}" for n in range(7)]
    finally:
        store.close()


def test_a_page_that_fails_stops_the_pull_where_it_was(tmp_path: Path) -> None:
    far_ahead = 4_000_000_000_000  # year 2096: refused as stamped in the future
    ops = [_op(0), _op(1), _op(2), _op(3, far_ahead), _op(4), _op(5)]
    syncer, _, store = _syncer(tmp_path, ops)
    try:
        report = syncer.sync_once()
        assert not report.ok and "in the future" in " ".join(report.errors)
        assert syncer.log.pull_cursor() == 2  # the first page only
        assert [op.op_id for op in store.operations()] == ["op-0000", "op-0001"]
    finally:
        store.close()
