"""Memory entities: what was imported (items), the people in it, and who took part in what.

Like tasks and notes they change only through operations, so they sync; their ids are derived from the
source (see `aurora.app.ingest.pipeline`), so two devices importing the same mail make the same item.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from aurora.schema.models import _Entity

MAX_ITEM_BODY = 200_000
MAX_PARTICIPANTS = 500


class ItemKind(StrEnum):
    MAIL = "mail"
    EVENT = "event"
    MESSAGE = "message"
    TRANSCRIPT = "transcript"


class InteractionKind(StrEnum):
    MAIL_IN = "mail_in"
    """They wrote to the person (or to a list the person is on)."""
    MAIL_OUT = "mail_out"
    MEETING = "meeting"
    MESSAGE = "message"
    TRANSCRIPT = "transcript"


class ParticipantRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="", max_length=300)
    email: str = Field(default="", max_length=320)
    role: str = Field(default="to", max_length=20)


Short = Annotated[str, Field(max_length=500)]


class Item(_Entity):
    """One imported thing: a mail, an event, a chat message, a meeting transcript."""

    kind: ItemKind
    source: str = Field(min_length=1, max_length=40)
    external_id: str = Field(min_length=1, max_length=1000)
    title: str = Field(default="", max_length=2000)
    body: str = Field(default="", max_length=MAX_ITEM_BODY)
    occurred_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    thread_id: str | None = Field(default=None, max_length=1000)
    participants: list[ParticipantRef] = Field(default_factory=list, max_length=MAX_PARTICIPANTS)
    extra: dict[str, Any] = Field(default_factory=dict)


class Person(_Entity):
    """One person across every source: matched by e-mail address first, then carefully by name."""

    name: str = Field(default="", max_length=300)
    emails: list[Short] = Field(default_factory=list, max_length=50)
    phones: list[Short] = Field(default_factory=list, max_length=50)
    org: str = Field(default="", max_length=300)
    job_title: str = Field(default="", max_length=300)
    vip: bool = False
    notes: str = Field(default="", max_length=20_000)


class Interaction(_Entity):
    """A person took part in an item (wrote it, received it, attended it, spoke in it)."""

    person_id: str = Field(min_length=1, max_length=64)
    item_id: str = Field(min_length=1, max_length=64)
    kind: InteractionKind
    occurred_at: AwareDatetime | None = None
