"""Conversations with the assistant: saved turn by turn as operations, so they sync like tasks.

A turn is two messages made in one transaction: the person's question and the assistant's answer, which
starts as `streaming` and ends `done` (its text, the sources that were in the prompt, the model) or
`failed` (the one-line reason, and whatever part of the answer had arrived). Only the finished answer is
written, never each streamed piece: one operation per answer, not hundreds. A process killed mid-answer
leaves it `streaming`, which the chat screen shows as cut short.

Asked where no model can answer, the answer is `waiting` and an `ask` action is queued (the replicated
`actions` table) for whoever can answer: this laptop once a model is in reach, or the node after sync.
`complete_action` writes the answer and marks the action done in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aurora.app.entities import iso, like_escape, parse_stamp
from aurora.app.errors import InvalidInputError, NotFoundError
from aurora.app.store import Store
from aurora.app.store.store import Transaction
from aurora.schema.chat import (
    MAX_CONVERSATION_TITLE,
    MAX_MESSAGE,
    ActionKind,
    ActionStatus,
    MessageStatus,
    QueuedAsk,
    Role,
    SourceRef,
    queued_ask,
)
from aurora.sync import new_id

TITLE_WORDS = 60
"""A new conversation is named after its first question, cut to about this many characters."""


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    title: str
    personality: str
    updated_at: datetime
    waiting: int = 0
    """Answers still waiting for a model."""


@dataclass(frozen=True)
class ChatMessage:
    id: str
    conversation_id: str
    role: Role
    text: str
    position: int
    personality: str
    status: MessageStatus
    error: str
    sources: tuple[SourceRef, ...]
    model: str
    local: bool
    created_at: datetime

    @property
    def cited(self) -> tuple[SourceRef, ...]:
        return tuple(s for s in self.sources if s.cited)


@dataclass(frozen=True)
class Turn:
    conversation_id: str
    question_id: str
    answer_id: str


def title_from(question: str) -> str:
    words = " ".join(question.split())
    if len(words) <= TITLE_WORDS:
        return words
    return words[:TITLE_WORDS].rsplit(" ", 1)[0] + "…"


_MESSAGE_COLUMNS = (
    "id, conversation_id, role, text, position, personality, status, error, sources, model, local, created_at"
)


def _message(row: Sequence[Any]) -> ChatMessage:
    sources: list[SourceRef] = []
    for raw in json.loads(row[8] or "[]"):
        try:
            sources.append(SourceRef.model_validate(raw))
        except ValueError:
            continue  # a source this version cannot read is left out, not the message
    return ChatMessage(
        id=row[0],
        conversation_id=row[1],
        role=Role(row[2]) if row[2] in Role._value2member_map_ else Role.ASSISTANT,
        text=row[3],
        position=int(row[4]),
        personality=row[5],
        status=MessageStatus(row[6]) if row[6] in MessageStatus._value2member_map_ else MessageStatus.DONE,
        error=row[7],
        sources=tuple(sources),
        model=row[9],
        local=bool(row[10]),
        created_at=parse_stamp(row[11]),
    )


class ConversationService:
    """What the chat screen and `aurora ask`/`aurora chat` do with conversations. Thread-safe."""

    def __init__(self, store: Store, now: Callable[[], datetime]) -> None:
        self._store = store
        self._now = now

    # ---------------------------------------------------------------------------------------- reading

    def recent(self, limit: int = 100) -> list[ConversationSummary]:
        """Conversations, the most recently used first, with how many answers each still waits for."""
        rows = self._store.query(
            "SELECT c.id, c.title, c.personality, c.updated_at, "
            "(SELECT count(*) FROM messages m WHERE m.conversation_id = c.id AND m.deleted = 0 "
            " AND m.status = 'waiting') "
            "FROM conversations c WHERE c.deleted = 0 ORDER BY c.updated_at DESC, c.id DESC LIMIT ?",
            (limit,),
        )
        return [ConversationSummary(r[0], r[1], r[2], parse_stamp(r[3]), int(r[4])) for r in rows]

    def get(self, conversation_id: str) -> ConversationSummary:
        rows = self._store.query(
            "SELECT id, title, personality, updated_at FROM conversations WHERE id = ? AND deleted = 0",
            (conversation_id,),
        )
        if not rows:
            raise NotFoundError(
                f"no conversation with id {conversation_id}; list them with `aurora chat list`"
            )
        r = rows[0]
        return ConversationSummary(r[0], r[1], r[2], parse_stamp(r[3]))

    def messages(self, conversation_id: str) -> list[ChatMessage]:
        """A conversation's turns in order (by position; two devices' turns at one position by time)."""
        rows = self._store.query(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND deleted = 0 "
            "ORDER BY position, created_at, role DESC, id",
            (conversation_id,),
        )
        return [_message(r) for r in rows]

    def message(self, message_id: str) -> ChatMessage:
        rows = self._store.query(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ? AND deleted = 0", (message_id,)
        )
        if not rows:
            raise NotFoundError(f"no message with id {message_id}")
        return _message(rows[0])

    def queued(self) -> list[QueuedAsk]:
        """Questions waiting for a model, the oldest first."""
        rows = self._store.query(
            "SELECT id, payload FROM actions WHERE status = 'queued' AND kind = 'ask' AND deleted = 0 "
            "ORDER BY created_at, id"
        )
        found = (queued_ask(str(action_id), json.loads(payload or "{}")) for action_id, payload in rows)
        return [ask for ask in found if ask is not None]

    def resolve_id(self, short: str) -> str:
        """A conversation's full id from the tail `aurora chat list` shows (at least 4 characters)."""
        short = short.strip()
        if len(short) < 4:
            raise InvalidInputError(f"give at least 4 characters of the conversation id, not '{short}'")
        rows = self._store.query(
            "SELECT id FROM conversations WHERE deleted = 0 AND id LIKE ? ESCAPE '\\' LIMIT 2",
            ("%" + like_escape(short),),
        )
        if not rows:
            raise NotFoundError(f"no conversation ends in '{short}'; list them with `aurora chat list`")
        if len(rows) > 1:
            raise InvalidInputError(f"more than one conversation ends in '{short}'; give more characters")
        return str(rows[0][0])

    # ---------------------------------------------------------------------------------------- writing

    def start(self, personality: str, title: str = "") -> str:
        """A new, empty conversation; its id."""
        conversation_id = new_id()
        stamp = iso(self._now())
        with self._store.transaction() as tx:
            tx.change(
                "conversation",
                conversation_id,
                {
                    "title": title_from(title)[:MAX_CONVERSATION_TITLE],
                    "personality": personality[:80],
                    "created_at": stamp,
                    "updated_at": stamp,
                    "deleted": False,
                },
            )
        return conversation_id

    def ask(self, conversation_id: str, question: str, personality: str) -> Turn:
        """Record a question and an answer being written (`streaming`)."""
        return self._turn(conversation_id, question, personality, MessageStatus.STREAMING)

    def _turn(self, conversation_id: str, question: str, personality: str, status: MessageStatus) -> Turn:
        text = question[:MAX_MESSAGE]
        turn = Turn(conversation_id, new_id(), new_id())
        stamp = iso(self._now())
        with self._store.transaction() as tx:
            conv = tx.load("conversation", conversation_id)
            if conv is None or conv.values.get("deleted"):
                raise NotFoundError(f"no conversation with id {conversation_id}; start a new one")
            (last,) = tx.query(
                "SELECT coalesce(max(position), -1) FROM messages WHERE conversation_id = ?",
                (conversation_id,),
            )[0]
            position = int(last) + 1
            common = {
                "conversation_id": conversation_id,
                "personality": personality[:80],
                "created_at": stamp,
                "updated_at": stamp,
                "deleted": False,
            }
            tx.change(
                "message",
                turn.question_id,
                {**common, "role": "user", "text": text, "position": position, "status": "done"},
            )
            tx.change(
                "message",
                turn.answer_id,
                {**common, "role": "assistant", "text": "", "position": position + 1, "status": status.value},
            )
            conv_fields: dict[str, Any] = {"updated_at": stamp, "personality": personality[:80]}
            if not conv.values.get("title"):
                conv_fields["title"] = title_from(question)
            tx.change("conversation", conversation_id, conv_fields)
        return turn

    def finish(
        self,
        answer_id: str,
        text: str,
        *,
        sources: Sequence[SourceRef] = (),
        model: str = "",
        local: bool = False,
        personality: str | None = None,
        action_id: str | None = None,
        done_by: str = "",
    ) -> None:
        """The answer is complete: its text, its sources, who answered; the action it answered, done."""
        fields: dict[str, Any] = {
            "text": text[:MAX_MESSAGE],
            "status": MessageStatus.DONE.value,
            "error": "",
            "sources": [s.model_dump() for s in sources],
            "model": model[:200],
            "local": local,
        }
        if personality is not None:
            fields["personality"] = personality[:80]
        self._end(answer_id, fields, action_id, ActionStatus.DONE, done_by)

    def fail(
        self,
        answer_id: str,
        error: str,
        partial: str = "",
        *,
        action_id: str | None = None,
        done_by: str = "",
    ) -> None:
        """The answer could not be had: the reason in one line, and whatever part of it had arrived."""
        fields = {"text": partial[:MAX_MESSAGE], "status": MessageStatus.FAILED.value, "error": error[:2000]}
        self._end(answer_id, fields, action_id, ActionStatus.FAILED, done_by, error=error)

    def _end(
        self,
        answer_id: str,
        fields: dict[str, Any],
        action_id: str | None,
        action_status: ActionStatus,
        done_by: str,
        *,
        error: str = "",
    ) -> None:
        stamp = iso(self._now())
        with self._store.transaction() as tx:
            answer = tx.load("message", answer_id)
            if answer is None:
                raise NotFoundError(f"no message with id {answer_id}")
            tx.change("message", answer_id, {**fields, "updated_at": stamp})
            conv_id = answer.values.get("conversation_id")
            if isinstance(conv_id, str):
                tx.change("conversation", conv_id, {"updated_at": stamp})
            if action_id is not None:
                tx.change(
                    "action",
                    action_id,
                    {
                        "status": action_status.value,
                        "error": error[:2000],
                        "done_by": done_by[:64],
                        "updated_at": stamp,
                    },
                )

    def queue(self, turn: Turn, question: str, personality: str, reason: str = "") -> str:
        """No model could answer `turn`: the answer waits, and an `ask` action is queued; its id."""
        action_id = new_id()
        stamp = iso(self._now())
        payload = {
            "conversation_id": turn.conversation_id,
            "question_id": turn.question_id,
            "answer_id": turn.answer_id,
            "question": question[:MAX_MESSAGE],
            "personality": personality[:80],
        }
        with self._store.transaction() as tx:
            tx.change(
                "message",
                turn.answer_id,
                {"status": MessageStatus.WAITING.value, "error": reason[:2000], "updated_at": stamp},
            )
            tx.change(
                "action",
                action_id,
                {
                    "kind": ActionKind.ASK.value,
                    "status": ActionStatus.QUEUED.value,
                    "payload": payload,
                    "created_at": stamp,
                    "updated_at": stamp,
                    "deleted": False,
                },
            )
        return action_id

    def ask_later(self, conversation_id: str, question: str, personality: str, reason: str = "") -> Turn:
        """Record a question that no model can answer now, queued for one that can."""
        turn = self._turn(conversation_id, question, personality, MessageStatus.WAITING)
        self.queue(turn, question, personality, reason)
        return turn

    def cancel_waiting(self, answer_id: str) -> bool:
        """Stop waiting for an answer (the person no longer wants it); False if it was not waiting."""
        stamp = iso(self._now())
        with self._store.transaction() as tx:
            state = tx.load("message", answer_id)
            if state is None or state.values.get("status") != MessageStatus.WAITING.value:
                return False
            tx.change(
                "message",
                answer_id,
                {
                    "status": MessageStatus.FAILED.value,
                    "error": "cancelled before a model answered",
                    "updated_at": stamp,
                },
            )
            for action_id in _actions_for(tx, answer_id):
                tx.change("action", action_id, {"status": ActionStatus.CANCELLED.value, "updated_at": stamp})
        return True

    def rename(self, conversation_id: str, title: str) -> None:
        self.get(conversation_id)
        title = " ".join(title.split())
        if not title:
            raise InvalidInputError("a conversation needs a title")
        with self._store.transaction() as tx:
            tx.change(
                "conversation",
                conversation_id,
                {"title": title[:MAX_CONVERSATION_TITLE], "updated_at": iso(self._now())},
            )

    def delete(self, conversation_id: str) -> None:
        self.get(conversation_id)
        stamp = iso(self._now())
        with self._store.transaction() as tx:
            tx.change("conversation", conversation_id, {"deleted": True, "updated_at": stamp})
            for (message_id,) in tx.query(
                "SELECT id FROM messages WHERE conversation_id = ? AND deleted = 0", (conversation_id,)
            ):
                tx.change("message", str(message_id), {"deleted": True, "updated_at": stamp})
                for action_id in _actions_for(tx, str(message_id)):
                    tx.change(
                        "action", action_id, {"status": ActionStatus.CANCELLED.value, "updated_at": stamp}
                    )

    # ---------------------------------------------------------------------------------------- export

    def export_markdown(self, conversation_id: str) -> str:
        """The conversation as Markdown: each question, each answer with its sources."""
        conv = self.get(conversation_id)
        lines = [
            f"# {conv.title or 'Conversation'}",
            "",
            f"With {conv.personality.title()}; last used {conv.updated_at:%Y-%m-%d %H:%M} UTC.",
            "",
        ]
        for m in self.messages(conversation_id):
            lines += [markdown_of(m), ""]
        return "\n".join(lines).rstrip() + "\n"


