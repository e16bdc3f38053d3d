"""Checking a whole batch of operations at once, in pydantic's core, before trusting it.

A push or a pulled page carries up to 2,000 operations. Validating each as an `Operation` runs Python
validators per operation (the clock's form, then its fields against the entity model), and on a 2-core
machine that was a fifth of a sync's CPU. Here the batch's JSON text is checked in one pass of pydantic's
core against one type that says everything `Operation` says, per entity kind (a tagged union on
`entity`, each with the kind's fields as a strict TypedDict, `aurora.schema.registry.fields_shape`, and
the clock's canonical form as a pattern), plus what `Operation` does by converting: a float field must
hold a float (`Operation` turns an integer there into one), and every number must be finite.

The check is never looser than `Operation`, only sometimes stricter: an operation that passes is exactly
what `Operation` would make of it, and is built without validating again (`Operation.model_construct`).
A batch that does not pass goes through `Operation` as before, with the same outcome and the same
refusals as ever. Values come from a parse of the same text: where JSON repeats a key, pydantic's parser
and `json` both keep the last, so what was checked is what is kept. SQLite keeps the first: the page a
laptop's SQLite reads is therefore written again from the parse the check used, which holds each key once
(`check_page`).
"""

from __future__ import annotations

import gc
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Annotated, Any, Literal, NamedTuple, NotRequired, Union, cast, get_args

import pydantic_core
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict

from aurora.schema import ENTITY_FIELDS, EntityKind
from aurora.schema.registry import check_note_body, field_types, float_fields
from aurora.sync.ops import Operation
from aurora.sync.protocol import MAX_BATCH

_Id = Annotated[str, Field(min_length=1, max_length=64)]
_HLC_FORM = r"^[0-9]{13}\.[0-9a-f]{6}\.[A-Za-z0-9_\-]{1,64}$"
"""`aurora.sync.clock.Hlc.decode`'s canonical form."""
_FORBID = ConfigDict(extra="forbid")


def _a_float(value: Any) -> Any:
    """A float field's value as sent: a finite float already (not an integer, which `Operation` would
    convert)."""
    if value is not None and (type(value) is not float or not math.isfinite(value)):
        raise ValueError("a float field holds an integer or a number that is not finite")
    return value


def _finite(value: Any) -> Any:
    """A free JSON value (an item's `extra`) holds no NaN or infinity: pydantic's parser takes `NaN`,
    `Infinity` and numbers past a float's range, which `Operation` refuses (they are not JSON)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("a number that is not finite")
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return value


def _holds_any(annotation: Any) -> bool:
    """Whether a field's type takes free JSON somewhere (`Any`)."""
    return annotation is Any or any(_holds_any(arg) for arg in get_args(annotation))


def _batch_type(kind: str, name: str, annotation: Any) -> Any:
    """A field's type as the batch check takes it."""
    if name in float_fields(kind):
        return Annotated[annotation, BeforeValidator(_a_float)]
    if _holds_any(annotation):
        return Annotated[annotation, AfterValidator(_finite)]
    return annotation


def _operation_shape(kind: str) -> Any:
    """An operation on `kind` as a TypedDict: `Operation`'s fields, limits and checks."""
    fields = cast(Any, TypedDict)(
        f"{kind.title()}BatchFields",
        {name: NotRequired[_batch_type(kind, name, t)] for name, t in field_types(kind).items()},
    )
    shape = cast(Any, TypedDict)(
        f"{kind.title()}Operation",
        {
            "op_id": _Id,
            "device_id": _Id,
            "hlc": Annotated[str, Field(pattern=_HLC_FORM)],
            "entity": Literal[kind],
            "entity_id": _Id,
            "fields": with_config(_FORBID)(fields),
        },
    )
    return with_config(_FORBID)(shape)


@cache
def _checks() -> tuple[TypeAdapter[Any], TypeAdapter[Any]]:
    """The two batch checks: a push body and a pulled page."""
    kinds = get_args(EntityKind)
    assert set(kinds) == set(ENTITY_FIELDS), "EntityKind and the registry disagree"
    shapes = tuple(_operation_shape(kind) for kind in kinds)
    # Types built at run time: `cast` keeps the type checker from reading them as annotations.
    operation: Any = cast(Any, Annotated)[cast(Any, Union)[shapes], Discriminator("entity")]
    # A push body's other keys are `PushRequest`'s to check.
    push = cast(Any, TypedDict)("PushOperations", {"ops": cast(Any, list)[operation]})
    pulled = with_config(_FORBID)(
        cast(Any, TypedDict)("PulledOperation", {"seq": Annotated[int, Field(ge=1)], "op": operation})
    )
    page = with_config(_FORBID)(
        cast(Any, TypedDict)(
            "PulledPage",
            {
                "ops": Annotated[cast(Any, list)[pulled], Field(max_length=MAX_BATCH)],
                "cursor": Annotated[int, Field(ge=0)],
                "head": Annotated[int, Field(ge=0)],
                "more": bool,
            },
        )
    )
    return TypeAdapter(push), TypeAdapter(page)


