"""The embedding queue: chunks not yet embedded by the current model get their vectors, a batch at a time.

The queue is the `chunks` table itself: a chunk needs embedding while `embedded_model` is NULL (new, or its
text changed) or names another model (the model setting changed, so everything is embedded again, with no
step of its own). `EmbedWorker.run_once` reads a batch, encodes it with no lock held (the slow part), then
in one short write transaction stores the vectors and marks the chunks, skipping any whose text changed
meanwhile (they are embedded again from the new text by a later batch). A process killed at any moment
loses at most the batch it was encoding; the next one starts where it stopped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from aurora.app.search.vectors import LOG_KEEP, ChunkMeta, VectorIndex, to_blob
from aurora.app.store import Store
from aurora.app.store.store import Transaction

if TYPE_CHECKING:
    from aurora.app.embed import Embedder

BATCH = 64
WINDOW = 8
"""A batch is chosen among this many batches' worth of waiting chunks (`_claim`)."""


class EmbedWorker:
    """Embeds what needs it, batch by batch; run `run_once` in a loop on a background thread."""

    def __init__(self, store: Store, embedder: Embedder, index: VectorIndex | None = None) -> None:
        if index is not None and index.model != embedder.name:
            raise ValueError(f"the index holds {index.model!r} vectors, the embedder makes {embedder.name!r}")
        self._store = store
        self._embedder = embedder
        self._index = index

    @property
    def model(self) -> str:
        return self._embedder.name

    def _claim(self, batch: int) -> list[tuple[int, str]]:
        """Up to `batch` chunks to embed: of the next `batch * WINDOW` waiting (unembedded ones first, then
        another model's), the shortest. A batch is padded to its longest text, so texts of like length
        batched together encode faster (as a bare `encode` of a whole list sorts it); the longer ones wait
        for a later batch, with their like."""
        window = batch * WINDOW
        rows = self._store.query(
            "SELECT id, text FROM chunks WHERE embedded_model IS NULL ORDER BY id LIMIT ?", (window,)
        )
        if len(rows) < window:
            rows += self._store.query(
                "SELECT id, text FROM chunks WHERE embedded_model < ?1 OR embedded_model > ?1 "
                "ORDER BY id LIMIT ?2",
                (self.model, window - len(rows)),
            )
        rows.sort(key=lambda r: (len(r[1]), r[0]))
        return [(int(chunk_id), str(text)) for chunk_id, text in rows[:batch]]

    def run_once(self, batch: int = BATCH) -> int:
        """Embed up to `batch` chunks; returns how many were claimed (0: nothing left to do)."""
        claimed = self._claim(max(1, batch))
        if not claimed:
            return 0
        vectors = self._embedder.encode([text for _, text in claimed], batch_size=max(1, batch))
        model = self.model
        ids: list[int] = []
        metas: list[ChunkMeta] = []
        keep: list[int] = []
        with self._store.transaction() as tx:
            (before,) = tx.query("SELECT coalesce(max(seq), 0) FROM vector_log")[0]
            marks = ", ".join("?" * len(claimed))
            current = {
                int(r[0]): r
                for r in tx.query(
                    "SELECT c.id, c.text, c.kind, c.entity_id, c.occurred_at, c.source, i.kind "
                    "FROM chunks AS c "
                    "LEFT JOIN items AS i ON c.kind = 'item' AND i.id = c.entity_id "
                    f"WHERE c.id IN ({marks})",
                    [chunk_id for chunk_id, _ in claimed],
                )
            }
            for n, (chunk_id, text) in enumerate(claimed):
                row = current.get(chunk_id)
                if row is None or row[1] != text:
                    continue  # deleted, or changed since it was read: a later batch embeds the new text
                tx.execute(
                    "INSERT INTO chunk_vectors (chunk_id, model, vector) VALUES (?, ?, ?) "
                    "ON CONFLICT (chunk_id) DO UPDATE SET model = excluded.model, vector = excluded.vector",
                    (chunk_id, model, to_blob(vectors[n])),
                )
                tx.execute("UPDATE chunks SET embedded_model = ? WHERE id = ?", (model, chunk_id))
                ids.append(chunk_id)
                metas.append(ChunkMeta.from_row(row[2:7]))
                keep.append(n)
            (after,) = tx.query("SELECT coalesce(max(seq), 0) FROM vector_log")[0]
            self._trim(tx, int(after))
        if self._index is not None:
            self._index.applied(
                int(before), int(after), ids, metas, vectors[np.asarray(keep, dtype=np.int64)]
            )
        return len(claimed)

    @staticmethod
    def _trim(tx: Transaction, head: int) -> None:
        """Drop old `vector_log` entries, now and then (keeping at least the newest)."""
        rows = tx.query("SELECT value FROM meta WHERE key = 'vector_log_trimmed'")
        trimmed = int(rows[0][0]) if rows else 0
        cut = head - LOG_KEEP
        if cut > trimmed + LOG_KEEP // 2:
            tx.execute("DELETE FROM vector_log WHERE seq <= ?", (cut,))
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('vector_log_trimmed', ?)", (str(cut),)
            )

    def run_all(self, batch: int = BATCH) -> int:
        """Embed until nothing is left; returns how many chunks were claimed."""
        total = 0
        while done := self.run_once(batch):
            total += done
        return total

    def progress(self) -> tuple[int, int]:
        """(chunks embedded by the current model, all chunks)."""
        embedded, total = self._store.query(
            "SELECT (SELECT count(*) FROM chunks WHERE embedded_model = ?), (SELECT count(*) FROM chunks)",
            (self.model,),
        )[0]
        return int(embedded), int(total)
