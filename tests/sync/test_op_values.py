"""Every replica must read an operation's values the same way: they are checked strictly as JSON, so a
loosely typed value from another device (`"yes"` for true) is refused instead of being read as true by one
replica's SQLite column and kept as text by another's JSON."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aurora.app.store import Store
from aurora.schema import ENTITY_FIELDS, check_field_values
from aurora.schema.registry import _check_one_by_one, _kind_adapter
from aurora.sync import HybridClock, Operation, new_id
from tests.sync.strategies import FIELD_VALUES, json_values


def _op(entity: str, fields: dict[str, Any]) -> Operation:
    return Operation(op_id=new_id(), device_id="dev", hlc=HybridClock("dev").now().encode(), entity=entity,
                     entity_id=new_id(), fields=fields)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize(
    ("entity", "fields"),
    [
        ("task", {"urgent": "yes"}),
        ("task", {"quadrant": "2"}),
        ("task", {"position": "1.5"}),
        ("task", {"due": 1700000000}),
        ("item", {"extra": {"a": math.nan}}),
        ("task", {"position": math.inf}),
        ("message", {"position": 2**63}),  # past SQLite's INTEGER: no replica could store it
    ],
)
def test_loosely_typed_or_non_json_values_are_refused(entity: str, fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _op(entity, fields)


def test_a_huge_integer_in_a_float_field_is_a_float_everywhere(tmp_path: Path) -> None:
    op = _op("task", {"title": "Far down the list", "position": 10**20 + 1})
    assert isinstance(op.fields["position"], float)
    store = Store.open(tmp_path / "w.db")
    try:
        with store.transaction() as tx:
            assert tx.apply(op)  # an integer this size would overflow SQLite's INTEGER
        state = store.load("task", op.entity_id)
        assert state is not None and state.values["position"] == pytest.approx(1e20)
    finally:
        store.close()


# --- the whole-dict check agrees with the field-by-field one ------------------------------------------

_ODD_VALUES = st.one_of(
    json_values,
    st.sampled_from([math.nan, math.inf, -math.inf, object(), b"bytes", 10**20 + 1, -(10**30), 2**63, True]),
    st.sampled_from(["yes", "2", "1.5", "", "   ", "2024-01-01T00:00:00", "2024-01-01T00:00:00+00:00"]),
)


@st.composite
def _any_fields(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A kind (any the registry knows, so new kinds are covered) and fields: valid values where the
    strategies know the field, loosely typed or non-JSON ones, and now and then an unknown name."""
    kind = draw(st.sampled_from(sorted(ENTITY_FIELDS)))
    names = sorted(ENTITY_FIELDS[kind])
    known = FIELD_VALUES.get(kind, {})  # type: ignore[call-overload]
    fields: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from([*names, "id", "bogus"]), max_size=6, unique=True)):
        valid = known.get(name)
        odd = valid is None or draw(st.integers(0, 4)) == 0
        fields[name] = draw(_ODD_VALUES if odd else valid)
    return kind, fields


def _outcome(check: Any, kind: str, fields: dict[str, Any]) -> tuple[str, Any]:
    try:
        out = check(kind, fields)
    except (ValueError, KeyError) as exc:
        return type(exc).__name__, str(exc)
    return "ok", [(name, type(value), value) for name, value in out.items()]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_any_fields())
def test_the_whole_dict_check_says_what_the_field_by_field_check_says(
    case: tuple[str, dict[str, Any]],
) -> None:
    kind, fields = case
    assert _outcome(check_field_values, kind, fields) == _outcome(_check_one_by_one, kind, fields)


def test_every_kind_is_checked_as_one_dict() -> None:
    # A kind that falls back to the field-by-field check still works, only slower: this says when one does.
    assert {kind: _kind_adapter(kind) is not None for kind in ENTITY_FIELDS} == dict.fromkeys(
        ENTITY_FIELDS, True
    )


def test_the_first_bad_field_in_the_order_given_is_named() -> None:
    with pytest.raises(ValueError, match=r"^task field 'urgent': "):
        check_field_values("task", {"title": "ok", "urgent": "yes", "position": "1.5"})
    with pytest.raises(ValueError, match=r"^task field 'position': "):
        check_field_values("task", {"title": "ok", "position": "1.5", "urgent": "yes"})
    with pytest.raises(ValueError, match=r"^note field 'body': a note needs some text$"):
        check_field_values("note", {"pinned": True, "body": "  \n"})