def prepare() -> None:
    """Build the checks now (~20 ms) rather than at the first batch: for a process about to serve."""
    _checks()


def _validate(adapter: TypeAdapter[Any], body: bytes) -> Any | None:
    try:
        with _collector_paused():
            return adapter.validate_json(body, strict=True)
    except ValidationError:
        return None


_pause_lock = threading.Lock()
_pause_depth = 0
_resume = False


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a batch is checked. The check builds ~50,000 small
    objects for 2,000 operations; freed by reference counting, they need no collector, but allocating
    them set it off dozens of times, and now and then into a full collection of everything the process
    holds (~65 ms on a laptop with the app loaded). The switch is process-wide: for those ~15 ms no thread's
    cyclic garbage is collected (it is later). Re-enabled when the last thread inside leaves, if it was on
    when the first came in (code that turns the collector off meanwhile is overridden then)."""
    global _pause_depth, _resume
    with _pause_lock:
        if _pause_depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pause_depth += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pause_depth -= 1
            if _pause_depth == 0 and _resume:
                gc.enable()


def _complete(fields: dict[str, Any], kind: str) -> bool:
    """What no type holds: an operation sets some field, and a note's body is not blank."""
    if not fields:
        return False
    if kind == "note":
        try:
            check_note_body(fields)
        except ValueError:
            return False
    return True


def checked_push(body: bytes, raws: Sequence[Any]) -> list[Operation | None]:
    """The operations of a push: `raws` are the body's `ops` as the caller parsed them from `body`. Each is
    an `Operation` built without validating again when the whole body passes the batch check, or None
    where `Operation` must still judge it (every one, when the body does not pass)."""
    checked = _validate(_checks()[0], body)
    if checked is None or len(checked["ops"]) != len(raws):
        return [None] * len(raws)
    return [
        Operation.model_construct(**raw) if _complete(op["fields"], op["entity"]) else None
        for raw, op in zip(raws, checked["ops"], strict=True)
    ]


class PageOp(NamedTuple):
    """What the store needs to know of a pulled operation to write it from the page's JSON."""

    position: int
    """Its index in the page's `ops`."""
    op_id: str
    hlc: str
    entity: EntityKind
    entity_id: str
    names: tuple[str, ...]
    """The fields it sets."""


class CheckedPage(NamedTuple):
    """A pulled page that passed the batch check whole (`check_page`)."""

    body: bytes
    """The page's JSON text (a `PullResponse`), each key once: the store reads the values from it."""
    ops: list[PageOp]
    cursor: int
    head: int
    more: bool

    def operations(self) -> list[Operation]:
        """The page's operations, as `Operation`s (parsed again, with the parser the check used)."""
        items = pydantic_core.from_json(self.body)["ops"]
        return [Operation.model_construct(**item["op"]) for item in items]


def check_page(body: bytes) -> CheckedPage | None:
    """The page, when its JSON passes the batch check whole; None otherwise (validate it as a
    `PullResponse`, which says what is wrong, or passes the few the check is stricter about)."""
    checked = _validate(_checks()[1], body)
    if checked is None:
        return None
    # Written again from the parse the check used (the last of a repeated key), for SQLite, which would
    # read the first: a page repeating a key must not get past the check with values it never saw. ~9 ms
    # for 2,000 operations; an honest node's pages never repeat one.
    body = pydantic_core.to_json(pydantic_core.from_json(body))
    ops = []
    for position, item in enumerate(checked["ops"]):
        op = item["op"]
        fields = op["fields"]
        if not _complete(fields, op["entity"]):
            return None
        ops.append(PageOp(position, op["op_id"], op["hlc"], op["entity"], op["entity_id"], tuple(fields)))
    return CheckedPage(body, ops, checked["cursor"], checked["head"], checked["more"])
