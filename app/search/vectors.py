"""The vector half of search: an in-memory matrix of chunk embeddings, kept in step with SQLite.

SQLite is the source of truth (`chunk_vectors`, migration 0004). `VectorIndex` loads the vectors of one
model into a float32 matrix (n, dim) at first use, with parallel arrays of what the filters need (chunk id,
kind, entity, time, source), and then follows `vector_log`: every vector written or removed (by the
embedding worker, by a chunk's deletion or new text, in this process or another) is replayed in place, a
row appended, replaced or removed (the last row moves into the hole), so the matrix is never reloaded
whole unless the log was trimmed past it. The embedding worker hands over what it just wrote
(`applied`), so its own writes cost no read-back.

A query (`search`) is one scan of the matrix, or, once it holds more than `EXACT_BELOW` rows, a scan of a
one-bit-per-dimension copy (`dim / 8` bytes a row, 1/32 of the floats: popcount of XOR, Hamming distance)
that keeps the `RERANK` nearest, then the exact cosine of those few rows: the float matrix is read only
where it matters, which beats reading all of it (the scan is bound by memory bandwidth). Filters are boolean
masks over the parallel arrays; the chunks that come out are then checked against `Filters.where` in SQL,
the same condition the keyword half uses, so both halves filter alike and nothing stale is ever returned.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from aurora.app.search.keyword import ITEM_KINDS, Filters, Hit
from aurora.app.store import Store

if TYPE_CHECKING:
    from aurora.app.embed import Embedder

EXACT_BELOW = 20_000
"""Up to this many candidate rows, a query scans the float matrix itself (about 1.5 ms at 20,000)."""
RERANK = 1_000
"""Rows the one-bit scan keeps for the exact re-rank (per query: at least 5 per chunk asked for)."""
RECENTRE_GROWTH = 2.0
"""The bit codes are signs around the mean vector; when the index has grown by this factor since the mean
was taken, the mean and every code are computed again (amortised: about 50 ms at 100,000 rows)."""
LOG_KEEP = 20_000
"""`vector_log` entries kept when the worker trims it; an index further behind reloads in full."""

KIND_CODES: dict[str, int] = {
    "task": 0,
    "note": 1,
    "person": 2,
    "item": 3,
    **{kind: 4 + n for n, kind in enumerate(sorted(ITEM_KINDS))},
}
"""Each row's kind in the `kinds` array: an item is coded by its item kind (mail, event...) where known."""
_ITEM_CODES = [code for kind, code in KIND_CODES.items() if kind == "item" or kind in ITEM_KINDS]

_META_SQL = (
    "SELECT c.id, c.kind, c.entity_id, c.occurred_at, c.source, i.kind "
    "FROM chunks AS c LEFT JOIN items AS i ON c.kind = 'item' AND i.id = c.entity_id"
)


@dataclass(frozen=True)
class ChunkMeta:
    """What the filters need of one chunk."""

    kind: str
    entity_id: str
    occurred_at: str | None
    source: str | None
    item_kind: str | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> ChunkMeta:
        """From the columns kind, entity_id, occurred_at, source, item kind (`_META_SQL` after the id)."""
        return cls(str(row[0]), str(row[1]), row[2], row[3], row[4])


