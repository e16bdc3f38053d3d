"""The node embeds what it stores: a queue of entities in PostgreSQL, claimed with `FOR UPDATE SKIP LOCKED`.

Triggers on `entities` (migration 0005) queue an entity in `embed_jobs` whenever a push changes what of it
is searchable, in the push's own transaction. `EmbedWorker` then, batch after batch:

1. **Claims** up to `batch` due rows in one short transaction: `SELECT ... FOR UPDATE SKIP LOCKED LIMIT n`
   (the smallest entities of the next few batches' worth, so a batch's texts are of like length), then
   stamps them with a claim id and a lease (`locked_until`), and counts the attempt. Another worker
   (a thread, a process, another node on the same database) skips rows being claimed and passes over
   leased ones, so no two workers embed the same job at once. The claim is a lease, not a held row lock:
   a push that changes an entity being embedded never waits for the model.
2. **Embeds** off the event loop, in a thread: each entity is cut into chunks exactly as the laptop cuts it
   (`aurora.app.search.chunking`), and only chunks whose text or model changed are encoded, in one batched
   call (on CUDA when torch sees a GPU). The lease is renewed while the model runs.
3. **Writes** in one transaction, with the claimed rows locked in key order: the vectors, the removal of
   chunks the entity no longer has, and the removal of each job at the version it read. A job whose entity
   changed meanwhile stays queued and is embedded again from the new text; a job whose claim was lost (its
   lease ran out and another worker took it) writes nothing.

Crash safety: a killed worker leaves leases that run out (`lease_s`, a minute by default) and its jobs
are claimed again; nothing it half did was committed. A job that fails (the model raised on its text) is
released with its error in `last_error` and retried after a growing wait; after `max_attempts` claims it
is parked (left in the table, error kept) until its entity changes again.

Laptops fetch vectors for entities they lack with `POST /v1/vectors` (`aurora.node.vectors_api`); each
chunk carries the SHA-256 of its text, so a laptop uses a vector only for a chunk whose text it cuts the
same way. (An item's text ends with the day it happened in the *machine's* time zone: a laptop in another
zone than the node cuts a different text for it, and embeds that chunk itself.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection
from psycopg.types import TypeInfo

from aurora.app.embed import DEFAULT_MODEL, Embedder
from aurora.app.search import chunking
from aurora.node.config import NodeSettings
from aurora.node.db import Database, Pool, one_line

log = logging.getLogger(__name__)

DIM = 384
"""The vectors' length: `chunk_vectors.vector` is `vector(384)`; a model of another size needs a migration."""
SEARCHED_KINDS = tuple(chunking.SEARCHED_COLUMNS)
"""The kinds the triggers queue (migration 0005 names the same kinds, and `aurora_searched_changed` the same
fields; a test checks)."""
BATCH = 512
"""Entities per claim. Large, because a batch is padded to its longest text: the claim's chunks are encoded
in one call that sorts them by length, so like lengths share a batch (claims of 64 in queue order ran four
times slower than one sorted `encode` of the same texts)."""
WINDOW = 4
"""A claim takes the smallest `BATCH` entities of the next `BATCH * WINDOW` due (see `_CLAIM`)."""
LEASE_S = 60.0
MAX_ATTEMPTS = 5
RETRY_BASE_S = 30.0
"""A failed job waits this long before its second try, twice that before its third, and so on."""
RETRY_MOST_S = 3600.0
IDLE_S = 1.0
"""How long an idle worker waits before looking at the queue again."""
_MAX_ERROR = 500
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def text_hash(text: str) -> str:
    """What `chunk_vectors.text_hash` holds for a chunk: SHA-256 of its UTF-8 text, in hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- the encoder ----------------------------------------------------------------------------------------


class Encoder(Protocol):
    """Texts in, L2-normalised float32 vectors out (`aurora.app.embed.Embedder` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def load(self) -> None: ...

    def encode(self, texts: Sequence[str], batch_size: int = ...) -> NDArray[np.float32]: ...


class CudaEncoder:
    """The same model as `Embedder`, run by sentence-transformers on a GPU. The vectors agree with the
    laptop's CPU ones to within float rounding (cosine above 0.9999)."""

    def __init__(self, name: str = DEFAULT_MODEL, device: str = "cuda") -> None:
        self.name = name
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        self.load()
        return int(self._model.get_embedding_dimension())

    def load(self) -> None:
        with self._lock:
            if self._model is None:
                # The laptop's loader finds the packaged model's folder and keeps Hugging Face offline.
                import os

                from sentence_transformers import SentenceTransformer

                from aurora.app.embed.model import _OFFLINE_ENV, _model_folder

                folder = _model_folder(self.name)
                os.environ.update(_OFFLINE_ENV)
                model = SentenceTransformer(str(folder), device=self.device, local_files_only=True)
                model.eval()
                self._model = model

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> NDArray[np.float32]:
        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vectors, dtype=np.float32)


