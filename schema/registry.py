"""Every entity kind an operation may touch, its fields, and the check of an operation's values."""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any, Literal, cast

from pydantic import TypeAdapter, ValidationError

from aurora.schema.chat import Action, Conversation, Message
from aurora.schema.memory import Interaction, Item, Person
from aurora.schema.models import Note, Task, _Entity

EntityKind = Literal["task", "note", "item", "person", "interaction", "conversation", "message", "action"]

_MODELS: dict[str, type[_Entity]] = {
    "task": Task,
    "note": Note,
    "item": Item,
    "person": Person,
    "interaction": Interaction,
    "conversation": Conversation,
    "message": Message,
    "action": Action,
}

ENTITY_FIELDS: dict[str, frozenset[str]] = {
    kind: frozenset(model.model_fields) - {"id"} for kind, model in _MODELS.items()
}
"""The fields an operation may set, by entity kind."""


@cache
def _field_adapter(kind: str, name: str) -> TypeAdapter[Any]:
    info = _MODELS[kind].model_fields[name]
    target: Any = info.annotation
    if info.metadata:
        target = cast(Any, Annotated)[(info.annotation, *info.metadata)]
    return TypeAdapter(target)


def check_field_values(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Raise ValueError naming the first field whose value the entity model would refuse; return the
    fields with every number a float field holds as a float.

    Operations carry JSON values (dates as ISO text); this checks each, as JSON and strictly, against the
    model's own type and limits, so an operation from a file or the network can never store what the UI
    would not. Strictly, because every replica must read a value the same way: the laptop's SQLite columns
    would turn `"yes"` into true while the node's JSON keeps `"yes"`. NaN and infinities are refused
    (not JSON). An integer in a float field becomes a float: a 21-digit one fits SQLite's REAL, not its
    INTEGER.
    """
    out: dict[str, Any] = {}
    for name, value in fields.items():
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(
                f"{kind} field '{name}': not a JSON value (NaN, infinity or an object)"
            ) from None
        try:
            validated = _field_adapter(kind, name).validate_json(text, strict=True)
        except ValidationError as exc:
            msg = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise ValueError(f"{kind} field '{name}': {msg}") from None
        is_int = isinstance(value, int) and not isinstance(value, bool)
        out[name] = float(value) if is_int and isinstance(validated, float) else value
        if kind == "note" and name == "body" and isinstance(value, str) and not value.strip():
            raise ValueError("note field 'body': a note needs some text")
    return out
