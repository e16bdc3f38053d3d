"""The registry of devices: who they are, when each was last seen, its version, queue depth and sync lag.

A device row is made when the device pairs (or by `add_device`); it is never deleted, only revoked, so
the operations it pushed keep a known author. `lag` is how many operations the node holds past the
device's last pull (`head - cursor`), `pending_ops` what the device said it still holds unpushed: the two
numbers a person needs to see that a laptop is behind, and in which direction.

Bookkeeping off the hot path: a request only *reads* the registry (is the device still active?); what it
reports (seen now, its version, its pull cursor) is noted in memory (`note_seen`) and written for all
devices at once by `flush`, which the node runs every `FLUSH_INTERVAL_S` seconds and at shutdown. Two
committed writes per pull, each waiting for PostgreSQL to flush its WAL, cost more than the pull itself.
So `last_seen`, `version`, `cursor` and `lag`, as another process reads them (`aurora-node status`,
`aurora-node devices list`), may lag the truth by a couple of seconds; this process's own `get` and
`list` (`GET /v1/devices`) flush first and are current. A push records its pending count in its own
transaction, at once.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict

from aurora.node.db import Pool
from aurora.sync.ops import new_id

MAX_NAME = 64
FLUSH_INTERVAL_S = 2.0
"""How often the noted sightings are written to the devices table."""
log = logging.getLogger(__name__)


class DeviceInfo(BaseModel):
    """One device as the registry knows it."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_seen: datetime | None
    version: str | None
    """The Aurora version the device last reported."""
    pending_ops: int
    """Operations the device last said it holds unpushed."""
    cursor: int
    """The last sequence number the device reported having pulled."""
    lag: int
    """Operations the node holds past `cursor`."""


class UnknownDeviceError(LookupError):
    """No device has that id."""

    def __init__(self, device_id: str) -> None:
        super().__init__(f"no device {device_id!r}; see `aurora-node devices list`")
        self.device_id = device_id


_SELECT = """
    SELECT d.id, d.name, d.created_at, d.revoked_at, d.last_seen, d.version, d.pending_ops, d.cursor,
           greatest(h.head - d.cursor, 0)
    FROM devices AS d, (SELECT coalesce(max(seq), 0) AS head FROM ops) AS h
"""
_FIELDS = ("id", "name", "created_at", "revoked_at", "last_seen", "version", "pending_ops", "cursor", "lag")


def _info(row: tuple[Any, ...]) -> DeviceInfo:
    return DeviceInfo(**dict(zip(_FIELDS, row, strict=True)))


async def record_seen(
    conn: AsyncConnection[Any],
    device_id: str,
    *,
    version: str | None = None,
    pending: int | None = None,
    cursor: int | None = None,
) -> bool:
    """Stamp `last_seen` and store whichever of version, pending count and cursor are given, on `conn`
    (so a push can do it in its own transaction). Returns whether the device exists."""
    cur = await conn.execute(
        "UPDATE devices SET last_seen = now(), version = coalesce(%s, version), "
        "pending_ops = coalesce(%s, pending_ops), cursor = coalesce(%s, cursor) WHERE id = %s RETURNING id",
        (version, pending, cursor, device_id),
    )
    return await cur.fetchone() is not None


async def stamp_pushed(conn: AsyncConnection[Any], device_id: str, pending: int) -> None:
    """`record_seen` for a push, in its transaction: `last_seen` and the pending count, with nothing read
    back, so in pipeline mode the update travels with the commit instead of costing a round trip."""
    await conn.execute(
        "UPDATE devices SET last_seen = now(), pending_ops = %s WHERE id = %s", (pending, device_id)
    )


_FLUSH = """
    UPDATE devices AS d
    SET last_seen = greatest(d.last_seen, u.at), version = coalesce(u.version, d.version),
        pending_ops = coalesce(u.pending, d.pending_ops), cursor = coalesce(u.cursor, d.cursor)
    FROM unnest(%s::text[], %s::timestamptz[], %s::text[], %s::bigint[], %s::bigint[])
        AS u(id, at, version, pending, cursor)
    WHERE d.id = u.id
"""


@dataclass(frozen=True)
class _Sighting:
    """What a device reported, not yet written: when, and whichever of version, pending count and cursor
    it said (None: not said, the stored value stays)."""

    at: datetime
    version: str | None = None
    pending: int | None = None
    cursor: int | None = None

    def then(self, later: _Sighting) -> _Sighting:
        """This sighting followed by `later`: the later time, and each value the later one says."""
        return _Sighting(
            at=max(self.at, later.at),
            version=later.version if later.version is not None else self.version,
            pending=later.pending if later.pending is not None else self.pending,
            cursor=later.cursor if later.cursor is not None else self.cursor,
        )


