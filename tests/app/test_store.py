"""The store on real SQLite files: pragmas, migrations, the outbox, and refusing what it must refuse."""

from __future__ import annotations

import json
from pathlib import Path

import apsw
import pytest

from aurora.app.errors import CorruptDatabaseError, NewerDatabaseError
from aurora.app.store import Store
from aurora.app.workspace import Workspace
from aurora.schema.migrate import Migration, latest_version, load_migrations, migrate


def test_new_workspace_is_wal_full_sync_with_foreign_keys(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "w.db")
    try:
        conn = store._writer
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("SELECT vec_version()").fetchone()[0].startswith("v")
        assert store.vec_version is not None and store.vec_version.startswith("v")
        assert store.fts5
        versions = store.query("SELECT version FROM schema_migrations ORDER BY version")
        assert [v for (v,) in versions] == list(range(1, latest_version() + 1))
    finally:
        store.close()


def test_every_change_writes_its_operation_in_the_same_transaction(workspace: Workspace) -> None:
    task = workspace.tasks.add_quick("Call Dana tomorrow 3pm !urgent #sales")
    workspace.tasks.toggle_done(task.id)
    ops = workspace.store.operations()
    assert [op.entity_id for op in ops] == [task.id, task.id]
    assert ops[0].fields["title"] == "Call Dana" and ops[0].fields["tags"] == ["sales"]
    assert ops[1].fields["status"] == "done"
    assert ops[0].clock < ops[1].clock
    assert len({op.op_id for op in ops}) == 2
    assert workspace.store.pending_ops() == 2


def test_a_failed_transaction_leaves_neither_row_nor_operation(workspace: Workspace) -> None:
    with pytest.raises(RuntimeError), workspace.store.transaction() as tx:
        tx.change("task", "abc", {"title": "half-done", "created_at": "2026-01-01T00:00:00+00:00"})
        raise RuntimeError("crash between the row and the commit")
    assert workspace.store.query("SELECT count(*) FROM tasks")[0][0] == 0
    assert workspace.store.operations() == []


def test_device_id_and_clock_survive_reopening(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ws = Workspace.open(settings)
    ws.tasks.add_quick("first")
    device, last = ws.store.device_id, ws.store.clock.last
    ws.close()
    ws = Workspace.open(settings)
    try:
        assert ws.store.device_id == device
        ws.tasks.add_quick("second")
        assert ws.store.clock.last > last
    finally:
        ws.close()


def test_migrations_run_from_empty_and_are_recorded_once(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    Store.open(path).close()
    Store.open(path).close()
    conn = apsw.Connection(str(path))
    rows = conn.execute("SELECT version, name FROM schema_migrations").fetchall()
    assert [r[0] for r in rows] == [m.version for m in load_migrations()]


def test_migrating_from_each_earlier_version(tmp_path: Path) -> None:
    """A database left at any earlier version (with data in it) is brought up to date, data intact."""
    migrations = load_migrations()
    for stop in range(1, len(migrations) + 1):
        path = tmp_path / f"v{stop}.db"
        conn = apsw.Connection(str(path))

        def tx(conn: apsw.Connection = conn) -> apsw.Connection:
            return conn

        migrate(conn, tx, migrations[:stop])
        conn.execute("INSERT INTO notes (id, body, field_clocks) VALUES ('n1', 'kept', '{}')")
        conn.close()
        store = Store.open(path)
        try:
            assert store.query("SELECT max(version) FROM schema_migrations")[0][0] == len(migrations)
            assert store.query("SELECT body FROM notes WHERE id = 'n1'") == [("kept",)]
        finally:
            store.close()


def test_a_migration_that_fails_is_rolled_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    Store.open(path).close()
    broken = [*load_migrations(), Migration(latest_version() + 1, "broken", "CREATE TABLE x (a);\nNOT SQL;")]
    conn = apsw.Connection(str(path))

    class Tx:
        def __enter__(self) -> None:
            conn.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: object, *_: object) -> None:
            conn.execute("ROLLBACK" if exc_type else "COMMIT")

    with pytest.raises(apsw.SQLError):
        migrate(conn, Tx, broken)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'x'").fetchone()[0] == 0
    assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == latest_version()


def test_database_from_a_newer_aurora_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    Store.open(path).close()
    conn = apsw.Connection(str(path))
    conn.execute("INSERT INTO schema_migrations VALUES (999, 'from_the_future', 'later')")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(NewerDatabaseError, match="upgrade Aurora"):
        Store.open(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_database_is_refused_with_advice(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "broken.db"
    if damage == "garbage":
        path.write_bytes(b"this is not a database\n" * 100)
    else:
        ws_path = tmp_path / "real.db"
        store = Store.open(ws_path)
        with store.transaction() as tx:
            for i in range(300):
                tx.change("note", f"n{i}", {"body": "x" * 500, "created_at": "2026-01-01T00:00:00+00:00"})
        store._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        data = ws_path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    before = path.read_bytes()
    with pytest.raises(CorruptDatabaseError, match="restore it"):
        Store.open(path)
    assert path.read_bytes() == before


def test_operation_fields_are_stored_as_json(workspace: Workspace) -> None:
    note = workspace.notes.add("Buy milk", tags=["home"])
    raw = workspace.store.query("SELECT fields FROM ops WHERE entity_id = ?", (note.id,))
    assert json.loads(raw[0][0])["tags"] == ["home"]


def test_clock_starts_past_every_logged_operation_using_a_checkpoint(tmp_path: Path) -> None:
    import time

    from aurora.sync import Hlc, Operation, new_id

    path = tmp_path / "clock.db"
    store = Store.open(path)
    with store.transaction() as tx:
        for i in range(1200):
            tx.change("note", f"n{i}", {"body": f"note {i}", "created_at": "2026-01-01T00:00:00+00:00"})
    store.close()
    store = Store.open(path)  # reads the 1,200 operations once and leaves a checkpoint
    assert store.query("SELECT value FROM meta WHERE key = 'clock_checkpoint'")
    ahead = Hlc(time.time_ns() // 1_000_000 + 60_000, 7, "elsewhere")
    with store.transaction() as tx:
        tx.apply(
            Operation(
                op_id=new_id(),
                device_id="elsewhere",
                hlc=ahead.encode(),
                entity="note",
                entity_id="n1",
                fields={"body": "from a fast clock"},
            )
        )
    store.close()
    store = Store.open(path)
    try:
        assert (store.clock.last.wall_ms, store.clock.last.counter) >= (ahead.wall_ms, ahead.counter)
        with store.transaction() as tx:
            tx.change("note", "n1", {"body": "mine, made later"})
        assert store.load("note", "n1").values["body"] == "mine, made later"  # type: ignore[union-attr]
    finally:
        store.close()
