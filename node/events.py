"""Live announcements: "operations up to seq N exist", to every laptop with a WebSocket open.

Several node processes may share one PostgreSQL, and a push may land on any of them, so the signal comes
from the database: `PgActionLog.ingest` runs `pg_notify('aurora_ops', head)` in the pushing transaction
(delivered only if it commits), and each process LISTENs on its own connection and forwards the newest
head to its sockets. A laptop that misses one (a socket opened just after) pulls on connect anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg

from aurora.sync.protocol import Announce

CHANNEL = "aurora_ops"
log = logging.getLogger(__name__)


class EventHub:
    """Fans the database's notifications out to subscriber queues (one per open WebSocket)."""

    def __init__(self, conninfo: str, kwargs: dict[str, Any] | None = None) -> None:
        self._conninfo = conninfo
        self._kwargs = kwargs or {}
        self._queues: set[asyncio.Queue[Announce]] = set()
        self._task: asyncio.Task[None] | None = None
        self.head = 0

    @property
    def online(self) -> int:
        """Subscribers connected to this process."""
        return len(self._queues)

    def subscribe(self) -> asyncio.Queue[Announce]:
        queue: asyncio.Queue[Announce] = asyncio.Queue(maxsize=16)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Announce]) -> None:
        self._queues.discard(queue)

    def publish(self, head: int) -> None:
        """Announce `head` if it is news (a push on this process publishes before its notification
        comes back, and that notification is then not announced again)."""
        if head <= self.head:
            return
        self.head = head
        message = Announce(head=head)
        for queue in list(self._queues):
            if queue.full():  # a slow reader needs only the newest head
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(message)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="aurora-node events")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True, **self._kwargs)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.5
                    async for note in conn.notifies():
                        with contextlib.suppress(ValueError):
                            self.publish(int(note.payload))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database went away: keep trying, quietly, with backoff
                log.warning("event listener lost the database (%s); retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
