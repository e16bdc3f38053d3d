"""Numbered SQL migrations and the rules for applying them.

Migrations are files `NNNN_name.sql` in `schema/sqlite/` and `schema/postgres/`. Each is applied in
one transaction and recorded in `schema_migrations`. A database that records a version newer than the
newest file this Aurora ships was written by a newer Aurora: it is refused, never altered.

The runner here is synchronous and driver-agnostic: it needs only a connection-like object with `execute`,
and a context manager that wraps one transaction. The node's PostgreSQL is async (psycopg), so it has its
own small runner (`aurora.node.db`) that applies the same files by the same rules.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgres"]

_NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


class NewerSchemaError(Exception):
    """The database was written by a newer Aurora than this one."""

    def __init__(self, found: int, supported: int) -> None:
        super().__init__(
            f"this database is at schema version {found}, but this Aurora knows only up to {supported}; "
            "upgrade Aurora to open it (the file was left untouched)"
        )
        self.found = found
        self.supported = supported


class Executor(Protocol):
    def execute(self, sql: str, params: Any = ..., /) -> Iterable[Any]: ...


def load_migrations(dialect: Dialect = "sqlite") -> list[Migration]:
    """All migrations shipped for `dialect`, in version order."""
    found: list[Migration] = []
    for entry in resources.files(f"aurora.schema.{dialect}").iterdir():
        match = _NAME_RE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations for {dialect} are not numbered 1..n: {versions}")
    return found


def latest_version(dialect: Dialect = "sqlite") -> int:
    return len(load_migrations(dialect))


def current_version(conn: Executor) -> int:
    """The newest version recorded in the database, 0 for an empty one."""
    exists = list(
        conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    )
    if not exists:
        return 0
    rows = list(conn.execute("SELECT max(version) FROM schema_migrations"))
    return int(rows[0][0] or 0)


def pending(conn: Executor, migrations: list[Migration]) -> list[Migration]:
    """The migrations still to apply; raises NewerSchemaError for a database from the future."""
    current = current_version(conn)
    supported = migrations[-1].version if migrations else 0
    if current > supported:
        raise NewerSchemaError(current, supported)
    return [m for m in migrations if m.version > current]


def migrate(
    conn: Executor,
    transaction: Callable[[], AbstractContextManager[object]],
    migrations: list[Migration] | None = None,
    now: Callable[[], str] | None = None,
) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; return those applied.

    Another process may be migrating the same database at the same moment (two `aurora` commands on a
    new workspace): each migration re-checks the version inside its own write transaction, so whichever
    process comes second skips what the first has done.
    """
    every = migrations if migrations is not None else load_migrations()
    todo = pending(conn, every)
    applied: list[Migration] = []
    for migration in todo:
        with transaction():
            if current_version(conn) >= migration.version:
                continue
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, now() if now else ""),
            )
        applied.append(migration)
    return applied


def _statements(sql: str) -> Iterator[str]:
    """Split a migration into statements. `sqlite3.complete_statement` knows SQLite's grammar (a trigger's
    body holds semicolons of its own), and needs no connection, so no driver is involved."""
    buf: list[str] = []
    for line in sql.splitlines():
        if not buf and (not line.strip() or line.strip().startswith("--")):
            continue
        buf.append(line)
        statement = "\n".join(buf)
        if sqlite3.complete_statement(statement):
            buf = []
            yield statement.strip()
    tail = "\n".join(buf).strip()
    if tail:
        yield tail
