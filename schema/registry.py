"""Every entity kind an operation may touch, its fields, and the check of an operation's values."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal, cast

from pydantic import TypeAdapter, ValidationError

from aurora.schema.memory import Interaction, Item, Person
from aurora.schema.models import Note, Task, _Entity

EntityKind = Literal["task", "note", "item", "person", "interaction"]

_MODELS: dict[str, type[_Entity]] = {
    "task": Task,
    "note": Note,
    "item": Item,
    "person": Person,
    "interaction": Interaction,
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


def check_field_values(kind: str, fields: dict[str, Any]) -> None:
    """Raise ValueError naming the first field whose value the entity model would refuse.

    Operations carry JSON values (dates as ISO text); this checks each against the model's own type and
    limits, so an operation from a file or the network can never store what the UI would not.
    """
    for name, value in fields.items():
        try:
            _field_adapter(kind, name).validate_python(value, strict=False)
        except ValidationError as exc:
            msg = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise ValueError(f"{kind} field '{name}': {msg}") from None
        if kind == "note" and name == "body" and isinstance(value, str) and not value.strip():
            raise ValueError("note field 'body': a note needs some text")
