"""The store: a workspace's SQLite file, with one writer and the operation log.

Every change goes through `Transaction.change`, which builds an operation (UUIDv7 id, this device, a
fresh HLC), merges it into the row with the pure `aurora.sync.merge`, and writes the row and the operation
in the same `BEGIN IMMEDIATE` transaction (a transactional outbox). Callers never write SQL for entities.

Threads: all writes take one lock and use the one writer connection; reads use a second connection, which
in WAL mode never waits for the writer.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw

from aurora.app.errors import InvalidInputError, StoreError
from aurora.app.store import database
from aurora.app.store.rows import (
    COLUMNS,
    PAGE_OPS,
    PICKED,
    TABLES,
    compact_json,
    insert_from_json_sql,
    insert_from_page_sql,
    insert_sql,
    state_from_row,
    to_column,
    update_sql,
)
from aurora.schema import EntityKind
from aurora.sync import EntityState, Hlc, HybridClock, Operation, new_id, winners
from aurora.sync.batch import CheckedPage
from aurora.sync.merge import clocks_template

_CHECKPOINT_AFTER = 1000
"""Operations read at open beyond the clock checkpoint before it is moved up."""
_ROWS = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
"""Rows for SQLite's `json_each`, written once per run (validated operations hold no NaN); in the form of
`rows.compact_json`, so the values SQLite takes out of them are stored as Python would write them."""
_LOG_FROM_JSON = (
    "INSERT INTO ops (op_id, device_id, hlc, entity, entity_id, fields, from_node) "
    "SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value -> 5, ? FROM json_each(?)"
)
"""The log rows of `apply_many`, one per element `[op_id, device_id, hlc, entity, entity_id, fields]`."""
_LOG_FROM_PAGE = (
    "INSERT INTO ops (op_id, device_id, hlc, entity, entity_id, fields, from_node) "
    "SELECT p.value ->> '$.op.op_id', p.value ->> '$.op.device_id', p.value ->> '$.op.hlc', "
    f"p.value ->> '$.op.entity', p.value ->> '$.op.entity_id', p.value -> '$.op.fields', ? FROM {PAGE_OPS}"
)
"""The log rows of `apply_page`: the page's operations (`PICKED`: those at the positions given)."""
_IN_PAGE_ORDER = " ORDER BY p.key"
"""The log's order, said rather than left to how SQLite happens to scan `jsonb_each`."""

MAX_CLOCK_AHEAD_MS = 5 * 60 * 1000
"""How far in the future an operation from elsewhere may be stamped (clock skew between devices)."""


def _refuse_far_ahead(op_id: str, clock: Hlc, now_ms: int) -> None:
    """Raise when an operation from elsewhere is stamped more than `MAX_CLOCK_AHEAD_MS` ahead: taking it
    would drag this replica's clock ahead too, and every edit made here would lose to it until the wall
    clock caught up."""
    ahead_ms = clock.wall_ms - now_ms
    if ahead_ms > MAX_CLOCK_AHEAD_MS:
        raise InvalidInputError(
            f"operation {op_id} is stamped {ahead_ms // 60_000} minutes in the future; fix the clock of the "
            "device that made it (nothing was applied)"
        )


