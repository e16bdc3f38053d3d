"""The task service: everything the matrix screen and the `aurora task` commands do to tasks."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aurora.app import priority, quickadd
from aurora.app.entities import (
    EntityService,
    iso,
    like_escape,
    parse_stamp,
    parse_time,
    validation_message,
)
from aurora.app.errors import InvalidInputError
from aurora.app.store import Store
from aurora.schema import Quadrant, Task, TaskStatus, normalise_tags
from aurora.sync import new_id

_TASK_COLUMNS = (
    "id, title, notes, due, urgent, important, urgency, importance, quadrant, manual, position, status, "
    "completed_at, tags, source, created_at, updated_at"
)


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks to list: free text (matches title and notes) and tags, written as `#tag`."""

    text: str = ""
    tags: tuple[str, ...] = ()
    show_done: bool = False

    @classmethod
    def parse(cls, query: str, show_done: bool = False) -> TaskFilter:
        words = query.split()
        tags = tuple(w[1:].lower() for w in words if w.startswith("#") and len(w) > 1)
        text = " ".join(w for w in words if not w.startswith("#"))
        return cls(text, tags, show_done)


@dataclass(frozen=True)
class ScoringRules:
    urgent_within_days: float
    important_tags: tuple[str, ...]


def _where(flt: TaskFilter) -> tuple[str, list[Any]]:
    """The SQL condition (and its parameters) that selects the tasks a filter lets through."""
    # A row whose creating operation has not arrived yet (possible only with operations out of order)
    # is listed too, as "(untitled)": every count and list agrees, and the covering index serves counts.
    where = ["deleted = 0"]
    params: list[Any] = []
    if not flt.show_done:
        where.append("status = 'open'")
    if flt.text:
        where.append("(title LIKE ? ESCAPE '\\' OR notes LIKE ? ESCAPE '\\')")
        like = f"%{like_escape(flt.text)}%"
        params += [like, like]
    for tag in flt.tags:
        where.append("EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE value = ?)")
        params.append(tag)
    return " AND ".join(where), params


def _task_from_row(row: tuple[Any, ...]) -> Task:
    # model_construct: rows were validated when written; re-validating 10,000 of them at start-up would
    # cost more than the rest of the first paint.
    return Task.model_construct(
        id=row[0],
        title=row[1],
        notes=row[2],
        due=parse_time(row[3]),
        urgent=bool(row[4]),
        important=bool(row[5]),
        urgency=row[6],
        importance=row[7],
        quadrant=Quadrant(row[8]),
        manual=bool(row[9]),
        position=row[10],
        status=TaskStatus(row[11]),
        completed_at=parse_time(row[12]),
        tags=json.loads(row[13]),
        source=row[14],
        created_at=parse_stamp(row[15]),
        updated_at=parse_stamp(row[16]),
        deleted=False,
    )


