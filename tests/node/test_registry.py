"""The device registry on a real PostgreSQL: add, list, seen, touch, revoke, and lag."""

from __future__ import annotations

import pytest

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
