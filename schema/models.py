"""Pydantic models of Aurora's entities, with the limits a person would expect.

An entity's fields are also the unit of merging (last writer wins per field), so every field listed in
`ENTITY_FIELDS` is something an operation may set. `deleted` is a field like any other: a delete is an
operation that sets it, and an undo sets it back.
"""

from __future__ import annotations

import re
from enum import IntEnum, StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

MAX_TITLE = 500
MAX_NOTES = 20_000
MAX_BODY = 20_000
MAX_TAGS = 20
MAX_TAG = 40

_TAG_RE = re.compile(r"^[\w][\w\-/.]*$")


class Quadrant(IntEnum):
    """The four cells of the Eisenhower matrix, numbered as the keys 1-4 that move a task there."""

    DO_FIRST = 1
    SCHEDULE = 2
    DELEGATE = 3
    ELIMINATE = 4

    @property
    def label(self) -> str:
        return _QUADRANT_LABELS[self]

    @property
    def hint(self) -> str:
        return _QUADRANT_HINTS[self]


_QUADRANT_LABELS = {
    Quadrant.DO_FIRST: "Do first",
    Quadrant.SCHEDULE: "Schedule",
    Quadrant.DELEGATE: "Delegate",
    Quadrant.ELIMINATE: "Eliminate",
}
_QUADRANT_HINTS = {
    Quadrant.DO_FIRST: "urgent, important",
    Quadrant.SCHEDULE: "important, not urgent",
    Quadrant.DELEGATE: "urgent, not important",
    Quadrant.ELIMINATE: "neither",
}


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class NoteColour(StrEnum):
    YELLOW = "yellow"
    PINK = "pink"
    BLUE = "blue"
    GREEN = "green"
    PURPLE = "purple"
    ORANGE = "orange"


def normalise_tags(tags: list[str]) -> list[str]:
    """Lower-case, strip a leading '#', drop duplicates, keep order; refuse what cannot be a tag."""
    seen: dict[str, None] = {}
    for raw in tags:
        tag = raw.strip().lstrip("#").lower()
        if not tag:
            continue
        if len(tag) > MAX_TAG:
            raise ValueError(f"tag '{tag[:20]}...' is longer than {MAX_TAG} characters")
        if not _TAG_RE.match(tag):
            raise ValueError(f"tag '{tag}' may hold only letters, digits and - _ / .")
        seen[tag] = None
    if len(seen) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    return list(seen)


def _strip_title(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("a task needs a title")
    return value


Title = Annotated[str, AfterValidator(_strip_title), Field(max_length=MAX_TITLE)]
Tags = Annotated[list[str], AfterValidator(normalise_tags)]


class _Entity(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    id: str = Field(min_length=1, max_length=64)
    # Times carry their offset: a naive time from a file or another device is refused, not guessed.
    created_at: AwareDatetime
    updated_at: AwareDatetime
    deleted: bool = False


class Task(_Entity):
    """A task on the matrix.

    `urgency` and `importance` are scores in [0, 1] computed by the core's priority scoring; `quadrant`
    follows them until the person places the task by hand (`manual`). `position` orders tasks within a
    quadrant (a fractional index, so a reorder writes one row).
    """

    title: Title
    notes: str = Field(default="", max_length=MAX_NOTES)
    due: AwareDatetime | None = None
    urgent: bool = False
    important: bool = False
    urgency: float = Field(default=0.0, ge=0.0, le=1.0)
    importance: float = Field(default=0.0, ge=0.0, le=1.0)
    quadrant: Quadrant = Quadrant.ELIMINATE
    manual: bool = False
    position: float = Field(default=0.0, allow_inf_nan=False)
    status: TaskStatus = TaskStatus.OPEN
    completed_at: AwareDatetime | None = None
    tags: Tags = Field(default_factory=list)
    source: str = Field(default="manual", max_length=200)


class Note(_Entity):
    """A sticky note."""

    body: str = Field(max_length=MAX_BODY)
    colour: NoteColour = NoteColour.YELLOW
    pinned: bool = False
    tags: Tags = Field(default_factory=list)

    @field_validator("body")
    @classmethod
    def _body_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a note needs some text")
        return value.rstrip()