def markdown_of(m: ChatMessage) -> str:
    """One message as Markdown (what "copy" puts on the clipboard for an answer)."""
    if m.role is Role.USER:
        quoted = "\n".join(f"> {line}" if line else ">" for line in m.text.splitlines() or [""])
        return f"**You:**\n\n{quoted}"
    who = (m.personality or "assistant").title()
    parts = [f"**{who}:**", ""]
    if m.status is MessageStatus.WAITING:
        parts.append("_(waiting for a model: asked with none in reach)_")
    elif m.status is MessageStatus.STREAMING:
        parts.append(
            m.text + "\n\n_(cut short: Aurora closed while it answered)_" if m.text else "_(cut short)_"
        )
    elif m.status is MessageStatus.FAILED:
        if m.text:
            parts += [m.text, ""]
        parts.append(f"_(failed: {m.error})_")
    else:
        parts.append(m.text)
    if m.sources:
        parts += ["", "Sources:"]
        parts += [
            f"- [{s.ref}] {s.kind}: {s.title or '(untitled)'}{' (cited)' if s.cited else ''}"
            for s in m.sources
        ]
    if m.local:
        parts += ["", "_(answered by the small local model)_"]
    return "\n".join(parts)


def _actions_for(tx: Transaction, answer_id: str) -> list[str]:
    rows = tx.query(
        "SELECT id FROM actions WHERE status = 'queued' AND json_extract(payload, '$.answer_id') = ?",
        (answer_id,),
    )
    return [str(r[0]) for r in rows]
