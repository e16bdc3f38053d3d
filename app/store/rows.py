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


compact_json = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
"""JSON as stored in a JSON column and in the log's `fields`: compact, non-ASCII escaped, strict (NaN or an
infinity raises: SQLite's JSON functions would turn them into null and 9e999 on the way to the node). SQLite
gives a value's text back exactly as written in this form, so a row written from a JSON array in SQL
(`insert_from_json_sql`) holds the same text as one written from Python."""


def to_column(kind: EntityKind, name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _BOOLS[kind]:
        return 1 if value else 0
    if name in _JSON:
        return compact_json(value)
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
def insert_from_json_sql(kind: EntityKind, names: tuple[str, ...]) -> str:
    """`INSERT`s of new rows, one per element of a JSON array parameter: each element is
    `[id, field_clocks text, value of names[0], value of names[1], ...]` (the operation's values as JSON),
    and SQLite converts each as `to_column` does (a JSON boolean reads as 1 or 0, a list or object as its
    JSON text, null as NULL). One statement runs in C from start to end: a page of pulled operations is
    written without a Python call per row, and without holding Python's GIL, so the next page is checked
    on another thread meanwhile."""
    values = []
    for i, name in enumerate(names, start=2):
        if name in _JSON:
            values.append(f"CASE WHEN json_type(value, '$[{i}]') = 'null' THEN NULL ELSE value -> {i} END")
        else:
            values.append(f"value ->> {i}")
    return (
        f"INSERT INTO {TABLES[kind]} (id, {', '.join(names)}, field_clocks) "
        f"SELECT value ->> 0, {', '.join(values)}, value ->> 1 FROM json_each(?)"
    )


PAGE_OPS = "jsonb_each(?, '$.ops') AS p"
"""A pulled page's operations, one row each (`p.key` its position, `p.value` the `PulledOp`), as the
`FROM` of a statement writing them. `jsonb_each`, not `json_each`: each `p.value` is then SQLite's binary
JSON, which the dozen `->>` per row read without parsing text again (a page of 2,000 new tasks written in
47 ms instead of 77)."""
PICKED = " WHERE p.key IN (SELECT value FROM json_each(?))"
"""Narrows `PAGE_OPS` to the positions given (a JSON array); left off when every operation is written."""


@cache
def insert_from_page_sql(kind: EntityKind, names: tuple[str, ...], picked: bool) -> str:
    """`INSERT`s of new rows straight from a pulled page's JSON (`PullResponse`): its operations, each
    setting `names` (only those at the positions given, when `picked`: `PICKED`). Parameters: the clocks
    template (`aurora.sync.merge.clocks_template(names, "@")`), the page, and the positions when
    `picked`. Each value is converted as `insert_from_json_sql` converts it."""
    values = []
    for name in names:
        path = f"'$.op.fields.{name}'"
        if name in _JSON:
            values.append(
                f"CASE WHEN json_type(p.value, {path}) = 'null' THEN NULL ELSE p.value -> {path} END"
            )
        else:
            values.append(f"p.value ->> {path}")
    return (
        f"INSERT INTO {TABLES[kind]} (id, {', '.join(names)}, field_clocks) "
        f"SELECT p.value ->> '$.op.entity_id', {', '.join(values)}, replace(?, '@', p.value ->> '$.op.hlc') "
        f"FROM {PAGE_OPS}{PICKED if picked else ''}"
    )


@cache
def update_sql(kind: EntityKind, names: tuple[str, ...]) -> str:
    """An UPDATE of just these columns: an index whose columns are not set is not rewritten."""
    sets = ", ".join(f"{n} = :{n}" for n in names)
    return f"UPDATE {TABLES[kind]} SET {sets}, field_clocks = :field_clocks WHERE id = :id"