def load_encoder(name: str = DEFAULT_MODEL, device: str | None = None) -> Encoder:
    """The encoder for `name` on `device` ("cpu", "cuda"...; None: CUDA when torch sees a GPU)."""
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return Embedder(name)
    return CudaEncoder(name, device)


# --- the queue ------------------------------------------------------------------------------------------

# Of the next `window` due jobs (oldest first), the `n` whose entities are smallest: a batch is padded to
# its longest text, so like sizes encode together (as one `encode` of a whole list sorts it); the larger
# ones wait for a later claim, with their like, never longer than the window takes to pass. The size is
# the stored one (`pg_column_size`: compressed when large), read without decompressing anything; a rough
# order is all this needs (on the embedqueue bench, 0.82x of a bare encode in queue order, 0.97x so).
_CLAIM = """
    WITH due AS (
        SELECT entity, entity_id FROM embed_jobs
        WHERE (locked_until IS NULL OR locked_until <= now()) AND attempts < %(most)s
        ORDER BY enqueued_at
        LIMIT %(window)s
        FOR UPDATE SKIP LOCKED
    ), picked AS (
        SELECT due.entity, due.entity_id FROM due LEFT JOIN entities AS e USING (entity, entity_id)
        ORDER BY pg_column_size(e."values") NULLS FIRST
        LIMIT %(n)s
    )
    UPDATE embed_jobs AS j
    SET claimed_by = %(claim)s, locked_until = now() + make_interval(secs => %(lease)s),
        attempts = j.attempts + 1
    FROM picked
    WHERE j.entity = picked.entity AND j.entity_id = picked.entity_id
    RETURNING j.entity, j.entity_id, j.version
"""
# Read after the claim commits, in statements of their own: their snapshot holds every change made before
# the claim (a change made after it bumps the claimed version). Read in the claim's own statement, the
# values could come from an older snapshot than the job rows it locked, and a change committed in between
# would never be embedded.
_VALUES = """
    SELECT e.entity, e.entity_id, e."values"
    FROM entities AS e
    JOIN jsonb_to_recordset(%s::jsonb) AS k(entity text, entity_id text) USING (entity, entity_id)
"""
_KNOWN = """
    SELECT c.entity, c.entity_id, c.ord, c.text_hash, c.model
    FROM chunk_vectors AS c
    JOIN jsonb_to_recordset(%s::jsonb) AS k(entity text, entity_id text) USING (entity, entity_id)
"""
_RENEW = "UPDATE embed_jobs SET locked_until = now() + make_interval(secs => %s) WHERE claimed_by = %s"
_LOCK_MINE = """
    SELECT j.entity, j.entity_id, j.version FROM embed_jobs AS j
    JOIN jsonb_to_recordset(%s::jsonb) AS k(entity text, entity_id text) USING (entity, entity_id)
    WHERE j.claimed_by = %s
    ORDER BY j.entity, j.entity_id
    FOR UPDATE OF j
"""
_TRIM = """
    DELETE FROM chunk_vectors AS c
    USING jsonb_to_recordset(%s::jsonb) AS k(entity text, entity_id text, n integer)
    WHERE c.entity = k.entity AND c.entity_id = k.entity_id AND c.ord >= k.n
"""
_UPSERT = """
    INSERT INTO chunk_vectors (entity, entity_id, ord, model, text_hash, vector)
    SELECT * FROM unnest(%s::text[], %s::text[], %s::integer[], %s::text[], %s::text[], %s::vector[])
    ON CONFLICT (entity, entity_id, ord) DO UPDATE
        SET model = excluded.model, text_hash = excluded.text_hash, vector = excluded.vector,
            embedded_at = now()
"""
_DONE = """
    DELETE FROM embed_jobs AS j
    USING jsonb_to_recordset(%s::jsonb) AS k(entity text, entity_id text, version bigint)
    WHERE j.entity = k.entity AND j.entity_id = k.entity_id AND j.version = k.version
      AND j.claimed_by = %s
"""
_FAILED = """
    UPDATE embed_jobs AS j
    SET claimed_by = NULL, last_error = k.error,
        locked_until = now() + make_interval(secs => least(%s * 2 ^ (j.attempts - 1), %s))
    FROM jsonb_to_recordset(%s::jsonb) AS k(entity text, entity_id text, error text)
    WHERE j.entity = k.entity AND j.entity_id = k.entity_id AND j.claimed_by = %s
"""
_RELEASE = "UPDATE embed_jobs SET claimed_by = NULL, locked_until = NULL WHERE claimed_by = %s"