def _epoch(stamp: str | None) -> float:
    """Seconds since 1970 of an ISO-8601 time (a naive one is UTC); NaN for none."""
    if not stamp:
        return math.nan
    try:
        value = datetime.fromisoformat(stamp)
    except ValueError:
        return math.nan
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def to_blob(vector: NDArray[np.float32]) -> bytes:
    """A vector as `chunk_vectors.vector` stores it: float32, little-endian."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


class VectorIndex:
    """The vectors of `model` for every embedded chunk, in memory; thread-safe (one lock)."""

    def __init__(self, store: Store, model: str, dim: int = 384) -> None:
        self._store = store
        self.model = model
        self.dim = dim
        self._words = (dim + 63) // 64
        self._lock = threading.RLock()
        self._loaded = False
        self._seq = 0
        self._reset(0)

    # State ------------------------------------------------------------------------------------------------

    def _reset(self, capacity: int) -> None:
        cap = max(1024, capacity)
        self._n = 0
        self._matrix = np.zeros((cap, self.dim), dtype=np.float32)
        self._codes = np.zeros((self._words, cap), dtype=np.uint64)
        self._ids = np.zeros(cap, dtype=np.int64)
        self._kinds = np.zeros(cap, dtype=np.int8)
        self._entities = np.zeros(cap, dtype=np.int32)
        self._times = np.full(cap, math.nan, dtype=np.float64)
        self._sources = np.full(cap, -1, dtype=np.int32)
        self._row_of: dict[int, int] = {}
        self._entity_codes: dict[tuple[str, str], int] = {}
        self._source_codes: dict[str, int] = {}
        self._centre = np.zeros(self.dim, dtype=np.float32)
        self._centred_at = 0

    def _grow(self, needed: int) -> None:
        cap = len(self._ids)
        if needed <= cap:
            return
        new = max(needed, int(cap * 1.5))

        def wider(a: NDArray[Any], fill: float = 0) -> NDArray[Any]:
            shape = (new, *a.shape[1:])
            out = np.full(shape, fill, dtype=a.dtype)
            out[:cap] = a
            return out

        self._matrix = wider(self._matrix)
        codes = np.zeros((self._words, new), dtype=np.uint64)
        codes[:, :cap] = self._codes
        self._codes = codes
        self._ids = wider(self._ids)
        self._kinds = wider(self._kinds)
        self._entities = wider(self._entities)
        self._times = wider(self._times, math.nan)
        self._sources = wider(self._sources, -1)

    def _code(self, vectors: NDArray[np.float32]) -> NDArray[np.uint64]:
        """One bit per dimension (above the centre or not), packed: shape (words, len(vectors))."""
        bits = np.packbits(vectors > self._centre, axis=1)
        pad = self._words * 8 - bits.shape[1]
        if pad:
            bits = np.pad(bits, ((0, 0), (0, pad)))
        return np.ascontiguousarray(bits).view(np.uint64).T

    def _recentre(self) -> None:
        n = self._n
        self._centre = (
            self._matrix[:n].mean(axis=0).astype(np.float32) if n else np.zeros(self.dim, np.float32)
        )
        for start in range(0, n, 16_384):
            stop = min(n, start + 16_384)
            self._codes[:, start:stop] = self._code(self._matrix[start:stop])
        self._centred_at = n

    def _put(
        self, chunk_ids: Sequence[int], metas: Sequence[ChunkMeta], vectors: NDArray[np.float32]
    ) -> None:
        """Append or replace rows (lock held)."""
        rows: list[int] = []
        for chunk_id in chunk_ids:
            row = self._row_of.get(chunk_id)
            if row is None:
                self._grow(self._n + 1)
                row = self._n
                self._n += 1
                self._row_of[chunk_id] = row
            rows.append(row)
        if not rows:
            return
        at = np.asarray(rows, dtype=np.int64)
        self._matrix[at] = vectors
        self._codes[:, at] = self._code(vectors)
        self._ids[at] = np.asarray(chunk_ids, dtype=np.int64)
        for row, meta in zip(rows, metas, strict=True):
            kind = meta.item_kind if meta.kind == "item" and meta.item_kind in ITEM_KINDS else meta.kind
            self._kinds[row] = KIND_CODES.get(kind or "", KIND_CODES["item"])
            key = (meta.kind, meta.entity_id)
            self._entities[row] = self._entity_codes.setdefault(key, len(self._entity_codes))
            self._times[row] = _epoch(meta.occurred_at)
            self._sources[row] = (
                self._source_codes.setdefault(meta.source, len(self._source_codes)) if meta.source else -1
            )
        if self._n >= 1000 and self._n >= self._centred_at * RECENTRE_GROWTH:
            self._recentre()

    def _remove(self, chunk_ids: Sequence[int]) -> None:
        """Remove rows (lock held): the last row moves into each hole."""
        for chunk_id in chunk_ids:
            row = self._row_of.pop(chunk_id, None)
            if row is None:
                continue
            last = self._n - 1
            if row != last:
                self._matrix[row] = self._matrix[last]
                self._codes[:, row] = self._codes[:, last]
                for a in (self._ids, self._kinds, self._entities, self._times, self._sources):
                    a[row] = a[last]
                self._row_of[int(self._ids[row])] = row
            self._n = last

    # Loading and following the log ------------------------------------------------------------------------

    def _fetch(
        self, chunk_ids: Sequence[int] | None
    ) -> tuple[list[int], list[ChunkMeta], NDArray[np.float32]]:
        """The vectors of this model (of `chunk_ids`, or all) with their chunks' filter columns."""
        sql = (
            "SELECT v.chunk_id, c.kind, c.entity_id, c.occurred_at, c.source, i.kind, v.vector "
            "FROM chunk_vectors AS v JOIN chunks AS c ON c.id = v.chunk_id "
            "LEFT JOIN items AS i ON c.kind = 'item' AND i.id = c.entity_id WHERE v.model = ?"
        )
        rows: list[tuple[Any, ...]] = []
        if chunk_ids is None:
            rows = self._store.query(sql, (self.model,))
        else:
            for start in range(0, len(chunk_ids), 500):
                part = list(chunk_ids[start : start + 500])
                marks = ", ".join("?" * len(part))
                rows += self._store.query(f"{sql} AND v.chunk_id IN ({marks})", (self.model, *part))
        size = self.dim * 4
        rows = [r for r in rows if isinstance(r[6], bytes) and len(r[6]) == size]
        vectors = np.frombuffer(b"".join(r[6] for r in rows), dtype="<f4").astype(np.float32)
        return (
            [int(r[0]) for r in rows],
            [ChunkMeta.from_row(r[1:6]) for r in rows],
            vectors.reshape(len(rows), self.dim),
        )

    def _head(self) -> int:
        return int(self._store.query("SELECT coalesce(max(seq), 0) FROM vector_log")[0][0])

    def load(self) -> None:
        """(Re)load every vector of this model from SQLite."""
        with self._lock:
            head = self._head()  # read first: whatever is written after it is replayed from the log
            ids, metas, vectors = self._fetch(None)
            self._reset(int(len(ids) * 1.25))
            self._put(ids, metas, vectors)
            self._recentre()
            self._seq = head
            self._loaded = True

    def sync(self) -> None:
        """Replay what `vector_log` holds past what this index has seen (loading at first use)."""
        with self._lock:
            if not self._loaded:
                self.load()
                return
            log = self._store.query(
                "SELECT seq, chunk_id FROM vector_log WHERE seq > ? ORDER BY seq", (self._seq,)
            )
            if not log:
                return
            trimmed = self._store.query("SELECT value FROM meta WHERE key = 'vector_log_trimmed'")
            if trimmed and int(trimmed[0][0]) > self._seq:
                self.load()
                return
            changed = list(dict.fromkeys(int(chunk_id) for _, chunk_id in log))
            ids, metas, vectors = self._fetch(changed)
            self._remove(sorted(set(changed) - set(ids)))
            self._put(ids, metas, vectors)
            self._seq = int(log[-1][0])

    def applied(
        self,
        after_seq: int,
        through_seq: int,
        chunk_ids: Sequence[int],
        metas: Sequence[ChunkMeta],
        vectors: NDArray[np.float32],
    ) -> None:
        """The embedding worker wrote these vectors, logged as `after_seq` < seq <= `through_seq` in one
        transaction: put them in place without reading them back (or replay the log, if this index had
        not seen everything before them)."""
        with self._lock:
            if not self._loaded:
                return  # the first search loads everything, these included
            if self._seq != after_seq:
                self.sync()
                return
            self._put(chunk_ids, metas, vectors)
            self._seq = through_seq

    # Reading ----------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Rows held (loading at first use, and following the log)."""
        with self._lock:
            self.sync()
            return self._n

    def chunk_ids(self) -> NDArray[np.int64]:
        """The chunk ids held, in row order (a copy)."""
        with self._lock:
            self.sync()
            return self._ids[: self._n].copy()

    def vectors(self) -> NDArray[np.float32]:
        """The matrix, a copy (n, dim)."""
        with self._lock:
            self.sync()
            return self._matrix[: self._n].copy()

    def _mask(self, flt: Filters, person_items: set[str] | None) -> NDArray[np.bool_] | None:
        """Rows the filters admit (lock held); None for all. `Filters.where` decides in the end."""
        n = self._n
        mask: NDArray[np.bool_] | None = None

        def both(more: NDArray[np.bool_]) -> None:
            nonlocal mask
            mask = more if mask is None else mask & more

        if flt.kinds:
            codes: set[int] = set()
            for kind in flt.kinds:
                codes.update(_ITEM_CODES if kind == "item" else [KIND_CODES[kind]])
            both(np.isin(self._kinds[:n], np.fromiter(codes, dtype=np.int8)))
        if flt.source is not None:
            code = self._source_codes.get(flt.source, -2)
            both(self._sources[:n] == code)
        if person_items is not None:
            wanted = [
                self._entity_codes[k] for k in (("item", i) for i in person_items) if k in self._entity_codes
            ]
            both(np.isin(self._entities[:n], np.asarray(wanted, dtype=np.int32)))
        if flt.since is not None:
            both(self._times[:n] >= _epoch(flt.since))
        if flt.until is not None:
            both(self._times[:n] < _epoch(flt.until))
        return mask

    def search(
        self, query: NDArray[np.float32], k: int, flt: Filters | None = None
    ) -> list[tuple[int, float]]:
        """The `k` chunks nearest `query` (a normalised vector) among those the filters admit: (chunk id,
        cosine), best first."""
        flt = flt or Filters()
        person_items: set[str] | None = None
        if flt.person_id is not None:
            person_items = {
                str(r[0])
                for r in self._store.query(
                    "SELECT item_id FROM interactions WHERE person_id = ? AND deleted = 0", (flt.person_id,)
                )
            }
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(self.dim)
        with self._lock:
            self.sync()
            n = self._n
            if n == 0 or k <= 0:
                return []
            mask = self._mask(flt, person_items)
            matrix = self._matrix[:n]
            pool = max(RERANK, 5 * k)
            rows: NDArray[np.int64] | None
            if mask is not None and (admitted := int(np.count_nonzero(mask))) <= max(pool, n // 8):
                if admitted == 0:
                    return []
                rows = np.flatnonzero(mask)
                scores = matrix[rows] @ q
            elif n <= EXACT_BELOW:
                rows = None
                scores = matrix @ q
                if mask is not None:
                    scores[~mask] = -np.inf
            else:
                rows = self._nearest_codes(q, n, pool, mask)
                scores = matrix[rows] @ q
            k = min(k, len(scores))
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            top = top[np.argsort(-scores[top], kind="stable")]
            top = top[np.isfinite(scores[top])]
            picked = top if rows is None else rows[top]
            return [(int(c), float(s)) for c, s in zip(self._ids[picked], scores[top], strict=True)]

    def _nearest_codes(
        self, q: NDArray[np.float32], n: int, pool: int, mask: NDArray[np.bool_] | None
    ) -> NDArray[np.int64]:
        """The `pool` rows whose bit codes are nearest the query's (Hamming distance; lock held)."""
        qcode = self._code(q.reshape(1, -1))[:, 0]
        distance = np.bitwise_count(self._codes[0, :n] ^ qcode[0]).astype(np.uint16)
        for w in range(1, self._words):
            distance += np.bitwise_count(self._codes[w, :n] ^ qcode[w])
        if mask is not None:
            distance[~mask] = np.iinfo(np.uint16).max
        if pool >= n:
            return np.arange(n, dtype=np.int64)
        rows = np.argpartition(distance, pool)[:pool]
        if mask is not None:
            rows = rows[mask[rows]]
        return rows.astype(np.int64)

    def hits(self, query: NDArray[np.float32], flt: Filters, limit: int) -> list[Hit]:
        """The best `limit` entities for `query`, one `Hit` each (its nearest chunk, whose text is the
        snippet), checked against `Filters.where` in SQL."""
        if limit <= 0:
            return []
        want = 4 * limit
        while True:
            found = self.search(query, want, flt)
            hits = self._checked(found, flt, limit)
            if len(hits) >= limit or len(found) < want:
                return hits
            want *= 4

    def similarity(
        self, query: NDArray[np.float32], keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], float]:
        """The cosine of each entity's nearest chunk to `query`, for the entities (kind, id) that have
        vectors (one pass over the entity column: about 0.5 ms at 100,000 rows)."""
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(self.dim)
        with self._lock:
            self.sync()
            codes = {self._entity_codes[k]: k for k in keys if k in self._entity_codes}
            if not codes:
                return {}
            wanted = np.fromiter(codes, dtype=np.int32, count=len(codes))
            rows = np.flatnonzero(np.isin(self._entities[: self._n], wanted))
            scores = self._matrix[rows] @ q
            entities = self._entities[rows]
        best: dict[tuple[str, str], float] = {}
        for code, score in zip(entities.tolist(), scores.tolist(), strict=True):
            key = codes[code]
            if score > best.get(key, -2.0):
                best[key] = score
        return best

    def _checked(self, found: list[tuple[int, float]], flt: Filters, limit: int) -> list[Hit]:
        if not found:
            return []
        where, params = flt.where("c")
        marks = ", ".join("?" * len(found))
        rows = {
            int(r[0]): r
            for r in self._store.query(
                f"SELECT c.id, c.kind, c.entity_id, c.occurred_at, c.source, c.text FROM chunks AS c "
                f"WHERE c.id IN ({marks}) AND c.embedded_model = ? AND {where}",
                [*(c for c, _ in found), self.model, *params],
            )
        }
        best: dict[tuple[str, str], Hit] = {}
        for chunk_id, score in found:
            row = rows.get(chunk_id)
            if row is None:
                continue
            key = (str(row[1]), str(row[2]))
            if key not in best:
                best[key] = Hit(key[0], key[1], chunk_id, score, str(row[5]), "", row[3], row[4])
                if len(best) >= limit:
                    break
        return list(best.values())


class VectorRanker:
    """What `hybrid.search` takes as its `vector_ranker`: the query embedded (the last few kept, as one
    search asks twice), the index searched; and `similarity`, how near given entities are to the query."""

    def __init__(self, index: VectorIndex, embedder: Embedder) -> None:
        self.index = index
        self._embedder = embedder
        self._recent: dict[str, NDArray[np.float32]] = {}

    def embed(self, query: str) -> NDArray[np.float32]:
        vector = self._recent.get(query)
        if vector is None:
            vector = self._embedder.encode_query(query)
            if len(self._recent) >= 8:
                self._recent.pop(next(iter(self._recent)))
            self._recent[query] = vector
        return vector

    def __call__(self, query: str, flt: Filters, limit: int) -> list[Hit]:
        if not query.strip() or limit <= 0:
            return []
        return self.index.hits(self.embed(query), flt, limit)

    def similarity(self, query: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], float]:
        if not query.strip() or not keys:
            return {}
        return self.index.similarity(self.embed(query), keys)


def vector_ranker(index: VectorIndex, embedder: Embedder) -> VectorRanker:
    return VectorRanker(index, embedder)