class TaskService(EntityService):
    kind = "task"

    def __init__(self, store: Store, rules: ScoringRules, now: Callable[[], datetime]) -> None:
        super().__init__(store, now)
        self.rules = rules

    # Reading -------------------------------------------------------------------------------------------

    def get(self, task_id: str) -> Task:
        rows = self._store.query(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ? AND deleted = 0", (task_id,)
        )
        if not rows:
            raise self._not_found(task_id)
        return _task_from_row(rows[0])

    def list(self, flt: TaskFilter | None = None) -> list[Task]:
        """Tasks in matrix order: by quadrant, then position within it."""
        where, params = _where(flt or TaskFilter())
        rows = self._store.query(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE {where} ORDER BY quadrant, position, id", params
        )
        return [_task_from_row(r) for r in rows]

    def first_page(
        self, flt: TaskFilter, per_quadrant: int
    ) -> tuple[dict[Quadrant, builtins.list[Task]], dict[Quadrant, int]]:
        """The first `per_quadrant` tasks of each quadrant, and how many match in each.

        What the matrix shows at start: enough to fill any screen, read in milliseconds however many
        tasks there are; the rest follows in the background.
        """
        where, params = _where(flt)
        page: dict[Quadrant, builtins.list[Task]] = {}
        for q in Quadrant:
            rows = self._store.query(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE {where} AND quadrant = ? "
                "ORDER BY position, id LIMIT ?",
                [*params, int(q), per_quadrant],
            )
            page[q] = [_task_from_row(r) for r in rows]
        counted = self._store.query(
            f"SELECT quadrant, count(*) FROM tasks WHERE {where} GROUP BY quadrant", params
        )
        found = {Quadrant(q): n for q, n in counted}
        return page, {q: found.get(q, 0) for q in Quadrant}

    def list_all(self) -> builtins.list[Task]:
        """Every task that is not deleted, done ones included."""
        return self.list(TaskFilter(show_done=True))

    def counts(self) -> dict[Quadrant, int]:
        """Open tasks per quadrant."""
        rows = self._store.query(
            "SELECT quadrant, count(*) FROM tasks WHERE deleted = 0 AND status = 'open' GROUP BY quadrant"
        )
        found = {Quadrant(q): n for q, n in rows}
        return {q: found.get(q, 0) for q in Quadrant}

    # Writing -------------------------------------------------------------------------------------------

    def add_quick(self, text: str) -> Task:
        """Add a task from a quick-add line ("Call Dana tomorrow 3pm !urgent #sales")."""
        draft = quickadd.parse(text, self._now())
        return self.add(
            draft.title, due=draft.due, urgent=draft.urgent, important=draft.important, tags=draft.tags
        )

    def add(
        self,
        title: str,
        *,
        notes: str = "",
        due: datetime | None = None,
        urgent: bool = False,
        important: bool = False,
        tags: Iterable[str] = (),
        quadrant: Quadrant | None = None,
        source: str = "manual",
    ) -> Task:
        now = self._now()
        task = self._validated(
            id=new_id(), title=title, notes=notes, due=due, urgent=urgent, important=important,
            tags=list(tags), source=source, created_at=now, updated_at=now,
        )  # fmt: skip
        scores = self._score(task.due, task.urgent, task.important, task.tags)
        placed = quadrant if quadrant is not None else scores.quadrant
        fields = {
            "title": task.title,
            "notes": task.notes,
            "due": iso(task.due),
            "urgent": task.urgent,
            "important": task.important,
            "urgency": scores.urgency,
            "importance": scores.importance,
            "quadrant": int(placed),
            "manual": quadrant is not None,
            "position": self._end_of(placed),
            "status": TaskStatus.OPEN.value,
            "completed_at": None,
            "tags": task.tags,
            "source": task.source,
            "created_at": iso(now),
            "deleted": False,
        }
        self._write(f"add “{task.title}”", [(task.id, fields)])
        return self.get(task.id)

    def update(self, task_id: str, **changes: Any) -> Task:
        """Edit title, notes, due, urgent, important or tags; the quadrant follows unless placed by hand."""
        allowed = {"title", "notes", "due", "urgent", "important", "tags"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInputError(f"cannot edit {sorted(unknown)} of a task")
        current = self.get(task_id)
        merged = current.model_dump() | changes
        task = self._validated(**merged)
        scores = self._score(task.due, task.urgent, task.important, task.tags)
        fields: dict[str, Any] = {
            "title": task.title,
            "notes": task.notes,
            "due": iso(task.due),
            "urgent": task.urgent,
            "important": task.important,
            "tags": task.tags,
            "urgency": scores.urgency,
            "importance": scores.importance,
        }
        if not current.manual and scores.quadrant != current.quadrant:
            fields["quadrant"] = int(scores.quadrant)
            fields["position"] = self._end_of(scores.quadrant)
        self._write(f"edit “{task.title}”", [(task_id, fields)])
        return self.get(task_id)

    def toggle_done(self, task_id: str) -> Task:
        task = self.get(task_id)
        if task.status is TaskStatus.DONE:
            fields = {"status": TaskStatus.OPEN.value, "completed_at": None}
            verb = "reopen"
        else:
            fields = {"status": TaskStatus.DONE.value, "completed_at": iso(self._now())}
            verb = "complete"
        self._write(f"{verb} “{task.title}”", [(task_id, fields)])
        return self.get(task_id)

    def delete(self, task_id: str) -> str:
        task = self.get(task_id)
        self._write(f"delete “{task.title}”", [(task_id, {"deleted": True})])
        return task.title

    def move(self, task_id: str, quadrant: Quadrant) -> Task:
        """Place a task by hand: it stays in `quadrant` whatever its scores say, until placed back."""
        task = self.get(task_id)
        quadrant = Quadrant(quadrant)
        fields: dict[str, Any] = {"quadrant": int(quadrant), "manual": True}
        if quadrant != task.quadrant:
            fields["position"] = self._end_of(quadrant)
        self._write(f"move “{task.title}” to {quadrant.label}", [(task_id, fields)])
        return self.get(task_id)

    def place_automatically(self, task_id: str) -> Task:
        """Let the scores place the task again."""
        task = self.get(task_id)
        scores = self._score(task.due, task.urgent, task.important, task.tags)
        fields: dict[str, Any] = {"manual": False, "quadrant": int(scores.quadrant)}
        if scores.quadrant != task.quadrant:
            fields["position"] = self._end_of(scores.quadrant)
        self._write(f"let scores place “{task.title}”", [(task_id, fields)])
        return self.get(task_id)

    def reorder(self, task_id: str, offset: int) -> Task:
        """Move a task `offset` places up (negative) or down within its quadrant, among the open tasks
        (the ones the matrix shows by default) and the task itself."""
        task = self.get(task_id)
        rows = self._store.query(
            "SELECT id, position FROM tasks WHERE deleted = 0 AND quadrant = ? "
            "AND (status = 'open' OR id = ?) ORDER BY position, id",
            (int(task.quadrant), task_id),
        )
        ids = [r[0] for r in rows]
        positions = {r[0]: float(r[1]) for r in rows}
        index = ids.index(task_id)
        target = max(0, min(len(ids) - 1, index + offset))
        if target == index:
            return task
        others = [i for i in ids if i != task_id]
        edits: builtins.list[tuple[str, dict[str, Any]]] = []
        # Fractional index: the new position sits between the two neighbours at the target slot, so one
        # row changes (and one operation syncs) however long the list.
        before = positions[others[target - 1]] if target > 0 else positions[others[0]] - 2.0
        after = positions[others[target]] if target < len(others) else positions[others[-1]] + 2.0
        position = (before + after) / 2
        if not before < position < after:
            # Neighbours share a position (two devices appended at once): number the list afresh.
            order = [*others[:target], task_id, *others[target:]]
            edits = [(i, {"position": float(n)}) for n, i in enumerate(order, start=1) if positions[i] != n]
        else:
            edits = [(task_id, {"position": position})]
        self._write(f"reorder “{task.title}”", edits)
        return self.get(task_id)

    def rescore(self) -> int:
        """Re-place tasks whose quadrant changed with time (a due date drew near); returns how many.

        Only an open, automatically placed task with a due date can change with time, so only those are
        read (a few columns each), not the whole matrix.
        """
        rows = self._store.query(
            "SELECT id, due, urgent, important, tags, quadrant FROM tasks "
            "WHERE deleted = 0 AND status = 'open' AND manual = 0 AND due IS NOT NULL"
        )
        edits: builtins.list[tuple[str, dict[str, Any]]] = []
        for task_id, due, urgent, important, tags, quadrant in rows:
            scores = self._score(parse_time(due), bool(urgent), bool(important), json.loads(tags))
            if scores.quadrant != quadrant:
                fields = {
                    "urgency": scores.urgency,
                    "importance": scores.importance,
                    "quadrant": int(scores.quadrant),
                    "position": self._end_of(scores.quadrant) + len(edits),
                }
                edits.append((task_id, fields))
        if edits:
            # A time-driven re-placement is not something the person did: `u` should not reverse it.
            self._write("re-place tasks whose due dates drew near", edits, undoable=False)
        return len(edits)

    # Helpers -------------------------------------------------------------------------------------------

    def _validated(self, **fields: Any) -> Task:
        fields.setdefault("tags", [])
        try:
            fields["tags"] = normalise_tags(list(fields["tags"]))
            return Task.model_validate(fields)
        except ValueError as exc:
            raise InvalidInputError(validation_message(exc)) from None

    def placement(
        self, due: datetime | None, urgent: bool, important: bool, tags: builtins.list[str]
    ) -> tuple[priority.Scores, float]:
        """Scores for a new task and its position at the end of the quadrant they put it in (importers)."""
        scores = self._score(due, urgent, important, tags)
        return scores, self._end_of(scores.quadrant)

    def _score(
        self, due: datetime | None, urgent: bool, important: bool, tags: builtins.list[str]
    ) -> priority.Scores:
        return priority.score(
            due=due,
            urgent=urgent,
            important=important,
            tags=tags,
            now=self._now(),
            urgent_within_days=self.rules.urgent_within_days,
            important_tags=self.rules.important_tags,
        )

    def _end_of(self, quadrant: Quadrant) -> float:
        rows = self._store.query(
            "SELECT max(position) FROM tasks WHERE deleted = 0 AND quadrant = ?", (int(quadrant),)
        )
        top = rows[0][0]
        return float(top) + 1.0 if top is not None else 1.0