@dataclass
class Job:
    """One claimed entity: its chunks, and which of them need a vector."""

    entity: str
    entity_id: str
    version: int
    values: dict[str, Any] | None
    known: dict[int, tuple[str, str]] = field(default_factory=dict)
    """Vectors the node holds for it: ord -> (text hash, model)."""
    chunks: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    todo: list[int] = field(default_factory=list)
    """Ords to encode."""
    vectors: NDArray[np.float32] | None = None
    """One row per `todo` ord, once encoded."""
    error: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.entity, self.entity_id)


@dataclass
class Claim:
    id: uuid.UUID
    jobs: list[Job]


@dataclass(frozen=True)
class QueueStatus:
    queued: int
    """Jobs waiting or being embedded."""
    parked: int
    """Jobs that failed `max_attempts` times, left with their error until their entity changes."""
    vectors: int
    """Chunk vectors the node holds."""


async def queue_status(pool: Pool, max_attempts: int = MAX_ATTEMPTS) -> QueueStatus:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM embed_jobs WHERE attempts < %(most)s), "
            "(SELECT count(*) FROM embed_jobs WHERE attempts >= %(most)s), "
            "(SELECT count(*) FROM chunk_vectors)",
            {"most": max_attempts},
        )
        row = await cur.fetchone()
    assert row is not None
    return QueueStatus(int(row[0]), int(row[1]), int(row[2]))


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {one_line(error)}"[:_MAX_ERROR]