class Transaction:
    """One write transaction. Obtained from `Store.transaction()`."""

    def __init__(self, store: Store, conn: apsw.Connection) -> None:
        self._store = store
        self._conn = conn
        self.changed_locally = False
        """Whether this transaction logged a change made here (something new to push)."""

    def load(self, kind: EntityKind, entity_id: str) -> EntityState | None:
        return self._store._load(self._conn, kind, entity_id)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows as this transaction sees them (its own uncommitted writes included)."""
        return [tuple(row) for row in self._conn.execute(sql, params)]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """A write to local bookkeeping tables (lookups, import hashes) that are not synced entities.
        Entities change only through `change` and `apply`, which log their operations."""
        self._conn.execute(sql, params)

    def change(self, kind: EntityKind, entity_id: str, fields: dict[str, Any]) -> None:
        """Set `fields` on one entity and log the operation, with a fresh id and clock.

        The values are trusted: the services validated them against the entity models. Operations from
        outside (an import, later sync) arrive through `apply`, already validated as `Operation`s.
        """
        store = self._store
        self._write(kind, entity_id, fields, store.clock.now().encode(), new_id(), store.device_id)
        self.changed_locally = True

    def apply(self, op: Operation, *, from_node: bool = False) -> bool:
        """Apply an operation made elsewhere; False if it was seen already.

        `from_node` marks an operation pulled from the node: the node has it, so it is never pushed back
        and never counts as pending. An imported export's operations are not from the node: they are
        pushed like local edits (the node keeps each once, by `op_id`).
        """
        seen = self._conn.execute("SELECT 1 FROM ops WHERE op_id = ?", (op.op_id,)).fetchone()
        if seen:
            return False
        _refuse_far_ahead(op.op_id, op.clock, time.time_ns() // 1_000_000)
        self._store.clock.observe(op.clock)
        self._write(op.entity, op.entity_id, op.fields, op.hlc, op.op_id, op.device_id, from_node=from_node)
        return True

    def _new_here(self, op_ids: Sequence[str]) -> list[bool]:
        """For each id, whether its operation is new here: not in the log, and not earlier in `op_ids`
        (one lookup for them all)."""
        logged = {
            str(row[0])
            for row in self._conn.execute(
                "SELECT op_id FROM ops WHERE op_id IN (SELECT value FROM json_each(?))", (json.dumps(op_ids),)
            )
        }
        flags = []
        for op_id in op_ids:
            flags.append(op_id not in logged)
            logged.add(op_id)
        return flags

    def apply_many(self, ops: Sequence[Operation], *, from_node: bool = False) -> list[bool]:
        """`apply` for each operation in order, with the same outcome (the same rows, the same log, and
        for each whether it was new: one that appears twice is new the first time), in a few statements:
        one lookup of the ids already logged, one per kind of the rows they touch, then the writes in
        order: each run of new rows with the same fields as one `INSERT ... SELECT FROM json_each`, each
        run of updates as one `executemany`, and the log as one more `INSERT ... SELECT`. A page of 2,000
        pulled operations is 2,000 rows; one at a time, the statements around each row cost more than the
        row, and the JSON statements run in C without Python's GIL (the next page is checked meanwhile).

        An operation stamped too far ahead refuses the whole call before anything is written (`apply`
        refuses it at its turn; either way the transaction rolls back).
        """
        conn = self._conn
        new_flags = self._new_here([op.op_id for op in ops])
        new = [op for op, is_new in zip(ops, new_flags, strict=True) if is_new]
        if not new:
            return new_flags
        now_ms = time.time_ns() // 1_000_000
        latest: Hlc | None = None
        for op in new:
            clock = op.clock
            _refuse_far_ahead(op.op_id, clock, now_ms)
            if latest is None or clock > latest:
                latest = clock
        assert latest is not None
        self._store.clock.observe(latest)

        # Each touched row's clocks, as `_write` reads them, kept up to date as the operations are folded
        # in (several may touch one entity); None where there is no row yet.
        held: dict[tuple[EntityKind, str], dict[str, str] | None] = {}
        wanted: dict[EntityKind, set[str]] = {}
        for op in new:
            wanted.setdefault(op.entity, set()).add(op.entity_id)
        for kind, ids in wanted.items():
            held.update(dict.fromkeys(((kind, entity_id) for entity_id in ids), None))
            rows = conn.execute(
                f"SELECT id, field_clocks FROM {TABLES[kind]} WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(ids)),),
            )
            held.update({(kind, str(row[0])): json.loads(row[1]) for row in rows})

        # In order: runs of new rows (one JSON array each, inserted by one statement) and updates (one
        # `executemany` per run of the same columns). A row is new when no row and no earlier operation of
        # this call made it, so a later update of it always comes after its insert.
        writes: list[tuple[str, bool, Any]] = []
        for op in new:
            kind, fields, hlc = op.entity, op.fields, op.hlc
            key = (kind, op.entity_id)
            clocks = held[key]
            if clocks is None:
                held[key] = dict.fromkeys(fields, hlc)
                names = tuple(fields)
                row = [op.entity_id, clocks_template(names) % ((hlc,) * len(names)), *fields.values()]
                writes.append((insert_from_json_sql(kind, names), True, row))
            else:
                won = tuple(sorted(winners(clocks, hlc, fields)))
                if won:
                    clocks.update(dict.fromkeys(won, hlc))
                    params = {name: to_column(kind, name, fields[name]) for name in won}
                    params |= {"id": op.entity_id, "field_clocks": json.dumps(clocks, sort_keys=True)}
                    writes.append((update_sql(kind, won), False, params))
        for (sql, from_json), run in itertools.groupby(writes, key=lambda write: write[:2]):
            if from_json:
                conn.execute(sql, (_ROWS.encode([row for _, _, row in run]),))
            else:
                conn.executemany(sql, [params for _, _, params in run])
        logs = [[op.op_id, op.device_id, op.hlc, op.entity, op.entity_id, op.fields] for op in new]
        conn.execute(_LOG_FROM_JSON, (int(from_node), _ROWS.encode(logs)))
        return new_flags

    def apply_page(self, page: CheckedPage, *, from_node: bool = False) -> int:
        """`apply_many` for a page checked whole (`aurora.sync.batch.check_page`): the same rows and the
        same log, the number of operations that were new here. When every new operation makes an entity
        this replica does not hold yet (a first sync, a bulk import elsewhere), SQLite writes the rows and
        the log straight from the page's JSON, one statement per run of operations setting the same fields
        and one for the log: no Python object per operation, and no JSON written again. Otherwise (an
        operation on a row held here, or two on one entity) the page goes through `apply_many`.

        The log keeps each operation's fields as the page's JSON holds them (SQLite writes them compact),
        which may differ from `rows.compact_json`'s form in key order and escapes, never in value.
        """
        conn = self._conn
        new_flags = self._new_here([op.op_id for op in page.ops])
        new = [op for op, is_new in zip(page.ops, new_flags, strict=True) if is_new]
        if not new:
            return 0
        touched: dict[tuple[EntityKind, str], int] = {}
        wanted: dict[EntityKind, list[str]] = {}
        for op in new:
            key = (op.entity, op.entity_id)
            touched[key] = touched.get(key, 0) + 1
            wanted.setdefault(op.entity, []).append(op.entity_id)
        held = any(
            conn.execute(
                f"SELECT 1 FROM {TABLES[kind]} WHERE id IN (SELECT value FROM json_each(?)) LIMIT 1",
                (json.dumps(ids),),
            ).fetchone()
            for kind, ids in wanted.items()
        )
        if held or len(touched) < len(new):
            return sum(self.apply_many(page.operations(), from_node=from_node))

        latest = max(new, key=lambda op: op.hlc)  # the canonical text sorts as the clock does
        clock = Hlc.decode(latest.hlc)
        _refuse_far_ahead(latest.op_id, clock, time.time_ns() // 1_000_000)
        self._store.clock.observe(clock)
        body = page.body.decode("utf-8")  # text: SQLite would read a BLOB as its binary JSONB
        every = len(new) == len(page.ops)
        for (kind, names), run in itertools.groupby(new, key=lambda op: (op.entity, op.names)):
            ops = list(run)
            template = clocks_template(names, "@")
            if every and len(ops) == len(new):  # the whole page: no positions to pick
                conn.execute(insert_from_page_sql(kind, names, False), (template, body))
            else:
                positions = json.dumps([op.position for op in ops])
                conn.execute(insert_from_page_sql(kind, names, True), (template, body, positions))
        if every:
            conn.execute(_LOG_FROM_PAGE + _IN_PAGE_ORDER, (int(from_node), body))
        else:
            positions = json.dumps([op.position for op in new])
            conn.execute(_LOG_FROM_PAGE + PICKED + _IN_PAGE_ORDER, (int(from_node), body, positions))
        return len(new)

    def _write(
        self,
        kind: EntityKind,
        entity_id: str,
        fields: dict[str, Any],
        hlc: str,
        op_id: str,
        device_id: str,
        *,
        from_node: bool = False,
    ) -> None:
        """Merge one operation into its row (last writer wins per field, `aurora.sync.winners`) and log it.

        Only the row's clocks are read, and only the fields the operation wins are written: an index
        whose columns are not set is not rewritten, which keeps a change to a few pages.
        """
        row = self._conn.execute(
            f"SELECT field_clocks FROM {TABLES[kind]} WHERE id = ?", (entity_id,)
        ).fetchone()
        if row is None:
            clocks = dict.fromkeys(fields, hlc)
            params = {name: to_column(kind, name, value) for name, value in fields.items()}
            params |= {"id": entity_id, "field_clocks": json.dumps(clocks, sort_keys=True)}
            self._conn.execute(insert_sql(kind, tuple(params)), params)
        else:
            clocks = json.loads(row[0])
            won = tuple(sorted(winners(clocks, hlc, fields)))
            if won:
                clocks.update(dict.fromkeys(won, hlc))
                params = {name: to_column(kind, name, fields[name]) for name in won}
                params |= {"id": entity_id, "field_clocks": json.dumps(clocks, sort_keys=True)}
                self._conn.execute(update_sql(kind, won), params)
        self._conn.execute(
            "INSERT INTO ops (op_id, device_id, hlc, entity, entity_id, fields, from_node) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (op_id, device_id, hlc, kind, entity_id, compact_json(fields), int(from_node)),
        )


class Store:
    """An open workspace database. Use `Store.open(path)`; close it when done."""

    def __init__(self, path: Path, writer: apsw.Connection, reader: apsw.Connection, device_id: str) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader
        self._lock = threading.Lock()
        self.device_id = device_id
        self.clock = HybridClock(device_id)
        self.on_local_change: Callable[[], None] | None = None
        """Called after a transaction that made local changes commits (the sync loop's nudge). It runs on
        the committing thread and must not block."""
        self._seen_seq = 0
        self._start_clock()
        # What this SQLite can do, checked at every open (search needs both; tasks and notes neither).
        self.vec_version = database.vec_version(writer)
        self.fts5 = database.has_fts5(writer)

    @classmethod
    def open(cls, path: Path, *, busy_timeout_ms: int = 5000) -> Store:
        """Open (creating if needed) and migrate a workspace. Raises StoreError subclasses in words."""
        if path.is_dir():
            raise StoreError(f"{path} is a folder; give --workspace a file name or a workspace name")
        database.check_not_truncated(path)
        writer = database.open_connection(path, busy_timeout_ms=busy_timeout_ms)
        try:
            database.migrate_database(writer, path)
            device_id = cls._device_id(writer, path)
            reader = database.open_connection(path, busy_timeout_ms=busy_timeout_ms)
        except BaseException:
            writer.close()
            raise
        return cls(path, writer, reader, device_id)

    @staticmethod
    def _device_id(conn: apsw.Connection, path: Path) -> str:
        with database.translate_errors(path):
            row = conn.execute("SELECT value FROM meta WHERE key = 'device_id'").fetchone()
            if row:
                return str(row[0])
            # A device id is chosen once per replica (per workspace file), never per process.
            # Another process may be opening the same new workspace: whoever inserts first wins.
            with conn:
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('device_id', ?)",
                    (new_id().replace("-", "")[:16],),
                )
            (device_id,) = conn.execute("SELECT value FROM meta WHERE key = 'device_id'").fetchall()[0]
            return str(device_id)

    def _start_clock(self) -> None:
        """Set the clock past every operation in the log without reading the whole log: a checkpoint in
        `meta` holds the greatest clock up to some seq, so only the operations after it are read. When
        that tail is long, the checkpoint moves up (one small write, at open only)."""
        row = self._reader.execute("SELECT value FROM meta WHERE key = 'clock_checkpoint'").fetchone()
        if row:
            seq, hlc = str(row[0]).split(" ", 1)
            self.clock.observe(Hlc.decode(hlc))
            self._seen_seq = int(seq)
        start = self._seen_seq
        self._observe_new_ops(self._reader)
        if self._seen_seq - start > _CHECKPOINT_AFTER:
            checkpoint = f"{self._seen_seq} {self.clock.last.encode()}"
            with contextlib.suppress(apsw.Error), self._writer:
                self._writer.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('clock_checkpoint', ?)", (checkpoint,)
                )

    def _observe_new_ops(self, conn: apsw.Connection) -> None:
        """Fold into the clock every operation logged since we last looked, by us or by another process
        on the same file (the CLI beside the TUI): the next local clock value is then later than all of
        them, so two processes never issue the same HLC and a fresh edit never loses to an older one."""
        row = conn.execute("SELECT max(hlc), max(seq) FROM ops WHERE seq > ?", (self._seen_seq,)).fetchone()
        if row and row[1] is not None:
            self.clock.observe(Hlc.decode(str(row[0])))
            self._seen_seq = int(row[1])

    def close(self) -> None:
        with self._lock:
            self._reader.close()
            self._writer.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A `BEGIN IMMEDIATE` write transaction; committed on success, rolled back on any error."""
        with self._lock, database.translate_errors(self.path):
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                self._observe_new_ops(self._writer)  # a range scan over the rowid: usually empty
                tx = Transaction(self, self._writer)
                yield tx
            except BaseException:
                # SQLite may already have rolled back by itself (an I/O error, a full disk); a second
                # ROLLBACK would then raise and hide the error that matters.
                if self._writer.in_transaction:
                    self._writer.execute("ROLLBACK")
                raise
            self._writer.execute("COMMIT")
        hook = self.on_local_change
        if hook is not None and tx.changed_locally:
            hook()

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        """Rows from the read connection (never blocked by the writer in WAL mode)."""
        with database.translate_errors(self.path):
            return [tuple(row) for row in self._reader.execute(sql, params)]

    def load(self, kind: EntityKind, entity_id: str) -> EntityState | None:
        return self._load(self._reader, kind, entity_id)

    def _load(self, conn: apsw.Connection, kind: EntityKind, entity_id: str) -> EntityState | None:
        row = conn.execute(
            f"SELECT {', '.join(COLUMNS[kind])} FROM {TABLES[kind]} WHERE id = ?", (entity_id,)
        ).fetchone()
        return state_from_row(kind, row) if row else None

    def pending_ops(self) -> int:
        row = self.query(
            "SELECT count(*) FROM ops WHERE from_node = 0 AND seq > "
            "(SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'pushed_through')"
        )
        return int(row[0][0])

    def operations(self) -> list[Operation]:
        """The whole log, in local order of arrival."""
        rows = self.query("SELECT op_id, device_id, hlc, entity, entity_id, fields FROM ops ORDER BY seq")
        return [
            Operation(
                op_id=r[0], device_id=r[1], hlc=r[2], entity=r[3], entity_id=r[4], fields=json.loads(r[5])
            )
            for r in rows
        ]

    def integrity_check(self) -> None:
        """Read the whole file and raise CorruptDatabaseError if any of it is damaged (slow on big files)."""
        database.quick_check(self._reader, self.path)

    def info(self) -> database.DatabaseInfo:
        with database.translate_errors(self.path):
            return database.describe(self._reader)
