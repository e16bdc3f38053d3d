"""The batch check (`aurora.sync.batch`): a push or a pulled page checked whole in pydantic's core, and a
checked page written by SQLite straight from its JSON (`Transaction.apply_page`).

What must hold: the check is never looser than `Operation` (anything it lets through, `Operation` takes
too, and makes the very same operation of it), it does pass ordinary operations (or it would be a slow
path in disguise), and a page written from its JSON leaves the replica holding what `apply_many` leaves.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aurora.app.errors import InvalidInputError
from aurora.app.store import Store
from aurora.app.store.rows import TABLES
from aurora.schema import ENTITY_FIELDS
from aurora.schema.registry import float_fields
from aurora.sync import Hlc, Operation
from aurora.sync.batch import check_page, checked_push
from aurora.sync.protocol import PulledOp, PullResponse
from tests.sync.strategies import BASE_MS, FIELD_VALUES, KINDS, field_sets

_T = TypeVar("_T")

_ODD = [None, True, "yes", "", "  ", 1, 0, 10**20 + 1, 2**63, math.nan, math.inf, "1.5", "\x00", "é",
        "2024-01-01T00:00:00", "2024-01-01T00:00:00+00:00", [], {}]  # fmt: skip
_ODD_NUMBERS = [1, 0, -3, 10**20 + 1, 2**63, math.nan, -math.inf, 1e308 * 10]
"""Values a float field may be sent that `Operation` converts or refuses."""


def _odd(kind: str, name: str) -> st.SearchStrategy[Any]:
    """A value `Operation` converts or refuses for this field, most of the time (some are valid)."""
    choices = _ODD_NUMBERS * 3 + _ODD if name in float_fields(kind) else _ODD
    nested = st.dictionaries(
        st.text(max_size=3), st.sampled_from([1.5, math.nan, -math.inf, "x"]), max_size=2
    )
    return st.sampled_from(choices) | nested


@st.composite
def _raw_ops(draw: st.DrawFn) -> dict[str, Any]:
    """One operation as a laptop or a node might send it: mostly valid, with odd values now and then, in
    its fields and in its own keys."""
    kind = draw(st.sampled_from([*KINDS, *KINDS, *sorted(ENTITY_FIELDS)]))  # every kind; the common ones more
    known = FIELD_VALUES.get(kind, {})  # type: ignore[call-overload]
    fields: dict[str, Any] = {}
    for name in draw(
        st.lists(st.sampled_from([*sorted(ENTITY_FIELDS[kind]), "bogus"]), max_size=5, unique=True)
    ):
        valid = known.get(name)
        odd = valid is None or draw(st.integers(0, 3)) == 0
        fields[name] = draw(_odd(kind, name) if odd else valid)
    raw: dict[str, Any] = {
        "op_id": draw(st.sampled_from(["op-1", "op-é", "op-1", "", "x" * 65])),
        "device_id": "devA",
        "hlc": draw(st.sampled_from([Hlc(BASE_MS, 1, "devA").encode()] * 6 + ["10.0.a", "x"])),
        "entity": draw(st.sampled_from([kind] * 6 + ["bogus"])),
        "entity_id": "e1",
        "fields": fields,
    }
    if draw(st.integers(0, 19)) == 0:
        raw["extra_key"] = 1
    if draw(st.integers(0, 19)) == 0:
        del raw[draw(st.sampled_from(sorted(raw)))]
    return raw


def _body(value: Any) -> bytes | None:
    try:
        return json.dumps(value, ensure_ascii=False).encode()  # NaN and Infinity as JavaScript writes them
    except (TypeError, ValueError, UnicodeEncodeError):
        return None


def _same(a: Operation, b: Operation) -> bool:
    """Equal, and each field's value of the same type (1 == 1.0 in Python, not in a replica's columns)."""
    kinds = [(name, type(value)) for name, value in a.fields.items()]
    return a == b and kinds == [(name, type(value)) for name, value in b.fields.items()]


def _taken(validate: Callable[[Any], _T], value: Any) -> _T:
    """What the model makes of `value`, which the batch check passed; the model refusing it means the
    check was looser than the model."""
    try:
        return validate(value)
    except ValidationError as error:
        raise AssertionError(f"the batch check let through what the model refuses: {value!r}") from error


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_raw_ops(), min_size=1, max_size=4))
def test_what_the_push_check_builds_is_what_operation_makes(raws: list[dict[str, Any]]) -> None:
    body = _body({"ops": raws, "pending": 0})
    assume(body is not None)
    assert body is not None
    parsed = json.loads(body)["ops"]  # as the node's route parses the body
    for raw, built in zip(parsed, checked_push(body, parsed), strict=True):
        if built is None:
            continue
        validated = _taken(Operation.model_validate, raw)
        assert _same(built, validated), raw


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_raw_ops(), min_size=1, max_size=4))
def test_a_page_the_check_passes_is_one_pull_response_takes(raws: list[dict[str, Any]]) -> None:
    body = _body({"ops": [{"seq": n + 1, "op": raw} for n, raw in enumerate(raws)], "cursor": 4, "head": 9,
                  "more": False})  # fmt: skip
    assume(body is not None)
    assert body is not None
    page = check_page(body)
    if page is None:
        return
    validated = _taken(PullResponse.model_validate_json, body)
    assert (page.cursor, page.head, page.more) == (validated.cursor, validated.head, validated.more)
    ops = page.operations()
    assert len(ops) == len(page.ops) == len(validated.ops)
    assert all(_same(a, b.op) for a, b in zip(ops, validated.ops, strict=True))


@st.composite
def _valid_ops(draw: st.DrawFn, max_ops: int = 8) -> list[Operation]:
    """Valid operations of every kind, each on its own entity (a first sync), each its own clock."""
    n = draw(st.integers(1, max_ops))
    ops = []
    for i in range(n):
        kind = draw(st.sampled_from(KINDS))
        ops.append(
            Operation(
                op_id=f"op-{i:04d}",
                device_id="devA",
                hlc=Hlc(BASE_MS + i, 0, "devA").encode(),
                entity=kind,
                entity_id=f"{kind}-{i}",
                fields=draw(field_sets(kind)),
            )
        )
    return ops


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_valid_ops())
def test_ordinary_operations_pass_the_check(ops: list[Operation]) -> None:
    wire = [op.model_dump(mode="json") for op in ops]
    body = json.dumps({"ops": wire, "pending": 0}).encode()
    assert all(built is not None for built in checked_push(body, json.loads(body)["ops"]))
    page = PullResponse(
        ops=[PulledOp(seq=n + 1, op=op) for n, op in enumerate(ops)], cursor=9, head=9, more=False
    )
    assert check_page(page.model_dump_json().encode()) is not None


def _replica(store: Store) -> dict[str, Any]:
    """What a replica holds, by value: every row (JSON text read back), the log in order, the search
    queue and the clock. JSON columns and logged fields may be written in another, equal, form."""

    def value(cell: Any) -> Any:
        if isinstance(cell, str) and cell[:1] in "[{":
            try:
                return json.loads(cell)
            except ValueError:
                return cell
        return cell

    rows = {
        table: [
            [(type(c), value(c)) for c in row] for row in store.query(f"SELECT * FROM {table} ORDER BY id")
        ]
        for table in sorted(set(TABLES.values()))
    }
    log = store.query(
        "SELECT op_id, device_id, hlc, entity, entity_id, fields, from_node FROM ops ORDER BY seq"
    )
    return rows | {
        "ops": [(*row[:5], json.loads(row[5]), row[6]) for row in log],
        "search_queue": store.query("SELECT kind, entity_id FROM search_queue ORDER BY kind, entity_id"),
        "clock": (store.clock.last.wall_ms, store.clock.last.counter),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_valid_ops(), data=st.data())
def test_a_page_written_from_its_json_holds_what_apply_many_writes(
    ops: list[Operation], data: st.DataObject
) -> None:
    # Now and then the page also holds an operation seen before, or a second one on an entity, or the
    # replica already holds one of its entities: the page then goes through `apply_many` itself.
    seen_before = data.draw(st.lists(st.sampled_from(ops), max_size=2), label="applied before")
    twice = data.draw(st.lists(st.sampled_from(ops), max_size=1), label="repeated in the page")
    page_ops = ops + twice
    page = PullResponse(ops=[PulledOp(seq=n + 1, op=op) for n, op in enumerate(page_ops)], cursor=9, head=9,
                        more=False)  # fmt: skip
    checked = check_page(page.model_dump_json().encode())
    assert checked is not None
    with tempfile.TemporaryDirectory() as tmp:
        many, from_json = Store.open(Path(tmp) / "many.db"), Store.open(Path(tmp) / "json.db")
        try:
            for store in (many, from_json):
                with store.transaction() as tx:
                    tx.apply_many(seen_before, from_node=True)
            with many.transaction() as tx:
                new_many = sum(tx.apply_many(page_ops, from_node=True))
            with from_json.transaction() as tx:
                new_json = tx.apply_page(checked, from_node=True)
            assert new_json == new_many
            assert _replica(from_json) == _replica(many)
        finally:
            many.close()
            from_json.close()


@pytest.mark.parametrize(
    ("entity", "fields"),
    [
        ("task", {"title": "A task", "position": 1}),  # Operation turns it into 1.0
        ("task", {"urgency": 0}),
        ("task", {}),  # refused: an operation sets some field
        ("note", {"body": "   "}),  # refused: a note needs some text
        ("item", {"extra": {"a": math.nan}}),  # refused: not JSON
        ("item", {"extra": {"a": [math.inf]}}),
    ],
)
def test_what_only_the_model_can_judge_goes_to_the_model(entity: str, fields: dict[str, Any]) -> None:
    raw = {"op_id": "op-1", "device_id": "devA", "hlc": Hlc(BASE_MS, 0, "devA").encode(), "entity": entity,
           "entity_id": "e1", "fields": fields}  # fmt: skip
    body = _body({"ops": [raw]})
    assert body is not None
    assert checked_push(body, json.loads(body)["ops"]) == [None]
    assert (
        check_page(_body({"ops": [{"seq": 1, "op": raw}], "cursor": 1, "head": 1, "more": False}) or b"")
        is None
    )


def test_a_clock_in_another_scripts_digits_is_refused() -> None:
    # Merge compares clocks as text: Arabic-Indic digits would sort after every ASCII clock.
    raw = {"op_id": "op-1", "device_id": "devA", "hlc": "\u0661" * 13 + ".000000.devA", "entity": "task",
           "entity_id": "e1", "fields": {"title": "A task"}}  # fmt: skip
    body = json.dumps({"ops": [raw]}).encode()
    assert checked_push(body, [raw]) == [None]
    with pytest.raises(ValidationError, match="hybrid clock"):
        Operation.model_validate(raw)


def test_a_page_with_an_operation_far_ahead_is_refused_whole(tmp_path: Path) -> None:
    ok = Operation(op_id="op-1", device_id="devA", hlc=Hlc(BASE_MS, 0, "devA").encode(), entity="task",
                   entity_id="t1", fields={"title": "fine"})  # fmt: skip
    ahead = Operation(op_id="op-2", device_id="devA", hlc=Hlc(4_000_000_000_000, 0, "devA").encode(),
                      entity="task", entity_id="t2", fields={"title": "from 2096"})  # fmt: skip
    body = PullResponse(ops=[PulledOp(seq=1, op=ok), PulledOp(seq=2, op=ahead)], cursor=2, head=2, more=False)
    checked = check_page(body.model_dump_json().encode())
    assert checked is not None
    store = Store.open(tmp_path / "w.db")
    try:
        with (
            pytest.raises(InvalidInputError, match=r"op-2 is stamped .* in the future"),
            store.transaction() as tx,
        ):
            tx.apply_page(checked, from_node=True)
        assert store.query("SELECT count(*) FROM ops")[0][0] == 0
        assert store.load("task", "t1") is None
    finally:
        store.close()


def test_a_page_repeating_keys_is_written_with_the_values_that_were_checked(tmp_path: Path) -> None:
    """JSON may repeat a key: the check (like `json`) keeps the last, SQLite the first. A node that sends
    a bad value first and a good one last must not get the bad one into the workspace."""
    clock = Hlc(BASE_MS, 0, "devA").encode()
    op = (
        f'{{"op_id":"op-1","device_id":"devA","hlc":"9999999999999.000000.devA","hlc":"{clock}",'
        f'"entity":"task","entity_id":"{"x" * 200}","entity_id":"t1",'
        '"fields":{"title":12345,"title":"A task","urgent":"yes","urgent":true}}'
    )
    unchecked = (
        f'{{"op_id":"op-2","device_id":"devA","hlc":"{clock}","entity":"task","entity_id":"t2",'
        '"fields":{"title":["no"],"bogus":1}}'
    )
    body = (
        f'{{"ops":[{{"seq":1,"op":{unchecked}}}],"ops":[{{"seq":1,"op":{op}}}],"cursor":1,"head":1,"more":false}}'
    ).encode()
    checked = check_page(body)
    assert checked is not None
    store = Store.open(tmp_path / "w.db")
    try:
        with store.transaction() as tx:
            assert tx.apply_page(checked, from_node=True) == 1
        assert store.query("SELECT id, title, urgent FROM tasks") == [("t1", "A task", 1)]
        assert store.query("SELECT op_id, hlc, fields FROM ops") == [
            ("op-1", clock, '{"title":"A task","urgent":true}')
        ]
        assert store.clock.last.wall_ms == BASE_MS
    finally:
        store.close()
