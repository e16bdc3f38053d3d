"""Opening a workspace database: pragmas, extensions, migrations, and errors in words.

SQLite is reached through apsw, which ships its own modern SQLite (with FTS5) and can load the sqlite-vec
extension on Pythons whose `sqlite3` module cannot load extensions at all.
"""

from __future__ import annotations

import errno
import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import apsw

from aurora.app.errors import (
    CorruptDatabaseError,
    DiskFullError,
    NewerDatabaseError,
    ReadOnlyError,
    StoreError,
)
from aurora.schema.migrate import NewerSchemaError, latest_version, migrate


@dataclass(frozen=True)
class DatabaseInfo:
    sqlite_version: str
    apsw_version: str
    vec_version: str | None
    fts5: bool
    schema_version: int
    supported_schema_version: int


@cache
def _vec_extension() -> str | None:
    """The sqlite-vec extension's file, found without importing the `sqlite_vec` package: its __init__
    imports numpy (about 65 ms), and every `aurora` start would pay for it."""
    spec = importlib.util.find_spec("sqlite_vec")
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(Path(next(iter(spec.submodule_search_locations))) / "vec0")


def _load_vec(conn: apsw.Connection) -> str | None:
    try:
        conn.enable_load_extension(True)
        extension = _vec_extension()
        if extension is None:
            return None
        conn.load_extension(extension)
        conn.enable_load_extension(False)
        row = conn.execute("SELECT vec_version()").fetchone()
        return str(row[0]) if row else None
    except apsw.Error:
        return None


def vec_version(conn: apsw.Connection) -> str | None:
    """sqlite-vec's version on this connection, None when the extension did not load."""
    try:
        row = conn.execute("SELECT vec_version()").fetchone()
    except apsw.Error:
        return None
    return str(row[0]) if row else None


def has_fts5(conn: apsw.Connection) -> bool:
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.aurora_fts5_probe USING fts5(x)")
        conn.execute("DROP TABLE temp.aurora_fts5_probe")
        return True
    except apsw.Error:
        return False


def probe_extensions() -> DatabaseInfo:
    """What this installation's SQLite can do, without touching any workspace (for `aurora doctor`)."""
    conn = apsw.Connection(":memory:")
    try:
        return DatabaseInfo(
            sqlite_version=apsw.sqlite_lib_version(),
            apsw_version=apsw.apsw_version(),
            vec_version=_load_vec(conn),
            fts5=has_fts5(conn),
            schema_version=0,
            supported_schema_version=latest_version(),
        )
    finally:
        conn.close()


@contextmanager
def translate_errors(path: Path) -> Iterator[None]:
    """Turn SQLite and OS errors into one-line messages that say what to do."""
    try:
        yield
    except (apsw.NotADBError, apsw.CorruptError):
        raise CorruptDatabaseError(
            f"{path} is damaged or not an Aurora database; restore it from a backup or an `aurora export`, "
            "or pick another with --workspace (the file was not changed)"
        ) from None
    except apsw.FullError:
        raise DiskFullError(
            f"the disk holding {path} is full; free some space and try again (nothing was lost)"
        ) from None
    except (apsw.ReadOnlyError, apsw.CantOpenError, apsw.PermissionsError):
        raise ReadOnlyError(
            f"cannot open {path} for writing (no permission, or a read-only disk); check the folder's "
            "permissions or pick another with --workspace"
        ) from None
    except apsw.BusyError:
        raise StoreError(
            f"{path} is busy in another process; close the other Aurora or raise busy_timeout_ms"
        ) from None
    except apsw.IOError as exc:
        if _disk_is_full(exc):
            raise DiskFullError(
                f"the disk holding {path} is full; free some space and try again (nothing was lost)"
            ) from None
        raise StoreError(f"cannot read or write {path} ({exc}); check the disk") from None
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTDIR):
            raise StoreError(
                f"cannot make the folder for {path}: part of that path is a file, not a folder; remove or "
                "rename it, or pick another --workspace"
            ) from None
        if exc.errno in (errno.ENOSPC, errno.EFBIG):
            raise DiskFullError(
                f"the disk holding {path} is full; free some space and try again (nothing was lost)"
            ) from None
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise ReadOnlyError(
                f"cannot write {path} ({exc.strerror}); check the folder's permissions or pick another "
                "with --workspace"
            ) from None
        raise StoreError(f"cannot use {path}: {exc.strerror or exc}") from None


