"""The merge: last writer wins, per field, by hybrid logical clock. A pure function.

Because every operation carries a unique HLC, per-field "keep the value with the greatest clock" is
commutative, associative and idempotent: replicas converge whatever order operations arrive in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aurora.sync.ops import Operation


@dataclass(frozen=True)
class EntityState:
    """One entity as a replica holds it: field values, and the clock that last set each field."""

    values: dict[str, Any] = field(default_factory=dict)
    clocks: dict[str, str] = field(default_factory=dict)


def merge(state: EntityState | None, op: Operation) -> EntityState:
    """The state after applying `op` to `state` (None for an entity not seen yet)."""
    values = dict(state.values) if state else {}
    clocks = dict(state.clocks) if state else {}
    # Encoded HLCs are fixed-width and sort like the clock values, so string comparison is exact.
    for name, value in op.fields.items():
        held = clocks.get(name)
        if held is None or op.hlc > held:
            values[name] = value
            clocks[name] = op.hlc
    return EntityState(values, clocks)


def changed_fields(before: EntityState | None, after: EntityState) -> set[str]:
    """Fields whose value differs between two states (for deciding whether a write is needed)."""
    old = before.values if before else {}
    return {k for k, v in after.values.items() if k not in old or old[k] != v}