class EmbedWorker:
    """Claims, embeds and writes batches of `embed_jobs`; `run_once` for one batch, `run` until stopped.

    Any number of workers may share a database. `encoder` must make `DIM`-long vectors.
    """

    def __init__(
        self,
        pool: Pool,
        encoder: Encoder,
        *,
        batch: int = BATCH,
        encode_batch: int = 64,
        lease_s: float = LEASE_S,
        max_attempts: int = MAX_ATTEMPTS,
        retry_base_s: float = RETRY_BASE_S,
        idle_s: float = IDLE_S,
    ) -> None:
        if batch < 1 or encode_batch < 1 or max_attempts < 1 or lease_s <= 0:
            raise ValueError("batch, encode_batch, max_attempts and lease_s must be positive")
        self._pool = pool
        self._encoder = encoder
        self.batch = batch
        self.encode_batch = encode_batch
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.idle_s = idle_s
        self._vector_type: TypeInfo | None = None

    @property
    def model(self) -> str:
        return self._encoder.name

    async def prepare(self) -> int:
        """Load the model (in a thread), check its vector length, and queue every entity whose vectors
        another model made (the model setting changed); returns how many were queued."""
        await asyncio.to_thread(self._encoder.load)
        dim = self._encoder.dim
        if dim != DIM:
            raise ValueError(f"the node stores {DIM}-long vectors; model {self.model!r} makes {dim}")
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO embed_jobs (entity, entity_id) "
                "SELECT DISTINCT entity, entity_id FROM chunk_vectors WHERE model <> %s "
                "ON CONFLICT (entity, entity_id) DO NOTHING",
                (self.model,),
            )
            return cur.rowcount

    # --- one batch ------------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim, embed and write one batch; returns how many jobs it claimed (0: none was due)."""
        claim = await self.claim()
        if claim is None:
            return 0
        await self.embed(claim)
        await self.finish(claim)
        return len(claim.jobs)

    async def claim(self) -> Claim | None:
        """Claim up to `batch` due jobs (see the module docstring); None when none is due."""
        claim_id = uuid.uuid4()
        async with self._pool.connection() as conn:
            async with conn.transaction():
                cur = await conn.execute(
                    _CLAIM,
                    {
                        "most": self.max_attempts,
                        "n": self.batch,
                        "window": self.batch * WINDOW,
                        "claim": claim_id,
                        "lease": self.lease_s,
                    },
                )
                rows = await cur.fetchall()
            if not rows:
                return None
            jobs = {(str(e), str(i)): Job(str(e), str(i), int(v), None) for e, i, v in rows}
            keys = _keys_json(jobs)
            cur = await conn.execute(_VALUES, (keys,))
            for entity, entity_id, values in await cur.fetchall():
                jobs[(entity, entity_id)].values = values if isinstance(values, dict) else None
            cur = await conn.execute(_KNOWN, (keys,))
            for entity, entity_id, ord_, digest, model in await cur.fetchall():
                jobs[(entity, entity_id)].known[int(ord_)] = (str(digest), str(model))
        return Claim(claim_id, sorted(jobs.values(), key=lambda j: j.key))

    async def embed(self, claim: Claim) -> None:
        """Chunk and encode the claim's jobs in a thread, renewing the lease meanwhile."""
        work = asyncio.create_task(asyncio.to_thread(self._encode, claim.jobs))
        while True:
            done, _ = await asyncio.wait({work}, timeout=self.lease_s / 3)
            if done:
                work.result()
                return
            try:
                async with self._pool.connection() as conn:
                    await conn.execute(_RENEW, (self.lease_s, claim.id))
            except Exception as error:  # the lease may run out; finish() then finds the claim lost
                log.warning("could not renew an embedding claim (%s)", one_line(error))

    def _encode(self, jobs: list[Job]) -> None:
        """Chunk each job, then encode every changed chunk in one call; on failure, job by job, so one
        bad entity fails alone."""
        for job in jobs:
            try:
                self._chunk(job)
            except Exception as error:
                job.error = _error_text(error)
        ready = [job for job in jobs if job.error is None and job.todo]
        if not ready:
            return
        try:
            self._encode_jobs(ready)
        except Exception as error:
            if len(ready) == 1:
                ready[0].error = _error_text(error)
                return
            for job in ready:
                try:
                    self._encode_jobs([job])
                except Exception as alone:
                    job.error = _error_text(alone)

    def _chunk(self, job: Job) -> None:
        values = job.values
        if values is None or job.entity not in chunking.SEARCHED_COLUMNS:
            job.chunks = []
        else:
            job.chunks = chunking.chunks(job.entity, values)
        job.hashes = [text_hash(text) for text in job.chunks]
        job.todo = [
            n for n, digest in enumerate(job.hashes) if job.known.get(n) != (digest, self._encoder.name)
        ]

    def _encode_jobs(self, jobs: list[Job]) -> None:
        texts = [job.chunks[n] for job in jobs for n in job.todo]
        vectors = self._encoder.encode(texts, batch_size=self.encode_batch)
        if vectors.shape != (len(texts), DIM):
            raise ValueError(f"the model gave vectors of shape {vectors.shape} for {len(texts)} texts")
        start = 0
        for job in jobs:
            job.vectors = vectors[start : start + len(job.todo)]
            start += len(job.todo)

    async def finish(self, claim: Claim) -> None:
        """Write the claim's vectors and settle its jobs in one transaction (see the module docstring)."""
        async with self._pool.connection() as conn:
            _register_vector(conn, await self._vector_info(conn))
            async with conn.transaction():
                cur = await conn.execute(_LOCK_MINE, (_keys_json({j.key: j for j in claim.jobs}), claim.id))
                held = {(str(e), str(i)): int(v) for e, i, v in await cur.fetchall()}
                mine = [job for job in claim.jobs if job.key in held]
                good = [job for job in mine if job.error is None]
                failed = [job for job in mine if job.error is not None]
                if good:
                    await self._write(conn, good)
                    done = [
                        {"entity": j.entity, "entity_id": j.entity_id, "version": j.version} for j in good
                    ]
                    await conn.execute(_DONE, (_ENCODER.encode(done), claim.id))
                if failed:
                    errors = [
                        {"entity": j.entity, "entity_id": j.entity_id, "error": j.error} for j in failed
                    ]
                    for job in failed:
                        log.warning("embedding %s %s failed: %s", job.entity, job.entity_id, job.error)
                    await conn.execute(
                        _FAILED, (self.retry_base_s, RETRY_MOST_S, _ENCODER.encode(errors), claim.id)
                    )
                # What is still ours changed while it was embedded: due again at once.
                await conn.execute(_RELEASE, (claim.id,))
        lost = len(claim.jobs) - len(mine)
        if lost:
            log.warning(
                "%d embedding jobs were claimed by another worker after this one's lease ran out", lost
            )

    async def _write(self, conn: AsyncConnection[Any], jobs: list[Job]) -> None:
        trim = [{"entity": j.entity, "entity_id": j.entity_id, "n": len(j.chunks)} for j in jobs]
        await conn.execute(_TRIM, (_ENCODER.encode(trim),))
        rows = [
            (job.entity, job.entity_id, n, self.model, job.hashes[n], job.vectors[row])
            for job in jobs
            if job.vectors is not None
            for row, n in enumerate(job.todo)
        ]
        if rows:
            # One statement for the batch: each column travels as one array (`unnest`).
            await conn.execute(_UPSERT, [list(column) for column in zip(*rows, strict=True)])

    async def _vector_info(self, conn: AsyncConnection[Any]) -> TypeInfo:
        if self._vector_type is None:
            info = await TypeInfo.fetch(conn, "vector")
            if info is None:
                raise RuntimeError("the vector type is missing: is migration 5 (pgvector) applied?")
            self._vector_type = info
        return self._vector_type

    # --- the loop -------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Embed batch after batch until `stop` is set; an idle worker looks again every `idle_s`.

        While one batch is written, the next is claimed and encoded (the write's round trips overlap the
        model's work). A failure of the database is logged and tried again after `idle_s`.
        """
        writing: asyncio.Task[None] | None = None
        while not stop.is_set():
            try:
                claim = await self.claim()
                if claim is not None:
                    await self.embed(claim)
            except Exception as error:
                log.warning("the embedding worker could not claim or embed a batch (%s)", one_line(error))
                claim = None
            if writing is not None:
                await _settle(writing)
                writing = None
            if claim is not None:
                writing = asyncio.create_task(self.finish(claim))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.idle_s)
        if writing is not None:
            await _settle(writing)


async def _settle(task: asyncio.Task[None]) -> None:
    try:
        await task
    except Exception as error:  # the claim's leases run out and its jobs are claimed again
        log.warning("the embedding worker could not write a batch (%s)", one_line(error))


def _keys_json(jobs: dict[tuple[str, str], Any]) -> str:
    return _ENCODER.encode([{"entity": e, "entity_id": i} for e, i in jobs])


def _register_vector(conn: AsyncConnection[Any], info: TypeInfo) -> None:
    """pgvector's psycopg adapters for numpy arrays on `conn`, from a `TypeInfo` fetched once (its own
    `register_vector_async` looks four types up on every call)."""
    from pgvector.psycopg.vector import register_vector_info

    register_vector_info(conn, info)


# --- in `aurora-node serve` -----------------------------------------------------------------------------


@contextmanager
def embedding_in_background(settings: NodeSettings) -> Iterator[None]:
    """Run one `EmbedWorker` on a thread of its own (its own event loop and a small pool on the node's
    database) while the block runs; nothing when `settings.embed` is off. A worker that cannot start (no
    model, no pgvector) logs why and leaves the queue as it is: the API serves on."""
    if not settings.embed:
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(target=_serve_worker, args=(settings, stop), name="aurora-node embeddings")
    thread.daemon = True
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def _serve_worker(settings: NodeSettings, stop: threading.Event) -> None:
    async def main() -> None:
        db = await Database.start(settings.model_copy(update={"pool_min": 1, "pool_max": 3}))
        try:
            await db.migrate()
            worker = EmbedWorker(db.pool, load_encoder())
            queued = await worker.prepare()
            if queued:
                log.info("queued %d entities embedded by another model for %s", queued, worker.model)
            halt = asyncio.Event()

            async def watch() -> None:
                while not stop.is_set():
                    await asyncio.sleep(0.2)
                halt.set()

            watcher = asyncio.create_task(watch())
            await worker.run(halt)
            await watcher
        finally:
            await db.close()

    try:
        asyncio.run(main())
    except Exception as error:
        log.error("the node's embedding worker stopped: %s", one_line(error))
