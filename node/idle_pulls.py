"""Idle pulls, answered together: one PostgreSQL statement for every device waiting at the same moment.

Most pulls find nothing new: a laptop polls (or its WebSocket fires) and is already at the head. Such a
pull still needs two facts from the database, the head and whether the device is still allowed (a revoked
device is refused at once), and a statement of its own for those cost the node more than the rest of the
request. So the route asks `IdlePulls.check`, which queues the question; one statement at a time runs
for every question queued while the previous one was out (`devices.id = ANY(...)` and the head), and
each waiting request gets its answer. Under load the batches grow by themselves and the database's cost
per pull shrinks; alone, a pull waits for one statement as before.

Nothing is taken from memory: every answer comes from a snapshot taken after its request arrived, so a
push acknowledged by another node process, or a revocation, counts for the next pull as before.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from aurora.node.db import Pool

_CHECK = """
    SELECT (SELECT coalesce(max(seq), 0) FROM ops),
           coalesce((SELECT array_agg(id) FROM devices WHERE id = ANY(%s) AND revoked_at IS NULL), '{}')
"""


class IdleAnswer(NamedTuple):
    head: int
    """The newest seq stored, as of a snapshot taken after the question was asked."""
    active: bool
    """Whether the device is known and not revoked, in the same snapshot."""


class IdlePulls:
    """Coalesces the head-and-device checks of concurrent pulls into one statement at a time."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._waiting: list[tuple[str, asyncio.Future[IdleAnswer]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def check(self, device_id: str) -> IdleAnswer:
        """The head, and whether `device_id` may pull, read after this call began."""
        future: asyncio.Future[IdleAnswer] = asyncio.get_running_loop().create_future()
        self._waiting.append((device_id, future))
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="aurora-node idle pulls")
        return await future

    async def _run(self) -> None:
        batch: list[tuple[str, asyncio.Future[IdleAnswer]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    head, active = await self._read(sorted({device for device, _ in batch}))
                except Exception as error:  # each waiting request fails as its own statement would have
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for device, future in batch:
                    if not future.done():  # a request cancelled meanwhile (its client left) wants nothing
                        future.set_result(IdleAnswer(head, device in active))
        finally:
            self._runner = None
            # Cancelled (the node stopping): nobody waits for an answer that will not come.
            for _, future in [*batch, *self._waiting]:
                if not future.done():
                    future.cancel()

    async def _read(self, devices: list[str]) -> tuple[int, frozenset[str]]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_CHECK, (devices,))
            row = await cur.fetchone()
        assert row is not None  # one row always: the statement has no FROM
        return int(row[0]), frozenset(row[1])
