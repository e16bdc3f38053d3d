"""Undo and redo. An undo is an operation like any other: it writes the previous values back, so it
syncs to other devices exactly as the change it reverses did."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aurora.schema import EntityKind

_LIMIT = 500


@dataclass(frozen=True)
class Change:
    kind: EntityKind
    entity_id: str
    before: dict[str, Any]
    after: dict[str, Any]


@dataclass(frozen=True)
class Step:
    description: str
    changes: tuple[Change, ...]


@dataclass
class History:
    """A bounded undo stack and its redo stack, for one session of one service."""

    _undo: list[Step] = field(default_factory=list)
    _redo: list[Step] = field(default_factory=list)

    def record(self, description: str, changes: list[Change]) -> None:
        if not changes:
            return
        self._undo.append(Step(description, tuple(changes)))
        del self._undo[:-_LIMIT]
        self._redo.clear()

    def undo(self, write: Callable[[tuple[Change, ...], bool], None]) -> str | None:
        """Write back the previous values of the last step; returns its description, None if none.

        `write(changes, undo)` does the writing: with `undo` true it restores each change's `before`.
        """
        if not self._undo:
            return None
        step = self._undo[-1]
        write(step.changes, True)
        self._undo.pop()
        self._redo.append(step)
        return step.description

    def redo(self, write: Callable[[tuple[Change, ...], bool], None]) -> str | None:
        if not self._redo:
            return None
        step = self._redo[-1]
        write(step.changes, False)
        self._redo.pop()
        self._undo.append(step)
        return step.description