class Registry:
    """The devices table, over the node's pool, and this process's sightings not yet written."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._sightings: dict[str, _Sighting] = {}
        self._flush_lock = asyncio.Lock()

    async def add_device(self, name: str) -> str:
        """Register a device called `name` (1-64 characters, need not be unique); return its new id."""
        clean = name.strip()
        if not clean or len(clean) > MAX_NAME or not clean.isprintable():
            raise ValueError(f"a device name is 1-{MAX_NAME} printable characters, not {name[:80]!r}")
        device_id = new_id()
        async with self._pool.connection() as conn:
            await conn.execute("INSERT INTO devices (id, name) VALUES (%s, %s)", (device_id, clean))
        return device_id

    async def get(self, device_id: str) -> DeviceInfo | None:
        await self.flush()
        async with self._pool.connection() as conn:
            cur = await conn.execute(_SELECT + " WHERE d.id = %s", (device_id,))
            row = await cur.fetchone()
        return _info(row) if row else None

    async def list(self) -> builtins.list[DeviceInfo]:
        """Every device, oldest first (revoked ones too: `revoked_at` says so)."""
        await self.flush()
        async with self._pool.connection() as conn:
            cur = await conn.execute(_SELECT + " ORDER BY d.created_at, d.id")
            rows = await cur.fetchall()
        return [_info(row) for row in rows]

    async def seen(
        self,
        device_id: str,
        version: str | None = None,
        pending: int | None = None,
        cursor: int | None = None,
    ) -> bool:
        """Record that the device was just heard from, with what it reported; False for an unknown id."""
        async with self._pool.connection() as conn:
            return await record_seen(conn, device_id, version=version, pending=pending, cursor=cursor)

    def note_seen(
        self,
        device_id: str,
        version: str | None = None,
        pending: int | None = None,
        cursor: int | None = None,
    ) -> None:
        """`seen`, in memory only: written by the next `flush` (within `FLUSH_INTERVAL_S` while the node
        runs `run_flusher`). For the request path, which must not wait on a write; the device is known
        to exist (the caller has just checked it)."""
        sighting = _Sighting(datetime.now(UTC), version, pending, cursor)
        before = self._sightings.get(device_id)
        self._sightings[device_id] = sighting if before is None else before.then(sighting)

    async def flush(self) -> None:
        """Write every noted sighting, in one statement. If the database refuses, they are kept for the
        next try (merged under any noted since)."""
        async with self._flush_lock:
            if not self._sightings:
                return
            taken, self._sightings = self._sightings, {}
            ids = list(taken)
            rows = [taken[i] for i in ids]
            try:
                async with self._pool.connection() as conn:
                    await conn.execute(
                        _FLUSH,
                        (
                            ids,
                            [r.at for r in rows],
                            [r.version for r in rows],
                            [r.pending for r in rows],
                            [r.cursor for r in rows],
                        ),
                    )
            except BaseException:
                for device_id, older in taken.items():
                    newer = self._sightings.get(device_id)
                    self._sightings[device_id] = older if newer is None else older.then(newer)
                raise

    async def run_flusher(self, interval: float = FLUSH_INTERVAL_S) -> None:
        """`flush` every `interval` seconds until cancelled (the node runs it as a task, and flushes once
        more at shutdown)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except Exception as error:  # the database is away: keep the sightings, try again next time
                log.warning("could not record devices' last contact (%s); retrying", error)

    async def touch(self, device_id: str, version: str | None = None) -> bool:
        """Whether the device may talk to the node (known and not revoked); an active one is marked seen
        (with its version) in the same statement, so every request costs one round trip here."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE devices SET last_seen = now(), version = coalesce(%s, version) "
                "WHERE id = %s AND revoked_at IS NULL RETURNING id",
                (version, device_id),
            )
            return await cur.fetchone() is not None

    async def revoke(self, device_id: str) -> bool:
        """Revoke a device: refused from its next request. True if revoked now, False if it already was;
        UnknownDeviceError for an unknown id. (Its tokens are the auth module's to revoke.)"""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE devices AS d SET revoked_at = coalesce(d.revoked_at, now()) "
                "FROM devices AS old WHERE d.id = %s AND old.id = d.id RETURNING old.revoked_at IS NULL",
                (device_id,),
            )
            row = await cur.fetchone()
        if row is None:
            raise UnknownDeviceError(device_id)
        return bool(row[0])

    async def is_active(self, device_id: str) -> bool:
        """Known and not revoked: one read, what every authenticated request asks."""
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT revoked_at IS NULL FROM devices WHERE id = %s", (device_id,))
            row = await cur.fetchone()
        return bool(row and row[0])
