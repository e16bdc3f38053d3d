"""The laptop's operation log as sync sees it: the `ActionLog` contract over the SQLite store, plus the
laptop's own sync bookkeeping.

Bookkeeping lives in the store's `meta` table, so it commits with the changes it describes:

- `pushed_through`: the local seq up to which every operation made here (or imported here) has reached the
  node. Pending operations are those after it that did not come from the node (`ops.from_node = 0`).
- `pulled_through`: the node's sequence number up to which this laptop has applied the node's log. It
  moves in the same transaction that applies the pulled operations, so a crash between the two cannot
  happen: after a restart the laptop asks again from where the committed state says, and nothing is lost
  or applied twice (applying twice would change nothing anyway: operations are deduplicated by `op_id`).
- `sync_*`: a small status (last successful sync, last attempt, last error in words, operations the node
  refused for good) that the status bar and `aurora doctor` show after a restart too.

Operations pulled from the node are logged with `from_node = 1`: the node has them, so they are never
pushed back and never counted as pending.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from aurora.app.store import Store
from aurora.schema import EntityKind
from aurora.sync import EntityState, Operation
from aurora.sync.batch import CheckedPage

_STATUS_KEYS = ("sync_last_ok", "sync_last_attempt", "sync_last_error", "sync_refused", "sync_last_refused")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SyncStatus:
    """The persisted outcome of the last syncs."""

    last_sync: datetime | None
    """The end of the last sync that reached the node and finished without error."""
    last_attempt: datetime | None
    last_error: str | None
    """The last attempt's error, in words; None when it succeeded."""
    refused: int
    """Operations the node refused for good, in all (they stay here but will never reach the node)."""
    last_refused: str | None
    """Why the last of those was refused, in words."""


class PendingOp(NamedTuple):
    """An operation waiting to be pushed, as the push sends it."""

    seq: int
    """Its place in this replica's log."""
    op_id: str
    wire: str
    """The operation as the JSON object the protocol carries."""


def _row_to_op(row: Sequence[Any]) -> Operation:
    """An operation read back from this replica's own log. It was validated before it was written (a local
    change through the services' models, a pulled or imported one as an `Operation`), and the log is
    history: it is not validated again, field by field, each time it is read (that cost more than sending
    it), nor judged by today's rules."""
    op_id, device_id, hlc, entity, entity_id, fields = row
    return Operation.model_construct(
        op_id=str(op_id),
        device_id=str(device_id),
        hlc=str(hlc),
        entity=entity,
        entity_id=str(entity_id),
        fields=json.loads(str(fields)),
    )


_OP_COLUMNS = "op_id, device_id, hlc, entity, entity_id, fields"


