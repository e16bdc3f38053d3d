"""The merge: last writer wins, per field, by hybrid logical clock. A pure function.

Because every operation carries a unique HLC, per-field "keep the value with the greatest clock" is
commutative, associative and idempotent: replicas converge whatever order operations arrive in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from aurora.sync.ops import Operation


@dataclass(frozen=True)
class EntityState:
    """One entity as a replica holds it: field values, and the clock that last set each field."""

    values: dict[str, Any] = field(default_factory=dict)
    clocks: dict[str, str] = field(default_factory=dict)


def winners(clocks: Mapping[str, str], hlc: str, names: Iterable[str]) -> list[str]:
    """Which of `names` an operation stamped `hlc` gets to set, given the clocks a replica holds.

    Encoded HLCs are fixed-width and sort like the clock values, so comparing the text is exact. This is
    the whole of last-writer-wins; `merge` and the stores' row writers both go through it.
    """
    return [name for name in names if (held := clocks.get(name)) is None or hlc > held]


def merge(state: EntityState | None, op: Operation) -> EntityState:
    """The state after applying `op` to `state` (None for an entity not seen yet)."""
    values = dict(state.values) if state else {}
    clocks = dict(state.clocks) if state else {}
    for name in winners(clocks, op.hlc, op.fields):
        values[name] = op.fields[name]
        clocks[name] = op.hlc
    return EntityState(values, clocks)


@cache
def clocks_template(names: tuple[str, ...], mark: str = "%s") -> str:
    """The clocks of an entity whose fields `names` were all set by one operation, as JSON text
    (`json.dumps(dict.fromkeys(names, hlc), sort_keys=True)`) with `mark` in place of each clock: a
    %-template by default, or a text for SQL's `replace()`. A clock's canonical text (`aurora.sync.clock`)
    is digits, hex, letters, `.`, `-` and `_`, nothing JSON escapes and no `@`, so it goes in as it is."""
    return "{" + ", ".join(f'{json.dumps(name)}: "{mark}"' for name in sorted(names)) + "}"
