"""The operation: one change to one entity, as written to the log and (later) sent over the wire."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from uuid6 import uuid7

from aurora.schema import ENTITY_FIELDS, EntityKind, check_field_values
from aurora.sync.clock import Hlc

JsonValue = Any


def new_id() -> str:
    """A UUIDv7 as text: unique, and sortable by creation time."""
    return str(uuid7())


class Operation(BaseModel):
    """Set some fields of one entity. Creation sets them all; deletion sets `deleted`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    op_id: str = Field(min_length=1, max_length=64)
    device_id: str = Field(min_length=1, max_length=64)
    hlc: str = Field(min_length=1, max_length=100)
    entity: EntityKind
    entity_id: str = Field(min_length=1, max_length=64)
    fields: dict[str, JsonValue]

    @field_validator("hlc")
    @classmethod
    def _valid_hlc(cls, value: str) -> str:
        Hlc.decode(value)
        return value

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, JsonValue], info: Any) -> dict[str, JsonValue]:
        entity = info.data.get("entity")
        if entity is not None:
            unknown = set(value) - ENTITY_FIELDS[entity]
            if unknown:
                raise ValueError(f"unknown {entity} fields: {sorted(unknown)}")
            value = check_field_values(entity, value)
        if not value:
            raise ValueError("an operation sets at least one field")
        return value

    @property
    def clock(self) -> Hlc:
        return Hlc.decode(self.hlc)