class SqliteActionLog:
    """The laptop store as an `aurora.sync.protocol.ActionLog`, and the laptop's push/pull cursors.

    The async methods run the store's (blocking) calls on a worker thread, so an event loop that awaits
    them keeps running; the bookkeeping methods are plain calls, meant for the sync thread.
    """

    def __init__(self, store: Store, *, now: Callable[[], datetime] = _utcnow) -> None:
        self.store = store
        self._now = now

    # --- the ActionLog contract -------------------------------------------------------------------

    async def ingest(self, ops: Sequence[Operation]) -> list[Operation]:
        """Apply, in one transaction, the operations not seen before; the new ones, in the order given.
        They are logged as coming from the node (the laptop's only source of other replicas' work)."""
        return await asyncio.to_thread(self._ingest, list(ops))

    async def after(self, cursor: int, limit: int) -> list[tuple[int, Operation]]:
        return await asyncio.to_thread(self.after_now, cursor, limit)

    async def head(self) -> int:
        return await asyncio.to_thread(self.head_now)

    async def state(self, entity: EntityKind, entity_id: str) -> EntityState | None:
        return await asyncio.to_thread(self.store.load, entity, entity_id)

    def _ingest(self, ops: list[Operation]) -> list[Operation]:
        with self.store.transaction() as tx:
            return [op for op, new in zip(ops, tx.apply_many(ops, from_node=True), strict=True) if new]

    def after_now(self, cursor: int, limit: int) -> list[tuple[int, Operation]]:
        """`after`, as a plain call."""
        rows = self.store.query(
            f"SELECT seq, {_OP_COLUMNS} FROM ops WHERE seq > ? ORDER BY seq LIMIT ?", (cursor, max(limit, 0))
        )
        return [(int(row[0]), _row_to_op(row[1:])) for row in rows]

    def head_now(self) -> int:
        """`head`, as a plain call."""
        return int(self.store.query("SELECT coalesce(max(seq), 0) FROM ops")[0][0])

    # --- push -------------------------------------------------------------------------------------

    def unpushed(self, limit: int, after: int = 0) -> list[tuple[int, Operation]]:
        """The next operations to push, oldest first, with their local seq: made or imported here
        (not from the node) and after `pushed_through` (and after local seq `after`, for a batch that
        follows others still in flight). Push them in this order and move the cursor with
        `mark_pushed(seq)` past those the node has answered for."""
        rows = self.store.query(
            f"SELECT seq, {_OP_COLUMNS} FROM ops WHERE from_node = 0 AND seq > max(?, "
            "(SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'pushed_through')) ORDER BY seq LIMIT ?",
            (after, max(limit, 0)),
        )
        return [(int(row[0]), _row_to_op(row[1:])) for row in rows]

    def unpushed_wire(self, limit: int, after: int = 0) -> list[PendingOp]:
        """`unpushed`, each operation as its wire JSON (`Operation.model_dump(mode="json")`), written by
        SQLite from the stored row: a push sends the log as it is, so it is neither parsed into objects
        nor encoded again in Python (that cost more than the rest of the laptop's side of a push)."""
        rows = self.store.query(
            "SELECT seq, op_id, json_object('op_id', op_id, 'device_id', device_id, 'hlc', hlc, "
            "'entity', entity, 'entity_id', entity_id, 'fields', json(fields)) "
            "FROM ops WHERE from_node = 0 AND seq > max(?, "
            "(SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'pushed_through')) ORDER BY seq LIMIT ?",
            (after, max(limit, 0)),
        )
        return [PendingOp(int(seq), str(op_id), str(wire)) for seq, op_id, wire in rows]

    def mark_pushed(self, through_seq: int) -> None:
        """The node holds (or has refused for good) every pending operation up to `through_seq`. The
        cursor never moves back: an answer that arrives late cannot re-queue what was acknowledged."""
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE meta SET value = CAST(max(CAST(value AS INTEGER), ?) AS TEXT) "
                "WHERE key = 'pushed_through'",
                (through_seq,),
            )

    def pending(self) -> int:
        """Operations still to push (what the status bar shows)."""
        return self.store.pending_ops()

    # --- pull -------------------------------------------------------------------------------------

    def pull_cursor(self) -> int:
        """The node's sequence number this laptop has applied through (0 before the first pull)."""
        rows = self.store.query("SELECT value FROM meta WHERE key = 'pulled_through'")
        return int(rows[0][0]) if rows else 0

    def apply_pulled(self, ops: Sequence[Operation] | CheckedPage, cursor: int) -> int:
        """Apply a page pulled from the node and move `pulled_through` to `cursor`, in one transaction:
        both happen or neither does. Returns how many operations were new here. The cursor only moves
        forward (`reset_cursors` is the one way back). A page checked whole (`aurora.sync.batch`) is
        written from its JSON (`Transaction.apply_page`)."""
        with self.store.transaction() as tx:
            if isinstance(ops, CheckedPage):
                applied = tx.apply_page(ops, from_node=True)
            else:
                applied = sum(tx.apply_many(ops, from_node=True))
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('pulled_through', CAST(? AS TEXT)) "
                "ON CONFLICT (key) DO UPDATE SET value = CAST(max(CAST(value AS INTEGER), ?) AS TEXT)",
                (cursor, cursor),
            )
        return applied

    def reset_cursors(self) -> None:
        """Start both cursors over: the node's log is behind what this laptop has seen of it (a node
        restored from an older backup). Everything made here is pushed again and everything there pulled
        again; both sides keep each operation once, so this costs only traffic."""
        with self.store.transaction() as tx:
            tx.execute("UPDATE meta SET value = '0' WHERE key = 'pushed_through'")
            tx.execute("DELETE FROM meta WHERE key = 'pulled_through'")

    # --- status -----------------------------------------------------------------------------------

    def record_sync(self, error: str | None, refused: Sequence[str] = ()) -> None:
        """Persist one attempt's outcome: `error` in words (None for success) and the reasons for any
        operations the node refused for good."""
        at = self._now().isoformat()
        with self.store.transaction() as tx:
            values = {"sync_last_attempt": at, "sync_last_error": error or ""}
            if error is None:
                values["sync_last_ok"] = at
            if refused:
                values["sync_last_refused"] = refused[-1]
            for key, value in values.items():
                tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
            if refused:
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('sync_refused', CAST(? AS TEXT)) "
                    "ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + ? AS TEXT)",
                    (len(refused), len(refused)),
                )

    def sync_status(self) -> SyncStatus:
        marks = ", ".join("?" * len(_STATUS_KEYS))
        rows = self.store.query(f"SELECT key, value FROM meta WHERE key IN ({marks})", _STATUS_KEYS)
        got = {str(key): str(value) for key, value in rows}

        def when(key: str) -> datetime | None:
            return datetime.fromisoformat(got[key]) if got.get(key) else None

        return SyncStatus(
            last_sync=when("sync_last_ok"),
            last_attempt=when("sync_last_attempt"),
            last_error=got.get("sync_last_error") or None,
            refused=int(got.get("sync_refused", "0")),
            last_refused=got.get("sync_last_refused") or None,
        )
