"""`POST /v1/vectors`: a laptop fetches the node's vectors for entities it has not embedded yet.

The laptop names up to `MAX_ENTITIES` entities; the answer holds, for each one the node has vectors for,
its chunks in order: each chunk's `ord`, the SHA-256 of its text (`text_hash`) and its vector, as base64
of `dim` little-endian float32s (exact, and a quarter the size of the same numbers as JSON). The laptop
uses a vector only where it cut a chunk with the same text hash (`aurora.app.search.chunking`), under the
same model. Entities with a change not embedded yet are listed in `pending` (ask again later); entities
the node has no vectors for are simply absent. With `model`, only vectors of that model come back.

The route is built by `vectors_router(device)`, given the app's own authentication dependency, so a
revoked device is refused here exactly as on every other route.
"""

# No `from __future__ import annotations` here: FastAPI reads the route signatures' annotations at run time.
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from aurora.node.db import Pool
from aurora.node.embed_jobs import DIM

MAX_ENTITIES = 256
"""Entities per request: an item may have hundreds of chunks, about 2 KB each in the answer."""

_ENTITY = Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")
_ENTITY_ID = Field(min_length=1, max_length=64, pattern=r"^[^\x00]+$")

_FETCH = """
    SELECT c.entity, c.entity_id, c.ord, c.model, c.text_hash, vector_send(c.vector)
    FROM jsonb_to_recordset(%(keys)s::jsonb) AS k(entity text, entity_id text)
    JOIN chunk_vectors AS c USING (entity, entity_id)
    WHERE %(model)s::text IS NULL OR c.model = %(model)s::text
    ORDER BY c.entity, c.entity_id, c.ord
"""
_PENDING = """
    SELECT j.entity, j.entity_id
    FROM jsonb_to_recordset(%s::jsonb) AS k(entity text, entity_id text)
    JOIN embed_jobs AS j USING (entity, entity_id)
    ORDER BY j.entity, j.entity_id
"""


class EntityRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity: Annotated[str, _ENTITY]
    entity_id: Annotated[str, _ENTITY_ID]


class VectorsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entities: list[EntityRef] = Field(min_length=1, max_length=MAX_ENTITIES)
    model: str | None = Field(default=None, min_length=1, max_length=300, pattern=r"^[^\x00]+$")
    """Only vectors made by this model (the laptop's own model setting)."""


class ChunkVector(BaseModel):
    ord: int
    text_hash: str
    """SHA-256 of the chunk's UTF-8 text, hex."""
    vector: str
    """`dim` float32s, little-endian, base64."""


class EntityVectors(BaseModel):
    entity: str
    entity_id: str
    model: str
    chunks: list[ChunkVector]


class VectorsResponse(BaseModel):
    dim: int = DIM
    encoding: Literal["f32le-base64"] = "f32le-base64"
    entities: list[EntityVectors]
    pending: list[EntityRef]
    """Asked-for entities with a change the node has not embedded yet."""


def decode_vector(text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
    """A `ChunkVector.vector` back to numbers."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


async def fetch_vectors(pool: Pool, request: VectorsRequest) -> VectorsResponse:
    """The answer to `request`: one read of `chunk_vectors` and one of `embed_jobs`."""
    keys = list(dict.fromkeys((ref.entity, ref.entity_id) for ref in request.entities))
    keys_json = json.dumps([{"entity": e, "entity_id": i} for e, i in keys])
    async with pool.connection() as conn:
        cur = await conn.execute(_FETCH, {"keys": keys_json, "model": request.model})
        rows = await cur.fetchall()
        cur = await conn.execute(_PENDING, (keys_json,))
        pending = [EntityRef(entity=e, entity_id=i) for e, i in await cur.fetchall()]
    found: dict[tuple[str, str], EntityVectors] = {}
    for entity, entity_id, ord_, model, digest, sent in rows:
        held = found.get((entity, entity_id))
        if held is None:
            held = found[(entity, entity_id)] = EntityVectors(
                entity=entity, entity_id=entity_id, model=model, chunks=[]
            )
        # pgvector's binary form: dimension and a reserved word (2 bytes each), then big-endian float32s.
        numbers = np.frombuffer(bytes(sent), dtype=">f4", offset=4).astype("<f4")
        held.chunks.append(
            ChunkVector(
                ord=ord_, text_hash=digest, vector=base64.b64encode(numbers.tobytes()).decode("ascii")
            )
        )
    return VectorsResponse(entities=list(found.values()), pending=pending)


def vectors_router(device: Callable[..., Awaitable[str]]) -> APIRouter:
    """The route, authenticated by `device` (the app's dependency that names the calling device)."""
    router = APIRouter()

    @router.post("/v1/vectors", response_model=VectorsResponse)
    async def vectors(
        body: VectorsRequest, request: Request, device_id: Annotated[str, Depends(device)]
    ) -> VectorsResponse:
        pool: Pool = request.app.state.node.db.pool
        return await fetch_vectors(pool, body)

    return router
