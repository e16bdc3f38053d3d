"""Robbie's mood on the node, against a real PostgreSQL: the job reads the workload from entities written
by real operations, derives the same mood the laptop's pure function gives, serves it at `GET /v1/mood`,
runs again on its interval, and stops with the app."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from aurora.app.mood import Workload, derive_mood
from aurora.node.api import create_app
from aurora.node.config import NodeSettings
from aurora.node.db import Pool, connect_pool
from aurora.node.oplog import PgActionLog
from aurora.node.scheduler import MOOD_JOB, MoodJob, NodeScheduler, read_workload
from aurora.schema import Item, ItemKind, Quadrant, Task, TaskStatus
from aurora.sync import HybridClock, Operation, new_id
from tests.conftest import FIXED_NOW
from tests.node.server import pairing_code, running_node

NOW = FIXED_NOW


class Laptop:
    """Writes entities the way a laptop does: one creating operation with every field."""

    def __init__(self, log: PgActionLog) -> None:
        self.log = log
        self.clock = HybridClock("laptop-1")

    async def create(self, kind: str, entity: BaseModel) -> str:
        fields = entity.model_dump(mode="json", exclude={"id"})
        entity_id = str(entity.id)  # type: ignore[attr-defined]
        op = Operation(
            op_id=new_id(),
            device_id="laptop-1",
            hlc=self.clock.now().encode(),
            entity=kind,  # type: ignore[arg-type]
            entity_id=entity_id,
            fields=fields,
        )
        await self.log.ingest([op])
        return entity_id

    async def update(self, kind: str, entity_id: str, **fields: Any) -> None:
        op = Operation(
            op_id=new_id(),
            device_id="laptop-1",
            hlc=self.clock.now().encode(),
            entity=kind,  # type: ignore[arg-type]
            entity_id=entity_id,
            fields=fields,
        )
        await self.log.ingest([op])

    async def task(self, title: str, **fields: Any) -> str:
        return await self.create(
            "task", Task(id=new_id(), created_at=NOW, updated_at=NOW, title=title, **fields)
        )

    async def event(self, title: str, starts: datetime, kind: ItemKind = ItemKind.EVENT) -> str:
        item = Item(
            id=new_id(),
            created_at=NOW,
            updated_at=NOW,
            kind=kind,
            source="ics",
            external_id=new_id(),
            title=title,
            occurred_at=starts,
        )
        return await self.create("item", item)


async def message(pool: Pool, text: str, at: datetime, role: str = "user", deleted: bool = False) -> None:
    """A `message` entity as the chat writes it. Inserted as replica state directly: the test does not
    depend on the chat's entity kind being known to this checkout's operation checks."""
    values = {
        "conversation_id": "c1",
        "role": role,
        "text": text,
        "position": 0,
        "created_at": at.isoformat(),
        "updated_at": at.isoformat(),
        "deleted": deleted,
    }
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO entities (entity, entity_id, \"values\", clocks) VALUES ('message', %s, %s, '{}')",
            (new_id(), json.dumps(values)),
        )


async def seed_a_heavy_day(pool: Pool) -> tuple[str, ...]:
    """2 overdue (one of them do-first), 1 more do-first, 2 meetings within 3 h, and recent messages; plus
    everything that must not count. Returns the user's last five messages, oldest first."""
    laptop = Laptop(PgActionLog(pool))
    await laptop.task("File the tax return", due=NOW - timedelta(days=2), quadrant=Quadrant.DO_FIRST)
    await laptop.task("Call the bank", due=NOW - timedelta(hours=1), quadrant=Quadrant.SCHEDULE)
    await laptop.task("Board deck", quadrant=Quadrant.DO_FIRST)
    await laptop.task("Plan the offsite", due=NOW + timedelta(days=20), quadrant=Quadrant.SCHEDULE)
    await laptop.task(
        "Old, done", due=NOW - timedelta(days=9), status=TaskStatus.DONE, quadrant=Quadrant.DO_FIRST
    )
    gone = await laptop.task("Deleted", due=NOW - timedelta(days=3), quadrant=Quadrant.DO_FIRST)
    await laptop.update("task", gone, deleted=True)

    await laptop.event("Standup", NOW + timedelta(hours=1))
    await laptop.event("Review", NOW + timedelta(hours=2, minutes=30))
    await laptop.event("Tomorrow's", NOW + timedelta(days=1))
    await laptop.event("This morning's", NOW - timedelta(hours=2))
    await laptop.event("A mail, not a meeting", NOW + timedelta(hours=1), kind=ItemKind.MAIL)
    cancelled = await laptop.event("Cancelled", NOW + timedelta(hours=1))
    await laptop.update("item", cancelled, deleted=True)

    await message(pool, "overwhelmed, panic, stressed", NOW - timedelta(days=2))  # too long ago
    said = [f"message {n}" for n in range(4)] + ["I'm swamped and behind, everything is late"]
    await message(pool, "an early one", NOW - timedelta(hours=1, minutes=10))
    for n, text in enumerate(said):
        await message(pool, text, NOW - timedelta(minutes=50 - n))
    await message(pool, "Sorry, that failed: stuck, broken", NOW - timedelta(minutes=1), role="assistant")
    await message(pool, "panic panic panic", NOW - timedelta(minutes=2), deleted=True)
    return tuple(said)


