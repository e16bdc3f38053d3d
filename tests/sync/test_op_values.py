"""Every replica must read an operation's values the same way: they are checked strictly as JSON, so a
loosely typed value from another device (`"yes"` for true) is refused instead of being read as true by one
replica's SQLite column and kept as text by another's JSON."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from aurora.app.store import Store
from aurora.sync import HybridClock, Operation, new_id


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
