"""Embedding throughput through the node's queue against a bare `encode` of the same texts.

The texts are 2,000 real chunks: the shared real data (mail, calendars, Slack, transcripts, tasks) imported
into a laptop workspace and cut by its own indexer, so each is a passage of up to 800 characters as
Aurora stores them. Each becomes a note on the node.

- **Queue**: on a fresh PostgreSQL database, the clock runs from the push of the 2,000 notes
  (`PgActionLog.ingest`, one batch: the triggers queue 2,000 jobs in its transaction) until one
  `EmbedWorker` running as `aurora-node serve` runs it (claims with `FOR UPDATE SKIP LOCKED`, chunks,
  encodes in a thread, writes the vectors, deletes the jobs) has emptied the queue.
- **Baseline, same run**: `SentenceTransformer.encode` of the same 2,000 texts in one call (batch 64,
  normalised, sorted by length inside), on the same model object and torch thread count.

Rounds alternate which goes first; each figure is the median of `ROUNDS`. Goal: the queue at least 0.8x
the bare rate. The model runs on the CPU here, or on CUDA when torch sees a GPU (both sides alike).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.bench.common import Row, ratio, real_chunk_texts, secs

if TYPE_CHECKING:
    from aurora.node.embed_jobs import Encoder
    from tests.node.pgtest import PgTestServer

N_TEXTS = 2_000
ROUNDS = 3
GOAL_RATIO = 0.8


def _real_chunks(root: Path) -> list[str]:
    """N_TEXTS distinct chunks of the shared real data, as the laptop's indexer cuts them (repeated with a
    number in front if the data holds fewer)."""
    texts = list(dict.fromkeys(real_chunk_texts(root / "embedqueue.db")))
    chunks = texts[:N_TEXTS]
    n = 0
    while len(chunks) < N_TEXTS:
        n += 1
        chunks += [f"({n}) {t}"[:800] for t in texts[: N_TEXTS - len(chunks)]]
    return chunks


async def _through_queue(
    pg: PgTestServer, encoder: Encoder, texts: list[str], batch: int | None = None
) -> float:
    """Seconds from the push of `texts` as notes to the last vector written, on a fresh database."""
    from aurora.node.embed_jobs import EmbedWorker, queue_status
    from aurora.node.oplog import PgActionLog
    from aurora.sync import HybridClock, Operation, new_id

    device = new_id()
    clock = HybridClock(device)
    ops = [
        Operation(op_id=new_id(), device_id=device, hlc=clock.now().encode(), entity="note",
                  entity_id=f"n{i}", fields={"body": text, "tags": [], "deleted": False})
        for i, text in enumerate(texts)
    ]  # fmt: skip
    async with pg.database() as url, pg.pool(url, max_size=4) as pool:
        worker = EmbedWorker(pool, encoder, idle_s=0.01, **({} if batch is None else {"batch": batch}))
        stop = asyncio.Event()
        start = time.perf_counter()
        await PgActionLog(pool).ingest(ops)
        running = asyncio.create_task(worker.run(stop))
        while True:
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT count(*) FROM embed_jobs")
                row = await cur.fetchone()
            if row is not None and row[0] == 0:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - start
        stop.set()
        await running
        status = await queue_status(pool)
        assert status.vectors == len(texts) and status.queued == 0, status
    return elapsed


def _bare_model(encoder: Encoder) -> Any:
    """The sentence-transformers model behind `encoder`, for the bare baseline."""
    from aurora.app.embed import Embedder

    if isinstance(encoder, Embedder):
        return encoder._get_model()
    return getattr(encoder, "_model")  # noqa: B009  (CudaEncoder, loaded)


def run(root: Path) -> list[Row]:
    from aurora.node.embed_jobs import load_encoder
    from tests.node.pgtest import PgTestServer, PgUnavailableError

    try:
        pg = PgTestServer.start()
    except PgUnavailableError as error:
        print(f"embedqueue: no PostgreSQL ({error}); skipped")
        return []
    try:
        texts = _real_chunks(root)
        encoder = load_encoder()
        encoder.load()
        model = _bare_model(encoder)
        model.encode(texts[:128], batch_size=64, normalize_embeddings=True)  # warm-up
        queue_times: list[float] = []
        bare_times: list[float] = []
        for r in range(ROUNDS):
            for which in ("bare", "queue") if r % 2 == 0 else ("queue", "bare"):
                if which == "bare":
                    start = time.perf_counter()
                    model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)
                    bare_times.append(time.perf_counter() - start)
                else:
                    queue_times.append(asyncio.run(_through_queue(pg, encoder, texts)))
    finally:
        pg.close()
    queue, bare = statistics.median(queue_times), statistics.median(bare_times)
    speed = ratio(bare, queue)  # throughput ratio: the queue's texts/s over the bare texts/s
    print(f"embedding {N_TEXTS} real chunks ({sum(map(len, texts)) / len(texts):.0f} characters on average)")
    print(f"  queue (push, claim, chunk, encode, write): {', '.join(secs(t) for t in queue_times)}")
    print(f"  bare encode:                               {', '.join(secs(t) for t in bare_times)}")
    print(f"  median: queue {secs(queue)} ({N_TEXTS / queue:.0f} texts/s), bare {secs(bare)} "
          f"({N_TEXTS / bare:.0f} texts/s), ratio {speed:.2f}x (goal >= {GOAL_RATIO}x)")  # fmt: skip
    return [
        Row(
            name=f"node embedding queue, {N_TEXTS} chunks",
            value=f"{N_TEXTS / queue:,.0f} texts/s ({secs(queue)})",
            baseline=f"bare encode {N_TEXTS / bare:,.0f} texts/s ({secs(bare)})",
            ratio=f"{speed:.2f}x",
            goal=f">={GOAL_RATIO}x",
            met=speed >= GOAL_RATIO,
        )
    ]
