"""Property tests of the pure sync core: the hybrid logical clock and the last-writer-wins merge.

They check the invariants `aurora.sync` states: replicas that have seen the same operations, in any order
and with duplicates, hold the same state; each field holds the value of the operation with the greatest
HLC that set it; and the clock never goes backwards, whatever the wall clock does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aurora.sync import EntityState, Hlc, HybridClock, Operation, merge, new_id

_COUNTER_LIMIT = 16**6
_MAX_WALL = 10**13 - 2
"""The largest wall time used here: one below 13 digits, so a counter overflow still encodes in 13."""

DEVICES = ("devA", "devB", "devC")
ENTITY_IDS = ("task-1", "task-2", "task-3")

FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    # Titles the task model accepts (not blank), so the test holds when operations check their values.
    "title": st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8),
    "urgent": st.booleans(),
    "quadrant": st.integers(1, 4),
    "deleted": st.booleans(),
    "tags": st.lists(st.sampled_from(["home", "work", "vip", "x/y"]), max_size=3, unique=True),
    "position": st.floats(allow_nan=False, allow_infinity=False, width=32),
}

# Wall times: mostly a narrow band, so the clocks of several devices collide and the wall clock often
# stands still or steps back; sometimes anywhere in the 13-digit range.
walls = st.one_of(
    st.integers(0, 40), st.integers(1_700_000_000_000, 1_700_000_000_020), st.integers(0, _MAX_WALL)
)

hlcs = st.builds(
    Hlc,
    wall_ms=st.integers(0, 10**13 - 1),
    counter=st.integers(0, _COUNTER_LIMIT - 1),
    device=st.text(st.sampled_from("abcXYZ019-_"), min_size=1, max_size=6),
)


class FakeWall:
    """A wall clock the test sets by hand; it may go backwards."""

    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


@dataclass(frozen=True)
class Step:
    device: int
    wall: int
    entity: int
    fields: dict[str, Any]
    observe_from: int | None
    """Before issuing, this device first observes the last clock of that device (a sync round)."""


@st.composite
def steps(draw: st.DrawFn) -> Step:
    names = draw(st.sets(st.sampled_from(sorted(FIELD_VALUES)), min_size=1))
    fields = {name: draw(FIELD_VALUES[name]) for name in sorted(names)}
    return Step(
        device=draw(st.integers(0, len(DEVICES) - 1)),
        wall=draw(walls),
        entity=draw(st.integers(0, len(ENTITY_IDS) - 1)),
        fields=fields,
        observe_from=draw(st.none() | st.integers(0, len(DEVICES) - 1)),
    )


def run_devices(script: list[Step]) -> list[Operation]:
    """Operations made by three devices, each with its own hybrid clock over a wall clock we drive."""
    wall_clocks = [FakeWall() for _ in DEVICES]
    clocks = [HybridClock(device, wall=wall) for device, wall in zip(DEVICES, wall_clocks, strict=True)]
    ops: list[Operation] = []
    for step in script:
        if step.observe_from is not None and step.observe_from != step.device:
            clocks[step.device].observe(clocks[step.observe_from].last)
        wall_clocks[step.device].value = step.wall
        ops.append(
            Operation(
                op_id=new_id(),
                device_id=DEVICES[step.device],
                hlc=clocks[step.device].now().encode(),
                entity="task",
                entity_id=ENTITY_IDS[step.entity],
                fields=step.fields,
            )
        )
    return ops


operation_logs = st.lists(steps(), min_size=1, max_size=25).map(run_devices)


def fold(ops: Iterable[Operation]) -> dict[str, EntityState]:
    states: dict[str, EntityState] = {}
    for op in ops:
        states[op.entity_id] = merge(states.get(op.entity_id), op)
    return states


# Merge ---------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(ops=operation_logs, data=st.data())
def test_any_order_with_duplicates_gives_the_same_state(ops: list[Operation], data: st.DataObject) -> None:
    expected = fold(ops)
    repeats = data.draw(st.lists(st.sampled_from(ops), max_size=len(ops)), label="repeated")
    shuffled = data.draw(st.permutations(ops + repeats), label="arrival order")

    got = fold(shuffled)

    assert got == expected
    # Values and clocks, entity by entity, so a failure says which part differs.
    for entity_id, state in expected.items():
        assert got[entity_id].values == state.values
        assert got[entity_id].clocks == state.clocks
    assert fold(reversed(ops)) == expected


@settings(max_examples=300, deadline=None)
@given(ops=operation_logs, data=st.data())
def test_each_field_holds_the_value_of_its_latest_writer(ops: list[Operation], data: st.DataObject) -> None:
    # Invariant 3: every operation carries a distinct clock value, so "latest" is never a tie.
    assert len({op.hlc for op in ops}) == len(ops)

    final = fold(data.draw(st.permutations(ops), label="arrival order"))

    assert set(final) == {op.entity_id for op in ops}
    for entity_id, state in final.items():
        mine = [op for op in ops if op.entity_id == entity_id]
        assert set(state.values) == set(state.clocks) == {name for op in mine for name in op.fields}
        for name in state.values:
            writer = max((op for op in mine if name in op.fields), key=lambda op: op.hlc)
            assert state.values[name] == writer.fields[name], name
            assert state.clocks[name] == writer.hlc, name


@settings(max_examples=200, deadline=None)
@given(ops=operation_logs)
def test_applying_an_operation_again_changes_nothing(ops: list[Operation]) -> None:
    state: EntityState | None = None
    for op in (op for op in ops if op.entity_id == ops[0].entity_id):
        state = merge(state, op)
        assert merge(state, op) == state


def test_an_older_write_loses_to_a_newer_one_whichever_arrives_first() -> None:
    wall = FakeWall()
    clock = HybridClock("devA", wall=wall)
    wall.value = 1000
    old = Operation(
        op_id=new_id(), device_id="devA", hlc=clock.now().encode(), entity="task", entity_id="t",
        fields={"title": "old", "urgent": True},
    )  # fmt: skip
    # The wall clock steps back: the newer write must still win.
    wall.value = 10
    new = Operation(
        op_id=new_id(), device_id="devA", hlc=clock.now().encode(), entity="task", entity_id="t",
        fields={"title": "new"},
    )  # fmt: skip

    for order in ([old, new], [new, old]):
        state = fold(order)["t"]
        assert state.values == {"title": "new", "urgent": True}
        assert state.clocks == {"title": new.hlc, "urgent": old.hlc}


# The clock -----------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    start=st.none()
    | st.builds(Hlc, st.integers(0, _MAX_WALL), st.integers(0, _COUNTER_LIMIT - 1), st.just("me")),
    events=st.lists(
        st.one_of(
            walls.map(lambda w: ("tick", w)),
            st.builds(
                Hlc,
                wall_ms=walls,
                counter=st.one_of(st.integers(0, 3), st.integers(_COUNTER_LIMIT - 3, _COUNTER_LIMIT - 1)),
                device=st.sampled_from(["a", "me", "zz"]),
            ).map(lambda h: ("observe", h)),
        ),
        max_size=60,
    ),
)
def test_the_clock_only_moves_forward(start: Hlc | None, events: list[tuple[str, Any]]) -> None:
    wall = FakeWall()
    clock = HybridClock("me", last=start, wall=wall)
    issued: list[Hlc] = [start] if start else []
    observed: list[Hlc] = []
    for kind, value in events:
        if kind == "observe":
            clock.observe(value)
            observed.append(value)
            # Observing never moves the clock back.
            assert clock.last >= max([*issued, clock.last])
            continue
        wall.value = value
        now = clock.now()
        assert now.device == "me"
        assert clock.last == now
        assert all(now > earlier for earlier in issued), (now, issued[-1:])
        assert all(now > seen for seen in observed), now
        # The encoded form keeps the order, so SQL's max(hlc) agrees.
        assert all(now.encode() > earlier.encode() for earlier in issued)
        assert all(now.encode() > seen.encode() for seen in observed)
        # It never runs behind the wall clock.
        assert now.wall_ms >= value
        issued.append(now)


@settings(max_examples=300, deadline=None)
@given(walls=st.lists(walls, min_size=1, max_size=80))
def test_now_is_strictly_increasing_whatever_the_wall_clock_does(walls: list[int]) -> None:
    wall = FakeWall()
    clock = HybridClock("devA", wall=wall)
    values = []
    for w in walls:
        wall.value = w
        values.append(clock.now())
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    encoded = [v.encode() for v in values]
    assert encoded == sorted(encoded)
    assert len(set(encoded)) == len(encoded)


def test_the_counter_overflows_into_the_next_millisecond() -> None:
    wall = FakeWall()
    wall.value = 5
    clock = HybridClock("devA", last=Hlc(5, _COUNTER_LIMIT - 2, "devA"), wall=wall)
    assert clock.now() == Hlc(5, _COUNTER_LIMIT - 1, "devA")
    assert clock.now() == Hlc(6, 0, "devA")
    assert clock.now() == Hlc(6, 1, "devA")


@settings(max_examples=300, deadline=None)
@given(hlc=hlcs)
def test_encode_and_decode_round_trip(hlc: Hlc) -> None:
    text = hlc.encode()
    assert Hlc.decode(text) == hlc
    assert str(hlc) == text
    assert len(text) == 13 + 1 + 6 + 1 + len(hlc.device)


@settings(max_examples=300, deadline=None)
@given(a=hlcs, b=hlcs)
def test_encoded_order_is_clock_order(a: Hlc, b: Hlc) -> None:
    assert (a.encode() < b.encode()) == (a < b)
    assert (a.encode() == b.encode()) == (a == b)


@settings(max_examples=300, deadline=None)
@given(a=hlcs, wall_delta=st.integers(-2, 2), counter_delta=st.integers(-2, 2), same_device=st.booleans())
def test_encoded_order_is_clock_order_for_close_values(
    a: Hlc, wall_delta: int, counter_delta: int, same_device: bool
) -> None:
    # Random pairs almost always differ in wall_ms; this one compares neighbours.
    b = Hlc(
        min(max(a.wall_ms + wall_delta, 0), 10**13 - 1),
        min(max(a.counter + counter_delta, 0), _COUNTER_LIMIT - 1),
        a.device if same_device else a.device + "x",
    )
    assert (a.encode() < b.encode()) == (a < b)
    assert (a.encode() > b.encode()) == (a > b)


@settings(max_examples=100, deadline=None)
@given(a=hlcs, b=hlcs)
@example(a=Hlc(9, 0, "a"), b=Hlc(10, 0, "a"))
def test_merge_follows_clock_order_for_any_hlc_an_operation_accepts(a: Hlc, b: Hlc) -> None:
    # Written without zero padding: Operation must refuse such text (merge compares the canonical text).
    def op(clock: Hlc, title: str) -> Operation:
        text = f"{clock.wall_ms}.{clock.counter:x}.{clock.device}"
        return Operation(
            op_id=new_id(), device_id="devA", hlc=text, entity="task", entity_id="t", fields={"title": title}
        )

    if a == b:
        return
    older, newer = sorted([a, b])
    try:
        first, second = op(older, "older"), op(newer, "newer")
    except ValidationError:
        return
    assert fold([first, second])["t"].values["title"] == "newer"
    assert fold([second, first])["t"].values["title"] == "newer"
