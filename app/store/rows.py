"""Mapping between operation field values (JSON) and table columns, per entity kind."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from aurora.schema import ENTITY_FIELDS, EntityKind
from aurora.sync import EntityState

TABLES: dict[EntityKind, str] = {
    "task": "tasks",
    "note": "notes",
    "item": "items",
    "person": "people",
    "interaction": "interactions",
    "conversation": "conversations",
    "message": "messages",
    "action": "actions",
}
_BOOLS: dict[EntityKind, frozenset[str]] = {
    "task": frozenset({"urgent", "important", "manual", "deleted"}),
    "note": frozenset({"pinned", "deleted"}),
    "item": frozenset({"deleted"}),
    "person": frozenset({"vip", "deleted"}),
    "interaction": frozenset({"deleted"}),
    "conversation": frozenset({"deleted"}),
    "message": frozenset({"local", "deleted"}),
    "action": frozenset({"deleted"}),
}
_JSON = frozenset({"tags", "participants", "extra", "emails", "phones", "sources", "payload"})
"""Fields stored as JSON text: lists and objects."""
COLUMNS: dict[EntityKind, tuple[str, ...]] = {
    kind: ("id", *sorted(ENTITY_FIELDS[kind]), "field_clocks") for kind in TABLES
}


def to_column(kind: EntityKind, name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _BOOLS[kind]:
        return 1 if value else 0
    if name in _JSON:
        return json.dumps(value)
    return value


def from_column(kind: EntityKind, name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _BOOLS[kind]:
        return bool(value)
    if name in _JSON:
        return json.loads(value)
    return value


def state_from_row(kind: EntityKind, row: Sequence[Any]) -> EntityState:
    """An EntityState from a row selected with COLUMNS[kind]. Only fields some operation set are kept."""
    names = COLUMNS[kind]
    clocks: dict[str, str] = json.loads(row[-1])
    values = {
        name: from_column(kind, name, row[i]) for i, name in enumerate(names[1:-1], start=1) if name in clocks
    }
    return EntityState(values, clocks)


@cache
def insert_sql(kind: EntityKind, names: tuple[str, ...]) -> str:
    return f"INSERT INTO {TABLES[kind]} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"


@cache
def update_sql(kind: EntityKind, names: tuple[str, ...]) -> str:
    """An UPDATE of just these columns: an index whose columns are not set is not rewritten."""
    sets = ", ".join(f"{n} = :{n}" for n in names)
    return f"UPDATE {TABLES[kind]} SET {sets}, field_clocks = :field_clocks WHERE id = :id"
