"""Conversations with the assistant, their messages, and actions queued for whoever can carry them out.

All three change only through operations, so they sync like tasks: a conversation started on one laptop
is on the other after the next sync, and an answer the node writes reaches every device.

A question asked where no model can answer becomes an `Action` of kind `ask` with status `queued`; its
conversation shows "waiting for node" until a device or the node with a model answers it. The answer is
written into the waiting assistant message (`status` "waiting" → "done" or "failed") and the action is
marked done in the same transaction, so a second answerer sees it taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from aurora.schema.models import _Entity

MAX_MESSAGE = 100_000
"""The longest question or answer kept, in characters (a question is refused above 100 kB first)."""
MAX_CONVERSATION_TITLE = 200
MAX_SOURCES = 50


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(StrEnum):
    DONE = "done"
    STREAMING = "streaming"
    """Being written on the device that set it; a crash leaves it so, shown as cut short."""
    WAITING = "waiting"
    """Queued: no model could answer when it was asked (an `ask` action waits for one)."""
    FAILED = "failed"


class ActionKind(StrEnum):
    ASK = "ask"


class ActionStatus(StrEnum):
    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SourceRef(BaseModel):
    """One source an answer had in its prompt: which entity, and what the person saw it called."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ref: str = Field(max_length=10)
    """The marker the answer cites it by: S1, S2, ..."""
    kind: str = Field(max_length=20)
    entity_id: str = Field(min_length=1, max_length=64)
    title: str = Field(default="", max_length=300)
    cited: bool = False


class Conversation(_Entity):
    title: str = Field(default="", max_length=MAX_CONVERSATION_TITLE)
    personality: str = Field(default="robbie", max_length=80)


class Message(_Entity):
    """One turn. `position` orders turns within a conversation (a question and its answer are made
    together, so their positions never collide across devices: the answer's is the question's + 1)."""

    conversation_id: str = Field(min_length=1, max_length=64)
    role: Role
    text: str = Field(default="", max_length=MAX_MESSAGE)
    position: int = Field(default=0, ge=0, le=2**63 - 1)  # SQLite's INTEGER: a larger one cannot be stored
    personality: str = Field(default="", max_length=80)
    status: MessageStatus = MessageStatus.DONE
    error: str = Field(default="", max_length=2000)
    sources: list[SourceRef] = Field(default_factory=list, max_length=MAX_SOURCES)
    model: str = Field(default="", max_length=200)
    local: bool = False
    """Answered by the small local model (shown as such)."""


Payload = Annotated[dict[str, Any], Field()]


class Action(_Entity):
    """Something to be done by whoever can: today only `ask` (payload: conversation_id, question_id,
    answer_id, question, personality)."""

    kind: ActionKind
    status: ActionStatus = ActionStatus.QUEUED
    payload: Payload = Field(default_factory=dict)
    error: str = Field(default="", max_length=2000)
    done_by: str = Field(default="", max_length=64)
    """The device (or node) that carried it out."""


@dataclass(frozen=True)
class QueuedAsk:
    """An `ask` action as whoever answers it reads it (the laptop's conversations, the node's processor)."""

    action_id: str
    conversation_id: str
    question_id: str
    answer_id: str
    question: str
    personality: str


def queued_ask(action_id: str, payload: object) -> QueuedAsk | None:
    """The ask in an action's payload; None for a payload this version does not understand."""
    if not isinstance(payload, Mapping):
        return None
    try:
        return QueuedAsk(
            action_id,
            str(payload["conversation_id"]),
            str(payload["question_id"]),
            str(payload["answer_id"]),
            str(payload["question"]),
            str(payload.get("personality") or ""),
        )
    except KeyError:
        return None
