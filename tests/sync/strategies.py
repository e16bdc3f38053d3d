"""Hypothesis strategies for operations on every entity kind, with values the entity models accept.

Values are generated in the canonical JSON form the services write (floats as floats, times as ISO text
with an offset, tags already normalised): the contract is about storing and merging what a replica was
sent, so each replica must give back exactly that. Text never holds U+0000 (PostgreSQL cannot store it;
the node's push refuses it) or a lone surrogate (not encodable as UTF-8 on either side).

`FIELD_VALUES` names every field of every kind; `test_every_field_of_every_kind_has_values` in the
contract suite fails when the schema grows a field this module does not generate.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from aurora.schema import EntityKind, InteractionKind, ItemKind, NoteColour, TaskStatus
from aurora.sync import EntityState, Hlc, Operation, merge

KINDS: tuple[EntityKind, ...] = ("task", "note", "item", "person", "interaction")
DEVICES = ("devA", "devB", "devC")
ENTITY_IDS = ("e1", "e2", "e3")
"""Shared by every kind: a task "e1" and a note "e1" are two entities."""
BASE_MS = 1_750_000_000_000
"""June 2025: in the past, so the laptop store does not refuse the clocks as far in the future."""

_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")


def texts(min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    return st.text(_CHARS, min_size=min_size, max_size=max_size)


def _not_blank(max_size: int = 12) -> st.SearchStrategy[str]:
    return texts(1, max_size).filter(lambda s: bool(s.split()))


_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30))])
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_ZONES).map(
    lambda d: d.isoformat()
)
"""Aware times as ISO text, as the services write them (`aurora.app.entities.iso`)."""

tags = st.lists(st.from_regex(r"[a-z0-9][a-z0-9\-/.]{0,8}", fullmatch=True), max_size=4, unique=True)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
"""Any magnitude: floats of 1e16 and more are the ones jsonb would turn into integers if written naively."""

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite_floats | texts(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts(0, 6), inner, max_size=3),
    max_leaves=8,
)

_COMMON: dict[str, st.SearchStrategy[Any]] = {
    "created_at": times,
    "updated_at": times,
    "deleted": st.booleans(),
}

FIELD_VALUES: dict[EntityKind, dict[str, st.SearchStrategy[Any]]] = {
    "task": {
        **_COMMON,
        "title": _not_blank(),
        "notes": texts(),
        "due": st.none() | times,
        "urgent": st.booleans(),
        "important": st.booleans(),
        "urgency": st.floats(0.0, 1.0),
        "importance": st.floats(0.0, 1.0),
        "quadrant": st.integers(1, 4),
        "manual": st.booleans(),
        "position": finite_floats,
        "status": st.sampled_from([s.value for s in TaskStatus]),
        "completed_at": st.none() | times,
        "tags": tags,
        "source": texts(),
    },
    "note": {
        **_COMMON,
        "body": _not_blank(),
        "colour": st.sampled_from([c.value for c in NoteColour]),
        "pinned": st.booleans(),
        "tags": tags,
    },
    "item": {
        **_COMMON,
        "kind": st.sampled_from([k.value for k in ItemKind]),
        "source": texts(1),
        "external_id": texts(1),
        "title": texts(),
        "body": texts(),
        "occurred_at": st.none() | times,
        "ends_at": st.none() | times,
        "thread_id": st.none() | texts(),
        "participants": st.lists(
            st.fixed_dictionaries({"name": texts(), "email": texts(), "role": texts(0, 8)}), max_size=2
        ),
        "extra": st.dictionaries(texts(0, 6), json_values, max_size=3),
    },
    "person": {
        **_COMMON,
        "name": texts(),
        "emails": st.lists(texts(), max_size=2),
        "phones": st.lists(texts(), max_size=2),
        "org": texts(),
        "job_title": texts(),
        "vip": st.booleans(),
        "notes": texts(),
    },
    "interaction": {
        **_COMMON,
        "person_id": texts(1),
        "item_id": texts(1),
        "kind": st.sampled_from([k.value for k in InteractionKind]),
        "occurred_at": st.none() | times,
    },
}


def field_sets(kind: EntityKind) -> st.SearchStrategy[dict[str, Any]]:
    """Some fields of one kind (at least one), with valid values."""
    return st.fixed_dictionaries({}, optional=FIELD_VALUES[kind]).filter(bool)


@st.composite
def histories(draw: st.DrawFn, max_ops: int = 12) -> list[Operation]:
    """Operations from a few devices on a few entities of every kind. Each has its own clock value, as
    real devices guarantee; wall times collide often, so counters and device ids break the ties."""
    stamps = draw(
        st.lists(
            st.tuples(st.integers(0, 3), st.integers(0, 2), st.sampled_from(DEVICES)),
            min_size=1,
            max_size=max_ops,
            unique=True,
        )
    )
    ops: list[Operation] = []
    for n, (wall, counter, device) in enumerate(stamps):
        kind = draw(st.sampled_from(KINDS))
        ops.append(
            Operation(
                op_id=f"op-{n:04d}",
                device_id=device,
                hlc=Hlc(BASE_MS + wall, counter, device).encode(),
                entity=kind,
                entity_id=draw(st.sampled_from(ENTITY_IDS)),
                fields=draw(field_sets(kind)),
            )
        )
    return ops


def deliveries(data: st.DataObject, ops: list[Operation]) -> list[list[Operation]]:
    """`ops` as sync may deliver them: in any order, some more than once, in batches of any size (a
    batch may hold the same operation twice)."""
    repeats = data.draw(st.lists(st.sampled_from(ops), max_size=len(ops)), label="repeated")
    arrivals = data.draw(st.permutations([*ops, *repeats]), label="arrival order")
    batches: list[list[Operation]] = []
    while arrivals:
        size = data.draw(st.integers(1, len(arrivals)), label="batch size")
        batches.append(arrivals[:size])
        arrivals = arrivals[size:]
    return batches


Key = tuple[EntityKind, str]


def folded(ops: Iterable[Operation]) -> dict[Key, EntityState]:
    """Each entity's state by the pure merge: what every replica that saw `ops` must hold."""
    states: dict[Key, EntityState] = {}
    for op in ops:
        key = (op.entity, op.entity_id)
        states[key] = merge(states.get(key), op)
    return states
