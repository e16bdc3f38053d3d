"""Every entity kind an operation may touch, its fields, and the check of an operation's values."""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any, Literal, NotRequired, cast

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

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


def _field_type(kind: str, name: str) -> Any:
    """A field's type as the model declares it, with its limits and validators."""
    info = _MODELS[kind].model_fields[name]
    target: Any = info.annotation
    if info.metadata:
        target = cast(Any, Annotated)[(info.annotation, *info.metadata)]
    return target


@cache
def _field_adapter(kind: str, name: str) -> TypeAdapter[Any]:
    return TypeAdapter(_field_type(kind, name))


@cache
def field_types(kind: str) -> dict[str, Any]:
    """Each field an operation on `kind` may set, with its type as the model declares it (limits and
    validators included), by name, sorted."""
    return {name: _field_type(kind, name) for name in sorted(ENTITY_FIELDS[kind])}


@cache
def fields_shape(kind: str) -> Any:
    """A `fields` dict of `kind` as a type: a TypedDict of the model's fields (`id` left out), none
    required, each with the type `_field_adapter` checks it against, and no other key (pydantic refuses
    one). Validated strictly from JSON it refuses what `check_field_values` refuses, except the checks
    that type cannot hold: a note's blank body (`check_note_body`) and that floats stay finite."""
    names = sorted(ENTITY_FIELDS[kind])
    # typing_extensions' TypedDict: pydantic takes typing's only from Python 3.12 on.
    shape = cast(Any, TypedDict)(
        f"{kind.title()}Fields", {n: NotRequired[_field_type(kind, n)] for n in names}
    )
    return with_config(ConfigDict(extra="forbid"))(shape)


@cache
def _kind_adapter(kind: str) -> TypeAdapter[Any] | None:
    """One strict validator for a whole `fields` dict of `kind` (`fields_shape`). One JSON text and one
    pass in pydantic's core per operation, not one of each per field: the per-field check cost a quarter of
    a sync's time. None when a kind cannot be expressed so; its fields are then checked one by one."""
    try:
        return TypeAdapter(fields_shape(kind))
    except Exception:  # a type pydantic cannot put in a TypedDict: the per-field check still works
        return None


@cache
def float_fields(kind: str) -> frozenset[str]:
    """The fields of `kind` that hold a float: those whose check turns the JSON integer 1 into 1.0 (as
    `check_field_values` converts such integers, so every replica stores a REAL)."""
    found = set()
    for name in ENTITY_FIELDS[kind]:
        try:
            value = _field_adapter(kind, name).validate_json("1", strict=True)
        except ValidationError:
            continue
        if isinstance(value, float):
            found.add(name)
    return frozenset(found)


def check_field_values(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Raise ValueError naming the first field whose value the entity model would refuse; return the
    fields with every number a float field holds as a float.

    Operations carry JSON values (dates as ISO text); this checks each, as JSON and strictly, against the
    model's own type and limits, so an operation from a file or the network can never store what the UI
    would not. Strictly, because every replica must read a value the same way: the laptop's SQLite columns
    would turn `"yes"` into true while the node's JSON keeps `"yes"`. NaN and infinities are refused
    (not JSON). An integer in a float field becomes a float: a 21-digit one fits SQLite's REAL, not its
    INTEGER.

    The whole dict is checked at once (`_kind_adapter`); when that refuses it, or names a field the kind
    does not have, the fields are checked again one by one, which says which one is wrong, in order.
    """
    known = ENTITY_FIELDS.get(kind)
    adapter = _kind_adapter(kind) if known is not None and fields.keys() <= known else None
    if adapter is not None:
        try:
            validated = adapter.validate_json(_ENCODER.encode(fields), strict=True)
        except (TypeError, ValueError):  # ValidationError is a ValueError; so is NaN for the encoder
            pass
        else:
            out = dict(fields)
            for name, value in fields.items():
                is_int = isinstance(value, int) and not isinstance(value, bool)
                if is_int and isinstance(validated[name], float):
                    out[name] = float(value)
            if kind == "note":
                check_note_body(fields)
            return out
    return _check_one_by_one(kind, fields)


_ENCODER = json.JSONEncoder(allow_nan=False)
"""`json.dumps(value, allow_nan=False)`, built once (`json.dumps` with an option builds one per call)."""


def check_note_body(fields: dict[str, Any]) -> None:
    """Raise ValueError when a note's fields set a blank body (the model's own validator, which a field's
    type does not carry)."""
    body = fields.get("body")
    if isinstance(body, str) and not body.strip():
        raise ValueError("note field 'body': a note needs some text")


def _check_one_by_one(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """`check_field_values`, a field at a time: the first refused field, in the order given, is named."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        try:
            text = _ENCODER.encode(value)
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
