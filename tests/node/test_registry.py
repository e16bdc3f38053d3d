"""The device registry on a real PostgreSQL: add, list, seen (at once, or noted and flushed), touch, revoke,
and lag."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg
import pytest

from aurora.node.db import Pool
from aurora.node.oplog import PgActionLog
from aurora.node.registry import Registry, UnknownDeviceError
from aurora.sync import HybridClock, Operation, new_id


def ops_by(device: str, count: int) -> list[Operation]:
    clock = HybridClock(device)
    return [
        Operation(
            op_id=new_id(), device_id=device, hlc=clock.now().encode(), entity="note", entity_id=f"n{i}",
            fields={"body": f"note {i}"},
        )
        for i in range(count)
    ]  # fmt: skip


async def test_a_new_device_is_listed_active_and_never_seen(registry: Registry) -> None:
    device_id = await registry.add_device("  work laptop ")
    [info] = await registry.list()
    assert (info.id, info.name) == (device_id, "work laptop")
    assert info.revoked_at is None and info.last_seen is None and info.version is None
    assert (info.pending_ops, info.cursor, info.lag) == (0, 0, 0)
    assert await registry.get(device_id) == info
    assert await registry.is_active(device_id)


async def test_devices_are_listed_oldest_first(registry: Registry) -> None:
    ids = [await registry.add_device(name) for name in ("a", "b", "c")]
    assert [d.id for d in await registry.list()] == ids


async def test_a_device_name_must_be_printable_and_short(registry: Registry) -> None:
    for bad in ("", "   ", "x" * 65, "tab\there"):
        with pytest.raises(ValueError, match="device name"):
            await registry.add_device(bad)
    assert await registry.list() == []


async def test_seen_records_what_the_device_reported(registry: Registry) -> None:
    device_id = await registry.add_device("laptop")
    assert await registry.seen(device_id, version="0.1.0", pending=7, cursor=3)
    assert await registry.seen(device_id, pending=2)  # what is not given is kept
    info = await registry.get(device_id)
    assert info is not None
    assert (info.version, info.pending_ops, info.cursor) == ("0.1.0", 2, 3)
    assert info.last_seen is not None
    assert not await registry.seen("no-such-device", pending=1)


async def test_lag_is_what_the_node_holds_past_the_devices_cursor(
    registry: Registry, action_log: PgActionLog
) -> None:
    device_id = await registry.add_device("laptop")
    await action_log.ingest(ops_by("other", 10))
    await registry.seen(device_id, cursor=4)
    info = await registry.get(device_id)
    assert info is not None and info.lag == 6


async def test_touch_admits_active_devices_only(registry: Registry) -> None:
    device_id = await registry.add_device("laptop")
    assert await registry.touch(device_id, "0.2.0")
    info = await registry.get(device_id)
    assert info is not None and info.version == "0.2.0" and info.last_seen is not None
    assert not await registry.touch("no-such-device")
    await registry.revoke(device_id)
    assert not await registry.touch(device_id)


async def test_revoking_is_recorded_once(registry: Registry) -> None:
    device_id = await registry.add_device("lost phone")
    assert await registry.revoke(device_id) is True
    first = await registry.get(device_id)
    assert first is not None and first.revoked_at is not None
    assert await registry.revoke(device_id) is False
    again = await registry.get(device_id)
    assert again is not None and again.revoked_at == first.revoked_at
    assert not await registry.is_active(device_id)
    assert [d.id for d in await registry.list()] == [device_id]  # kept, so its operations keep an author


async def test_revoking_an_unknown_device_says_how_to_find_one(registry: Registry) -> None:
    with pytest.raises(UnknownDeviceError, match="aurora-node devices list"):
        await registry.revoke("nope")
    assert not await registry.is_active("nope")
    assert await registry.get("nope") is None


async def test_sightings_are_written_by_flush_and_merged_meanwhile(pool: Pool) -> None:
    """Requests only note that a device was seen; `flush` writes every note in one statement, the later
    of two notes winning for each value it gives."""
    registry = Registry(pool)
    device_id = await registry.add_device("laptop")
    registry.note_seen(device_id, version="0.1.0", cursor=3)
    registry.note_seen(device_id, pending=7)  # what is not given is kept from the earlier note
    other = Registry(pool)  # another process's view: nothing written yet
    info = await other.get(device_id)
    assert info is not None and info.last_seen is None and info.version is None
    await registry.flush()
    info = await other.get(device_id)
    assert info is not None and info.last_seen is not None
    assert (info.version, info.pending_ops, info.cursor) == ("0.1.0", 7, 3)
    await registry.flush()  # nothing noted since: nothing to do
    registry.note_seen("no-such-device", version="9")  # a device gone meanwhile is skipped, not an error
    await registry.flush()


async def test_this_process_reads_its_own_sightings_at_once(registry: Registry) -> None:
    device_id = await registry.add_device("laptop")
    registry.note_seen(device_id, version="0.2.0", cursor=5)
    info = await registry.get(device_id)
    assert info is not None and info.version == "0.2.0" and info.cursor == 5 and info.last_seen is not None
    [listed] = await registry.list()
    assert listed.version == "0.2.0"


async def test_the_flusher_writes_within_its_interval(pool: Pool) -> None:
    registry = Registry(pool)
    device_id = await registry.add_device("laptop")
    flusher = asyncio.create_task(registry.run_flusher(interval=0.05))
    try:
        registry.note_seen(device_id, version="1.0")
        other = Registry(pool)
        for _ in range(100):
            info = await other.get(device_id)
            if info is not None and info.version == "1.0":
                break
            await asyncio.sleep(0.02)
        assert info is not None and info.version == "1.0"
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher


class _DownPool:
    """A pool whose database is away."""

    def connection(self) -> Any:
        raise psycopg.OperationalError("the database is away")


async def test_sightings_survive_a_failed_flush(pool: Pool) -> None:
    registry = Registry(pool)
    device_id = await registry.add_device("laptop")
    registry._pool = _DownPool()  # type: ignore[assignment]
    registry.note_seen(device_id, version="1.0", cursor=1)
    with pytest.raises(psycopg.OperationalError):
        await registry.flush()
    registry.note_seen(device_id, cursor=2)  # noted while the database was away: merged, newer wins
    registry._pool = pool
    await registry.flush()
    info = await Registry(pool).get(device_id)
    assert info is not None and (info.version, info.cursor) == ("1.0", 2)
