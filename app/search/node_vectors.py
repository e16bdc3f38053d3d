"""Vectors from the node for chunks this laptop has not embedded yet.

After a sync brings many items (a new laptop pulling a year of mail), embedding them here takes minutes of
CPU; the node has usually embedded them already (`aurora.node.embed_jobs`, on its GPU when it has one).
`adopt_node_vectors` asks the node (`POST /v1/vectors`) for the entities whose chunks wait for vectors of
this laptop's model, and takes a vector only for a chunk whose text is exactly the one the node embedded
(same SHA-256 of the text, same place in the entity, same model name): anything else waits for the local
embedding worker, as before. Written like the worker's own batches (one short transaction; the change log
keeps an in-memory index in step), so the two can run side by side: whichever writes last wins, with the
same vector.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from aurora.app.search.vectors import to_blob
from aurora.app.store import Store

MAX_ENTITIES = 256
"""Entities per request (the node's own limit)."""


@dataclass(frozen=True)
class NodeChunk:
    ord: int
    text_hash: str
    vector: np.ndarray
    """float32, the model's dimension."""


@dataclass(frozen=True)
class NodeEntityVectors:
    entity: str
    entity_id: str
    model: str
    chunks: tuple[NodeChunk, ...]


Fetch = Callable[[Sequence[tuple[str, str]], str], list[NodeEntityVectors]]
"""Ask the node for the vectors of these (entity, id) pairs made by this model (`NodeClient.vectors`)."""


def decode_vector(text: str, dim: int) -> np.ndarray:
    """A vector as the node sends it (base64 of little-endian float32s); ValueError if it is not one."""
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 4 * dim:
        raise ValueError(f"a vector of {len(raw)} bytes, not {4 * dim}")
    vector = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if not np.all(np.isfinite(vector)):
        raise ValueError("a vector holds NaN or infinity")
    return vector


def _unit(vector: np.ndarray) -> bool:
    """The model's vectors are normalised; anything else did not come from it."""
    return abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def waiting_entities(store: Store, model: str, limit: int = MAX_ENTITIES) -> list[tuple[str, str]]:
    """Entities with a chunk still waiting for a vector of `model`, at most `limit`."""
    rows = store.query(
        "SELECT DISTINCT kind, entity_id FROM chunks "
        "WHERE embedded_model IS NULL OR embedded_model <> ? LIMIT ?",
        (model, limit),
    )
    return [(str(kind), str(entity_id)) for kind, entity_id in rows]


def adopt_node_vectors(store: Store, fetch: Fetch, model: str, dim: int, *, rounds: int = 20) -> int:
    """Take the node's vectors for waiting chunks whose text matches; how many chunks got one. Stops when
    a round adopts nothing (the node has nothing more for what waits) or after `rounds` requests."""
    adopted_total = 0
    asked: set[tuple[str, str]] = set()
    for _ in range(rounds):
        waiting = [key for key in waiting_entities(store, model, MAX_ENTITIES * 4) if key not in asked]
        waiting = waiting[:MAX_ENTITIES]
        if not waiting:
            break
        asked.update(waiting)
        answer = [e for e in fetch(waiting, model) if e.model == model]
        adopted_total += _store_matching(store, answer, model, dim)
    return adopted_total


def _store_matching(store: Store, answer: list[NodeEntityVectors], model: str, dim: int) -> int:
    adopted = 0
    with store.transaction() as tx:
        for entity in answer:
            theirs = {c.ord: c for c in entity.chunks if c.vector.shape == (dim,) and _unit(c.vector)}
            if not theirs:
                continue
            rows = tx.query(
                "SELECT id, ord, text FROM chunks WHERE kind = ? AND entity_id = ? "
                "AND (embedded_model IS NULL OR embedded_model <> ?)",
                (entity.entity, entity.entity_id, model),
            )
            for chunk_id, ord_, text in rows:
                chunk = theirs.get(int(ord_))
                if chunk is None or chunk.text_hash != text_hash(str(text)):
                    continue  # the node cut or worded it differently: the local worker embeds it
                tx.execute(
                    "INSERT INTO chunk_vectors (chunk_id, model, vector) VALUES (?, ?, ?) "
                    "ON CONFLICT (chunk_id) DO UPDATE SET model = excluded.model, vector = excluded.vector",
                    (int(chunk_id), model, to_blob(chunk.vector)),
                )
                tx.execute("UPDATE chunks SET embedded_model = ? WHERE id = ?", (model, int(chunk_id)))
                adopted += 1
    return adopted
