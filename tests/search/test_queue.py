"""The queue the triggers fill is in the database: it survives a killed process, an upgrade queues what
was there before search, and `rebuild` starts over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import apsw

from aurora.app.config import Settings
from aurora.app.ingest.pipeline import Importer
from aurora.app.search import Indexer, keyword_search
from aurora.app.store import Store
from aurora.app.workspace import Workspace
from aurora.schema.migrate import load_migrations, migrate

_WRITE_THEN_DIE = """
import os, signal, sys
from pathlib import Path
from aurora.app.config import Settings
from aurora.app.workspace import Workspace
path = Path(sys.argv[1])
ws = Workspace.open(Settings(data_dir=path.parent, workspace=str(path), device_name="killed"))
ws.tasks.add("Renew the lease for the Harbour Street office")
ws.notes.add("Harbour Street: the landlord's number is on the lease")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_queued_writes_survive_a_kill_and_are_indexed_later(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    proc = subprocess.run([sys.executable, "-c", _WRITE_THEN_DIE, str(path)], env=os.environ.copy(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    store = Store.open(path)
    try:
        indexer = Indexer(store)
        assert indexer.status().queued == 2 and indexer.status().chunks == 0
        assert indexer.drain() == 2
        hits = keyword_search(store, "harbour lease")
        assert {h.kind for h in hits} == {"task", "note"}
        assert indexer.status().queued == 0 and indexer.drain() == 0
    finally:
        store.close()


def test_a_store_closed_without_draining_keeps_its_queue(settings: Settings) -> None:
    ws = Workspace.open(settings)
    task = ws.tasks.add("Ship the prototype")
    ws.close()
    ws = Workspace.open(settings)
    try:
        assert Indexer(ws.store).drain() == 1
        assert [h.entity_id for h in keyword_search(ws.store, "prototype")] == [task.id]
    finally:
        ws.close()


def _v2_with_rows(path: Path) -> None:
    conn = apsw.Connection(str(path))
    migrate(conn, lambda: conn, load_migrations()[:2])
    clocks = "{}"
    conn.execute("INSERT INTO tasks (id, title, field_clocks) VALUES ('t1', 'Old task about kayaks', ?)",
                 (clocks,))  # fmt: skip
    conn.execute("INSERT INTO tasks (id, title, deleted, field_clocks) VALUES ('t2', 'Deleted kayak', 1, ?)",
                 (clocks,))  # fmt: skip
    conn.execute(
        "INSERT INTO notes (id, body, field_clocks) VALUES ('n1', 'Kayak club meets Sundays', ?)", (clocks,)
    )
    conn.execute(
        "INSERT INTO items (id, kind, source, external_id, title, body, occurred_at, field_clocks) "
        "VALUES ('i1', 'mail', 'mbox', 'x@y', 'Kayak rental receipt', 'Paid', ?, ?)",
        ("2025-05-01T10:00:00+00:00", clocks),
    )
    conn.execute("INSERT INTO people (id, name, emails, field_clocks) VALUES ('p1', 'Kay Akerman', ?, ?)",
                 (json.dumps(["kay@example.org"]), clocks))  # fmt: skip
    conn.close()


def test_upgrading_a_version_2_workspace_queues_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _v2_with_rows(path)
    store = Store.open(path)
    try:
        queued = set(store.query("SELECT kind, entity_id FROM search_queue"))
        assert queued == {("task", "t1"), ("note", "n1"), ("item", "i1"), ("person", "p1")}
        Indexer(store).drain_all()
        assert {(h.kind, h.entity_id) for h in keyword_search(store, "kayak")} == {
            ("task", "t1"),
            ("note", "n1"),
            ("item", "i1"),
        }
        assert [h.entity_id for h in keyword_search(store, "kay@example.org")] == ["p1"]
        (hit,) = keyword_search(store, "rental", since=None)
        assert hit.occurred_at == "2025-05-01T10:00:00+00:00" and hit.source == "mbox"
    finally:
        store.close()


def test_rebuild_requeues_everything_and_repairs_the_index(workspace: Workspace, real_data: Path) -> None:
    Importer(workspace).run([real_data / "email" / "tika"])
    workspace.tasks.add("Read the TIKA-461 thread")
    indexer = Indexer(workspace.store)
    first = indexer.drain_all()
    before = workspace.store.query("SELECT id, kind, entity_id, ord, text FROM chunks ORDER BY id")
    hits = [(h.entity_id, h.snippet) for h in keyword_search(workspace.store, "tika")]
    assert len(hits) >= 2
    # Lose some derived data: rebuild must make it again, the same.
    with workspace.store.transaction() as tx:
        tx.execute("DELETE FROM chunks WHERE id = (SELECT min(id) FROM chunks)")
    assert indexer.rebuild() == first
    assert indexer.drain_all() == first
    after = workspace.store.query(
        "SELECT kind, entity_id, ord, text FROM chunks ORDER BY kind, entity_id, ord"
    )
    assert sorted(r[1:] for r in before) == after
    assert [(h.entity_id, h.snippet) for h in keyword_search(workspace.store, "tika")] == hits
    with workspace.store.transaction() as tx:  # raises if the FTS index and `chunks` disagree
        tx.execute("INSERT INTO chunks_fts (chunks_fts, rank) VALUES ('integrity-check', 1)")
