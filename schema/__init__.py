"""Entity models and SQL migrations shared by the laptop and the node.

This package imports nothing else of Aurora's, so both sides can depend on it.
"""

from aurora.schema.models import (
    ENTITY_FIELDS,
    MAX_BODY,
    MAX_NOTES,
    MAX_TAG,
    MAX_TAGS,
    MAX_TITLE,
    EntityKind,
    Note,
    NoteColour,
    Quadrant,
    Task,
    TaskStatus,
    check_field_values,
    normalise_tags,
)

__all__ = [
    "ENTITY_FIELDS",
    "MAX_BODY",
    "MAX_NOTES",
    "MAX_TAG",
    "MAX_TAGS",
    "MAX_TITLE",
    "EntityKind",
    "Note",
    "NoteColour",
    "Quadrant",
    "Task",
    "TaskStatus",
    "check_field_values",
    "normalise_tags",
]