def _disk_is_full(exc: apsw.Error) -> bool:
    # With RLIMIT_FSIZE or a full disk, SQLite reports SQLITE_IOERR_WRITE / SQLITE_FULL variants.
    extended = getattr(exc, "extendedresult", 0)
    return extended in {apsw.SQLITE_FULL, apsw.SQLITE_IOERR_WRITE, apsw.SQLITE_IOERR_FSYNC}


def open_connection(path: Path, *, busy_timeout_ms: int) -> apsw.Connection:
    """A configured connection to an existing or new database (no migrations here)."""
    with translate_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
        conn = apsw.Connection(str(path), flags=flags)
        conn.set_busy_timeout(busy_timeout_ms)
        _load_vec(conn)
        # Reading the header here makes a damaged file fail now, with a clear message, not mid-session.
        conn.execute("PRAGMA schema_version").fetchone()
        conn.execute("PRAGMA foreign_keys = ON")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise StoreError(f"cannot switch {path} to WAL mode; is it on a network file system?")
        # FULL: a commit survives power loss (NORMAL can lose the last commits). Its cost is one flush.
        conn.execute("PRAGMA synchronous = FULL")
        return conn


_HEADER = b"SQLite format 3\x00"


def check_not_truncated(path: Path) -> None:
    """Refuse a database file shorter than its own header says: a cheap test, at every open, for the
    commonest damage (a copy or a sync cut short). The full `quick_check` reads the whole file, which grows
    with the workspace, so it runs in `aurora doctor` instead."""
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        # A checkpoint cut short (a full disk) leaves the file short of its header's size while the WAL
        # still holds every page; SQLite completes it on open. Only a file without a WAL is judged here.
        return
    try:
        with path.open("rb") as f:
            header = f.read(100)
            size = f.seek(0, 2)
    except OSError:
        return  # opening will say what is wrong
    if len(header) < 100 or not header.startswith(_HEADER):
        return  # not SQLite at all, or empty: SQLite's own check gives the message
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The in-header size is valid only when the "version-valid-for" number matches the change counter.
    if header[92:96] == header[24:28] and pages * page_size > size:
        raise CorruptDatabaseError(
            f"{path} is damaged: cut short at {size} of {pages * page_size} bytes; restore it from a backup "
            "or an `aurora export`, or pick another with --workspace (the file was not changed)"
        )


def quick_check(conn: apsw.Connection, path: Path) -> None:
    with translate_errors(path):
        rows = conn.execute("PRAGMA quick_check").fetchall()
    if [tuple(r) for r in rows] != [("ok",)]:
        raise CorruptDatabaseError(
            f"{path} failed its integrity check ({rows[0][0]}); restore it from a backup or an "
            "`aurora export` (the file was not changed)"
        )


def migrate_database(conn: apsw.Connection, path: Path) -> int:
    """Bring the schema up to date; returns the version now in the database."""

    @contextmanager
    def immediate() -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    with translate_errors(path):
        try:
            migrate(conn, immediate, now=lambda: datetime.now(UTC).isoformat())
        except NewerSchemaError as exc:
            raise NewerDatabaseError(f"{path}: {exc}") from None
        row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0


def describe(conn: apsw.Connection) -> DatabaseInfo:
    row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    probe = probe_extensions()
    return DatabaseInfo(
        sqlite_version=probe.sqlite_version,
        apsw_version=probe.apsw_version,
        vec_version=probe.vec_version,
        fts5=probe.fts5,
        schema_version=int(row[0]) if row and row[0] else 0,
        supported_schema_version=latest_version(),
    )


def file_is_writable(path: Path) -> bool:
    target = path if path.exists() else path.parent
    while not target.exists():
        target = target.parent
    return os.access(target, os.W_OK)


__all__ = [
    "DatabaseInfo",
    "describe",
    "file_is_writable",
    "migrate_database",
    "open_connection",
    "probe_extensions",
    "quick_check",
    "translate_errors",
]
