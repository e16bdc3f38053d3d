"""`Transaction.apply_many` (how a pulled page is applied) against `Transaction.apply` one operation at a
time: the same flags, the same rows, the same log, for histories of every kind delivered as sync may
deliver them (shuffled, repeated, in batches of any size, a batch holding an operation twice)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aurora.app.errors import InvalidInputError
from aurora.app.store import Store
from aurora.app.store.rows import TABLES
from aurora.sync import Hlc, Operation, new_id
from tests.sync.strategies import deliveries, histories


def _contents(store: Store) -> dict[str, Any]:
    """Everything applying writes: each entity table, the log (in order), the search queue."""
    tables = {
        table: store.query(f"SELECT * FROM {table} ORDER BY id") for table in sorted(set(TABLES.values()))
    }
    return tables | {
        "ops": store.query(
            "SELECT op_id, device_id, hlc, entity, entity_id, fields, from_node FROM ops ORDER BY seq"
        ),
        "search_queue": store.query("SELECT kind, entity_id FROM search_queue ORDER BY kind, entity_id"),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=histories(max_ops=16), data=st.data(), from_node=st.booleans())
def test_apply_many_does_what_apply_does_one_at_a_time(
    ops: list[Operation], data: st.DataObject, from_node: bool
) -> None:
    batches = deliveries(data, ops)
    with tempfile.TemporaryDirectory() as tmp:
        one, many = Store.open(Path(tmp) / "one.db"), Store.open(Path(tmp) / "many.db")
        try:
            for batch in batches:
                with one.transaction() as tx:
                    flags_one = [tx.apply(op, from_node=from_node) for op in batch]
                with many.transaction() as tx:
                    flags_many = tx.apply_many(batch, from_node=from_node)
                assert flags_many == flags_one
            assert _contents(many) == _contents(one)
            assert many.clock.last.wall_ms == one.clock.last.wall_ms
            assert many.clock.last.counter == one.clock.last.counter
        finally:
            one.close()
            many.close()


def test_an_operation_far_ahead_refuses_the_whole_page(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "w.db")
    try:
        ok = Operation(op_id=new_id(), device_id="devA", hlc=Hlc(1_750_000_000_000, 0, "devA").encode(),
                       entity="task", entity_id="t1", fields={"title": "fine"})  # fmt: skip
        ahead = ok.model_copy(update={"op_id": new_id(), "hlc": Hlc(4_000_000_000_000, 0, "devA").encode()})
        with pytest.raises(InvalidInputError, match="in the future"), store.transaction() as tx:
            tx.apply_many([ok, ahead])
        assert store.query("SELECT count(*) FROM ops")[0][0] == 0
        assert store.load("task", "t1") is None
    finally:
        store.close()
