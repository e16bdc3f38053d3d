"""Fresh `ActionLog`s of both kinds for the contract suite: the laptop's SQLite log over a new store file,
and the node's PostgreSQL log over a database emptied for each use."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

from aurora.app.store import Store
from aurora.app.sync_log import SqliteActionLog
from aurora.node.db import Pool
from aurora.node.oplog import PgActionLog
from aurora.sync.protocol import ActionLog
from tests.node.pgtest import PgTestServer

RESET_NODE = "TRUNCATE ops, entities RESTART IDENTITY"


class Replicas(Protocol):
    """Hands out empty replicas of one kind. Only the latest one handed out may be used: handing out the
    next closes or empties it (Hypothesis examples take one or two each, one after the other)."""

    name: str

    async def fresh(self) -> ActionLog: ...


class SqliteReplicas:
    name = "sqlite"

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._made = 0
        self._store: Store | None = None

    async def fresh(self) -> SqliteActionLog:
        self.close()
        self._made += 1
        self._store = Store.open(self._folder / f"replica-{self._made}.db")
        return SqliteActionLog(self._store)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


class PgReplicas:
    name = "postgres"

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def fresh(self) -> PgActionLog:
        async with self._pool.connection() as conn:
            await conn.execute(RESET_NODE)
        return PgActionLog(self._pool)


@asynccontextmanager
async def sqlite_replicas(parent: Path) -> AsyncIterator[SqliteReplicas]:
    """Store files in a new folder under `parent`, removed after the block."""
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent) as folder:
        replicas = SqliteReplicas(Path(folder))
        try:
            yield replicas
        finally:
            replicas.close()


@asynccontextmanager
async def pg_replicas(server: PgTestServer) -> AsyncIterator[PgReplicas]:
    """One database for the block, emptied for each replica."""
    async with server.database() as url, server.pool(url, max_size=2) as pool:
        yield PgReplicas(pool)
