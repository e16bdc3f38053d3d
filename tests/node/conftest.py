"""Fixtures for the node's tests: one real PostgreSQL per session, a fresh database per test.

Without PostgreSQL binaries (or a reachable `AURORA_NODE_DATABASE_URL`) the tests skip with the reason,
which the repository's conftest turns into a failure under `AURORA_CI=1`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aurora.node.db import Pool
from aurora.node.oplog import PgActionLog
from aurora.node.registry import Registry
from tests.node.pgtest import PgTestServer


@pytest.fixture
async def pg_url(pg_server: PgTestServer) -> AsyncIterator[str]:
    """A fresh database with every migration applied."""
    async with pg_server.database() as url:
        yield url


@pytest.fixture
async def empty_pg_url(pg_server: PgTestServer) -> AsyncIterator[str]:
    """A fresh database with nothing in it (not even `schema_migrations`)."""
    async with pg_server.database(migrated=False) as url:
        yield url


@pytest.fixture
async def pool(pg_server: PgTestServer, pg_url: str) -> AsyncIterator[Pool]:
    async with pg_server.pool(pg_url) as opened:
        yield opened


@pytest.fixture
def action_log(pool: Pool) -> PgActionLog:
    return PgActionLog(pool)


@pytest.fixture
def registry(pool: Pool) -> Registry:
    return Registry(pool)
