"""The node's database: settings, reaching PostgreSQL (embedded or the user's), and the migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest
from pydantic import ValidationError

from aurora.node.config import NodeSettings
from aurora.node.db import Database, NodeDatabaseError, apply_migrations, describe_conninfo, schema_version
from aurora.schema.migrate import NewerSchemaError, latest_version, load_migrations

LATEST = latest_version("postgres")


async def _connect(url: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def _tables(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> list[str]:
    cur = await conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    return [str(row[0]) for row in await cur.fetchall()]


# --- settings ---------------------------------------------------------------------------------------------


def test_settings_come_from_aurora_node_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AURORA_NODE_PORT", "9000")
    monkeypatch.setenv("AURORA_NODE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AURORA_NODE_DATABASE_URL", "postgresql://a@db/aurora")
    settings = NodeSettings()
    assert (settings.port, settings.data_dir, settings.database_url) == (
        9000,
        tmp_path,
        "postgresql://a@db/aurora",
    )
    assert settings.host == "127.0.0.1"


def test_settings_default_to_the_embedded_server_in_the_platform_data_dir() -> None:
    settings = NodeSettings()
    assert settings.database_url is None
    assert settings.data_dir.name == "aurora-node"


def test_settings_refuse_a_pool_smaller_than_its_minimum() -> None:
    with pytest.raises(ValidationError, match="pool_max"):
        NodeSettings(pool_min=5, pool_max=2)


def test_a_conninfo_is_described_without_its_password() -> None:
    assert describe_conninfo("postgresql://me:hunter2@db.example:6543/aurora") == "me@db.example:6543/aurora"
    assert "hunter2" not in describe_conninfo("host=db password=hunter2 dbname=x")
    assert (
        describe_conninfo("postgresql://postgres:@/postgres?host=/tmp/x") == "postgres@socket /tmp/x/postgres"
    )


# --- reaching PostgreSQL --------------------------------------------------------------------------------


async def test_the_node_opens_the_database_its_url_names(pg_url: str) -> None:
    async with Database.open(NodeSettings(database_url=pg_url, pool_max=2)) as db:
        assert await db.migrate() == []  # the fixture's database is migrated already
        assert await db.schema_version() == LATEST
        async with db.pool.connection() as conn:
            cur = await conn.execute("SELECT 1")
            assert await cur.fetchone() == (1,)
        assert db.server is None
        assert "socket" in db.describe() or ":" in db.describe()


async def test_an_unreachable_database_is_one_line_that_says_what_to_do() -> None:
    url = "postgresql://aurora:hunter2@127.0.0.1:1/aurora"
    with pytest.raises(NodeDatabaseError) as caught:
        await Database.start(NodeSettings(database_url=url))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("cannot reach PostgreSQL at aurora@127.0.0.1:1/aurora: ")
    assert "AURORA_NODE_DATABASE_URL" in message
    assert "hunter2" not in message


async def test_a_malformed_database_url_is_one_line_too() -> None:
    with pytest.raises(
        NodeDatabaseError, match=r"^cannot reach PostgreSQL at an unparsable database URL: .*URL"
    ):
        await Database.start(NodeSettings(database_url="not a url"))


async def test_the_embedded_server_starts_in_the_data_dir_and_stops_on_close(tmp_path: Path) -> None:
    settings = NodeSettings(data_dir=tmp_path / "node")
    try:
        db = await Database.start(settings)
    except NodeDatabaseError as error:
        pytest.skip(f"the embedded PostgreSQL cannot start here: {error}")
    try:
        assert [m.version for m in await db.migrate()] == list(range(1, LATEST + 1))
        assert db.describe() == f"embedded PostgreSQL in {(tmp_path / 'node' / 'pg').resolve()}"
        assert (tmp_path / "node" / "pg" / "PG_VERSION").exists()
        async with db.pool.connection() as conn:
            cur = await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            assert await cur.fetchone() == (1,), "the embedded server ships pgvector"
    finally:
        await db.close()
    with pytest.raises(psycopg.OperationalError):
        await psycopg.AsyncConnection.connect(db.conninfo, connect_timeout=2)


# --- migrations -----------------------------------------------------------------------------------------


async def test_migrations_apply_from_empty_each_recorded(empty_pg_url: str) -> None:
    async with await _connect(empty_pg_url) as conn:
        assert await schema_version(conn) == 0
        applied = await apply_migrations(conn, now=lambda: "2026-11-27T09:00:00+00:00")
        assert [m.version for m in applied] == list(range(1, LATEST + 1))
        cur = await conn.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
        rows = await cur.fetchall()
        assert rows == [(m.version, m.name, "2026-11-27T09:00:00+00:00") for m in load_migrations("postgres")]
        assert {"ops", "entities", "devices", "schema_migrations"} <= set(await _tables(conn))
        assert await schema_version(conn) == LATEST


async def test_running_the_migrations_again_changes_nothing(empty_pg_url: str) -> None:
    async with await _connect(empty_pg_url) as conn:
        await apply_migrations(conn)
        before = await _tables(conn)
        assert await apply_migrations(conn) == []
        assert await _tables(conn) == before


async def test_a_database_from_a_newer_node_is_refused_untouched(empty_pg_url: str) -> None:
    async with await _connect(empty_pg_url) as conn:
        await conn.execute(
            "CREATE TABLE schema_migrations (version int PRIMARY KEY, name text, applied_at text)"
        )
        await conn.execute("INSERT INTO schema_migrations VALUES (%s, 'future', 'then')", (LATEST + 1,))
        with pytest.raises(NewerSchemaError) as caught:
            await apply_migrations(conn)
        assert (caught.value.found, caught.value.supported) == (LATEST + 1, LATEST)
        assert "\n" not in str(caught.value)
        assert await _tables(conn) == ["schema_migrations"]
        cur = await conn.execute("SELECT count(*) FROM schema_migrations")
        assert await cur.fetchone() == (1,)


async def test_a_failing_migration_leaves_nothing_behind(empty_pg_url: str) -> None:
    broken = [*load_migrations("postgres")[:1]]
    broken.append(type(broken[0])(2, "broken", "CREATE TABLE half_done (x int); SELECT no_such_function();"))
    async with await _connect(empty_pg_url) as conn:
        with pytest.raises(psycopg.errors.UndefinedFunction):
            await apply_migrations(conn, broken)
        assert await schema_version(conn) == 1
        assert "half_done" not in await _tables(conn)


async def test_two_migrators_at_once_apply_each_migration_once(empty_pg_url: str) -> None:
    async with await _connect(empty_pg_url) as first, await _connect(empty_pg_url) as second:
        done = await asyncio.gather(apply_migrations(first), apply_migrations(second))
        versions = sorted(m.version for batch in done for m in batch)
        assert versions == list(range(1, LATEST + 1))
        cur = await first.execute("SELECT version FROM schema_migrations ORDER BY version")
        assert [row[0] for row in await cur.fetchall()] == list(range(1, LATEST + 1))


async def test_migrating_needs_an_autocommit_connection(empty_pg_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(empty_pg_url) as conn:
        with pytest.raises(ValueError, match="autocommit"):
            await apply_migrations(conn)
