"""Entity models and SQL migrations shared by the laptop and the node.

This package imports nothing else of Aurora's, so both sides can depend on it.
"""

from aurora.schema.memory import Interaction, InteractionKind, Item, ItemKind, ParticipantRef, Person
from aurora.schema.models import (
    MAX_BODY,
    MAX_NOTES,
    MAX_TAG,
    MAX_TAGS,
    MAX_TITLE,
    Note,
    NoteColour,
    Quadrant,
    Task,
    TaskStatus,
    normalise_tags,
)
from aurora.schema.registry import ENTITY_FIELDS, EntityKind, check_field_values

__all__ = [
    "ENTITY_FIELDS",
    "MAX_BODY",
    "MAX_NOTES",
    "MAX_TAG",
    "MAX_TAGS",
    "MAX_TITLE",
    "EntityKind",
    "Interaction",
    "InteractionKind",
    "Item",
    "ItemKind",
    "Note",
    "NoteColour",
    "ParticipantRef",
    "Person",
    "Quadrant",
    "Task",
    "TaskStatus",
    "check_field_values",
    "normalise_tags",
]
