"""Idle pulls checked together on a real PostgreSQL: many devices asking at once share statements, each
gets its own standing, and every answer is read after it was asked."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from aurora.node.auth import revoke_device
from aurora.node.db import Pool
from aurora.node.idle_pulls import IdleAnswer, IdlePulls
from aurora.node.oplog import PgActionLog
from aurora.node.registry import Registry
from tests.node.test_registry import ops_by


class _CountedIdlePulls(IdlePulls):
    """The real checker, counting the statements it runs."""

    statements = 0

    async def _read(self, devices: list[str]) -> tuple[int, frozenset[str]]:
        self.statements += 1
        return await super()._read(devices)


async def test_concurrent_pulls_share_statements_and_each_gets_its_own_standing(
    pool: Pool, registry: Registry
) -> None:
    active = [await registry.add_device(f"laptop-{i}") for i in range(20)]
    revoked = await registry.add_device("stolen")
    await revoke_device(pool, revoked)
    idle = _CountedIdlePulls(pool)
    asked = [*active, revoked, "never-paired"] * 5
    answers = await asyncio.gather(*(idle.check(device) for device in asked))
    assert answers == [IdleAnswer(0, device in active) for device in asked]
    # The first question runs alone; everything asked while it was out shares the next statement.
    assert idle.statements <= 3, idle.statements


async def test_an_answer_is_read_after_the_question(pool: Pool, registry: Registry) -> None:
    """Nothing is remembered between statements: a push or a revocation counts for the next check."""
    laptop = await registry.add_device("laptop")
    other = await registry.add_device("other")
    idle = IdlePulls(pool)
    assert await idle.check(laptop) == IdleAnswer(0, True)
    await PgActionLog(pool).ingest(ops_by(other, 3))
    assert await idle.check(laptop) == IdleAnswer(3, True)
    await revoke_device(pool, laptop)
    assert await idle.check(laptop) == IdleAnswer(3, False)


async def test_a_failed_statement_fails_each_waiting_pull_and_the_next_one_retries(
    pool: Pool, registry: Registry
) -> None:
    laptop = await registry.add_device("laptop")

    class _DownOnce(IdlePulls):
        down = True

        async def _read(self, devices: list[str]) -> tuple[int, frozenset[str]]:
            if self.down:
                self.down = False
                raise psycopg.OperationalError("the database is away")
            return await super()._read(devices)

    idle = _DownOnce(pool)
    results = await asyncio.gather(idle.check(laptop), idle.check(laptop), return_exceptions=True)
    assert all(isinstance(r, psycopg.OperationalError) for r in results), results
    assert await idle.check(laptop) == IdleAnswer(0, True)


async def test_a_pull_that_gives_up_does_not_stop_the_others(pool: Pool, registry: Registry) -> None:
    laptop = await registry.add_device("laptop")
    idle = IdlePulls(pool)
    leaving = asyncio.ensure_future(idle.check(laptop))
    staying = asyncio.ensure_future(idle.check(laptop))
    await asyncio.sleep(0)
    leaving.cancel()
    assert await staying == IdleAnswer(0, True)
    with pytest.raises(asyncio.CancelledError):
        await leaving