async def test_the_job_derives_the_mood_from_the_replica_state(pool: Pool) -> None:
    said = await seed_a_heavy_day(pool)
    job = MoodJob(pool, now=lambda: NOW)

    reading = await job.run()

    expected = Workload(overdue=2, do_first=2, meetings_soon=2, recent_messages=said, sync=None)
    assert reading.workload == expected
    assert reading.mood == derive_mood(expected)  # the laptop's own pure function
    assert reading.mood.label == "stretched"
    assert reading.mood.status == "stretched · 2 overdue · 2 to do first · 2 meetings in 3 h"
    assert reading.at == NOW and job.latest == reading and job.last_error is None


async def test_no_tasks_no_meetings_no_chat_is_calm(pool: Pool) -> None:
    workload = await read_workload(pool, NOW)
    assert workload == Workload()
    assert derive_mood(workload).label == "calm"


async def test_a_failed_read_keeps_the_last_mood(pg_url: str) -> None:
    pool = await connect_pool(pg_url, 1, 1)
    job = MoodJob(pool, now=lambda: NOW)
    first = await job.run()
    await pool.close()

    await job.tick()  # the database is gone: logged, not raised

    assert job.latest == first and job.last_error


async def test_the_scheduler_runs_the_job_again_on_its_interval(pool: Pool) -> None:
    scheduler = NodeScheduler(pool, mood_every=timedelta(seconds=0.2))
    scheduler.start()
    try:
        await _until(lambda: scheduler.mood.latest is not None)
        assert scheduler.mood.latest is not None and scheduler.mood.latest.mood.label == "calm"
        await Laptop(PgActionLog(pool)).task("Overdue", due=datetime.now(NOW.tzinfo) - timedelta(hours=1))
        await _until(
            lambda: scheduler.mood.latest is not None and scheduler.mood.latest.workload.overdue == 1
        )
    finally:
        await scheduler.stop()
    assert not scheduler.running
    last = scheduler.mood.latest
    await asyncio.sleep(0.6)  # three intervals: nothing runs it any more
    assert scheduler.mood.latest is last and scheduler.scheduler.get_job(MOOD_JOB) is None


async def test_the_app_starts_the_scheduler_and_stops_it_at_shutdown(pg_url: str, tmp_path: Path) -> None:
    app = create_app(NodeSettings(database_url=pg_url, data_dir=tmp_path))
    async with app.router.lifespan_context(app):
        scheduler: NodeScheduler = app.state.scheduler
        assert scheduler.running
        await _until(lambda: scheduler.mood.latest is not None)
    assert not scheduler.running


def test_get_mood_is_authenticated_and_answers_the_latest_mood(pg_url: str, tmp_path: Path) -> None:
    async def seed() -> None:
        pool = await connect_pool(pg_url, 1, 1)
        try:
            await Laptop(PgActionLog(pool)).task("Overdue", due=datetime.now(NOW.tzinfo) - timedelta(days=1))
        finally:
            await pool.close()

    asyncio.run(seed())
    with running_node(pg_url, tmp_path / "node") as node:
        refused = httpx.get(f"{node}/v1/mood")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        code = pairing_code(pg_url, "laptop")
        token = httpx.post(f"{node}/v1/pair", json={"code": code, "name": "laptop"}).json()["access_token"]

        answer = httpx.get(f"{node}/v1/mood", headers={"Authorization": f"Bearer {token}"})

        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["label"] == "focused" and body["level"] == 1
        assert body["status"] == "focused · 1 overdue"
        assert body["workload"] == {
            "overdue": 1,
            "do_first": 0,
            "meetings_soon": 0,
            "horizon_hours": 3.0,
            "recent_messages": 0,
        }
        assert "/v1/mood" in httpx.get(f"{node}/openapi.json").json()["paths"]


async def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("the condition did not hold in time")
        await asyncio.sleep(0.02)


def test_the_node_job_loads_none_of_the_laptops_store() -> None:
    laptop = ["aurora.app.store", "aurora.app.workspace", "aurora.app.assistant", "apsw", "textual"]
    code = f"import sys, aurora.node.scheduler; print(' '.join(m for m in {laptop!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
