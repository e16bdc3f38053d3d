"""Shared plumbing for services: record a change with its undo step, and convert rows to models."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from aurora.app.errors import InvalidInputError, NotFoundError
from aurora.app.history import Change, History
from aurora.app.store import Store
from aurora.schema import EntityKind


def iso(value: datetime | None) -> str | None:
    """Times are stored in UTC, so their text sorts in time order whatever zone they were made in."""
    return value.astimezone(UTC).isoformat() if value is not None else None


def like_escape(text: str) -> str:
    """`text` for a LIKE pattern with ESCAPE '\\': its own %, _ and backslashes taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def parse_stamp(value: str | None) -> datetime:
    """A creation or update time; a row whose creating operation has not arrived yet has none."""
    return datetime.fromisoformat(value) if value else _NEVER


def validation_message(exc: ValueError) -> str:
    """The first problem in a validation error, as one line ("title: a task needs a title")."""
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        return f"{where}: {msg}" if where else msg
    return str(exc)


class EntityService:
    """Base of the task and note services: every write is an operation plus an undo step."""

    kind: EntityKind

    def __init__(self, store: Store, now: Callable[[], datetime]) -> None:
        self._store = store
        self._now = now
        self.history = History()

    def _write(
        self, description: str, edits: list[tuple[str, dict[str, Any]]], *, undoable: bool = True
    ) -> None:
        """Apply `edits` (entity id, fields) in one transaction, skipping fields already equal."""
        changes: list[Change] = []
        stamp = iso(self._now())
        with self._store.transaction() as tx:
            for entity_id, fields in edits:
                before = tx.load(self.kind, entity_id)
                old = before.values if before else {}
                delta = {k: v for k, v in fields.items() if k not in old or old[k] != v}
                if not delta:
                    continue
                delta["updated_at"] = stamp
                tx.change(self.kind, entity_id, delta)
                previous = {k: old.get(k) for k in delta} if before else {"deleted": True}
                changes.append(Change(self.kind, entity_id, previous, delta))
        if undoable:
            self.history.record(description, changes)

    def _write_back(self, changes: tuple[Change, ...], undo: bool) -> None:
        """Restore one side of each change (`before` to undo, `after` to redo), field by field, but only
        where the field still holds the other side: a field changed since (by the CLI, or later by sync)
        is the newer intent and is left alone."""
        with self._store.transaction() as tx:
            for change in reversed(changes) if undo else changes:
                expected, target = (change.after, change.before) if undo else (change.before, change.after)
                state = tx.load(change.kind, change.entity_id)
                current = state.values if state else {}
                fields = {
                    name: value
                    for name, value in target.items()
                    if name != "updated_at" and name in current and current[name] == expected.get(name)
                }
                if fields:
                    fields["updated_at"] = iso(self._now())
                    tx.change(change.kind, change.entity_id, fields)

    def undo(self) -> str | None:
        """Reverse the last change; its description, or None when there is nothing to undo."""
        return self.history.undo(self._write_back)

    def redo(self) -> str | None:
        return self.history.redo(self._write_back)

    def _not_found(self, entity_id: str) -> NotFoundError:
        return NotFoundError(f"no {self.kind} with id {entity_id}; list them with `aurora {self.kind} list`")

    def resolve_id(self, short: str) -> str:
        """A full id from the short id the CLI shows (its last 8 characters) or any longer tail of it.

        UUIDv7 ids start with a timestamp, so ids made together share their first characters; their
        random tails tell them apart.
        """
        short = short.strip()
        if len(short) < 4:
            raise InvalidInputError(f"give at least 4 characters of the {self.kind} id, not '{short}'")
        table = "tasks" if self.kind == "task" else "notes"
        rows = self._store.query(
            f"SELECT id FROM {table} WHERE deleted = 0 AND id LIKE ? ESCAPE '\\' LIMIT 2",
            ("%" + like_escape(short),),
        )
        if not rows:
            raise NotFoundError(f"no {self.kind} id ends with '{short}'; see `aurora {self.kind} list`")
        if len(rows) > 1:
            raise InvalidInputError(f"'{short}' matches several {self.kind}s; give more of the id")
        return str(rows[0][0])


def short_id(entity_id: str) -> str:
    """What the CLI shows of an id."""
    return entity_id[-8:]
