"""Keeps `chunks` (and through its triggers the FTS5 index) in step with the entities.

Triggers put every written task, note, item and person in `search_queue`, in the writer's own
transaction (migration 0003). `Indexer.drain` takes entities off that queue and rewrites their chunks in
one `BEGIN IMMEDIATE` transaction: reading the rows, writing the chunks and removing the queue rows
commit together, so a process killed mid-way loses nothing, and a write made after the drain queues the
entity again.

A chunk whose text is unchanged keeps its id and its `embedded_model`, so editing a task's tags does not
make the embedding worker embed its unchanged passages again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aurora.app.search import chunking
from aurora.app.store import Store
from aurora.app.store.store import Transaction


@dataclass(frozen=True)
class IndexStatus:
    chunks: int
    queued: int
    """Entities written since they were last indexed."""
    unembedded: int
    """Chunks the embedding worker has still to embed (`chunks.embedded_model IS NULL`)."""


class Indexer:
    def __init__(self, store: Store) -> None:
        self._store = store

    def drain(self, limit: int = 500) -> int:
        """Index up to `limit` queued entities; returns how many were taken off the queue (0: up to date).

        Holds the write lock for the batch: a background worker calls it with a small `limit` in a loop.
        """
        with self._store.transaction() as tx:
            queued = tx.query("SELECT kind, entity_id FROM search_queue LIMIT ?", (max(0, limit),))
            for kind, entity_id in queued:
                self._index(tx, str(kind), str(entity_id))
                tx.execute("DELETE FROM search_queue WHERE kind = ? AND entity_id = ?", (kind, entity_id))
        return len(queued)

    def drain_all(self, batch: int = 500) -> int:
        """Drain until the queue is empty; returns how many entities were indexed."""
        total = 0
        while done := self.drain(batch):
            total += done
        return total

    def status(self) -> IndexStatus:
        rows = self._store.query(
            "SELECT (SELECT count(*) FROM chunks), (SELECT count(*) FROM search_queue), "
            "(SELECT count(*) FROM chunks WHERE embedded_model IS NULL)"
        )
        chunks, queued, unembedded = rows[0]
        return IndexStatus(int(chunks), int(queued), int(unembedded))

    def rebuild(self) -> int:
        """Queue every entity (and every chunk's entity) again and rebuild the FTS5 index from `chunks`;
        returns how many entities are queued. The next drains re-chunk them; vectors of unchanged chunks
        are kept."""
        with self._store.transaction() as tx:
            for kind, table in chunking.TABLES.items():
                tx.execute(
                    f"INSERT OR IGNORE INTO search_queue (kind, entity_id) SELECT ?, id FROM {table}", (kind,)
                )
            tx.execute(
                "INSERT OR IGNORE INTO search_queue (kind, entity_id) SELECT kind, entity_id FROM chunks"
            )
            tx.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('rebuild')")
            return int(tx.query("SELECT count(*) FROM search_queue")[0][0])

    # ------------------------------------------------------------------------------------------------------

    def _index(self, tx: Transaction, kind: str, entity_id: str) -> None:
        texts: list[str] = []
        occurred_at: str | None = None
        source: str | None = None
        table = chunking.TABLES.get(kind)
        if table is not None:
            columns = chunking.SEARCHED_COLUMNS[kind]
            rows = tx.query(f"SELECT {', '.join(columns)} FROM {table} WHERE id = ?", (entity_id,))
            if rows:
                row: dict[str, Any] = dict(zip(columns, rows[0], strict=True))
                doc = chunking.document(kind, row)
                if doc is not None:
                    texts = chunking.chunk_text(doc.text)
                    occurred_at, source = doc.occurred_at, doc.source
        old = {
            int(ord_): (int(chunk_id), str(text), at, src)
            for chunk_id, ord_, text, at, src in tx.query(
                "SELECT id, ord, text, occurred_at, source FROM chunks WHERE kind = ? AND entity_id = ?",
                (kind, entity_id),
            )
        }
        for ord_, text in enumerate(texts):
            if ord_ not in old:
                tx.execute(
                    "INSERT INTO chunks (kind, entity_id, ord, text, occurred_at, source) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (kind, entity_id, ord_, text, occurred_at, source),
                )
                continue
            chunk_id, old_text, old_at, old_source = old[ord_]
            if old_text != text:
                tx.execute(
                    "UPDATE chunks SET text = ?, occurred_at = ?, source = ?, embedded_model = NULL "
                    "WHERE id = ?",
                    (text, occurred_at, source, chunk_id),
                )
            elif (old_at, old_source) != (occurred_at, source):
                tx.execute(
                    "UPDATE chunks SET occurred_at = ?, source = ? WHERE id = ?",
                    (occurred_at, source, chunk_id),
                )
        if any(ord_ >= len(texts) for ord_ in old):
            tx.execute(
                "DELETE FROM chunks WHERE kind = ? AND entity_id = ? AND ord >= ?",
                (kind, entity_id, len(texts)),
            )
