"""A chat turn: `Assistant.ask`, saved in a conversation as it ends; and questions that wait for a model.

    async with contextlib.aclosing(chat_turn(assistant, conversation_id, question)) as events:
        async for event in events:
            ...  # AnswerText, then AnswerDone, AnswerFailed or AnswerQueued

The question and an answer in progress are saved before any model is asked, so closing the app, pressing
escape or a crash never loses the question; the answer is saved once, when it ends (done, failed, or
stopped with what had arrived). Where no model can be reached at all, the answer waits: an `ask` action is
queued and `AnswerQueued` says so; `answer_queued` answers waiting questions once a model is in reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from aurora.app.assistant.ask import (
    MAX_QUESTION_BYTES,
    AnswerDone,
    AnswerEvent,
    AnswerFailed,
    AnswerText,
    Assistant,
)
from aurora.app.assistant.mood import Mood
from aurora.app.assistant.personalities import find_personality
from aurora.app.conversations import Turn
from aurora.app.errors import AuroraError
from aurora.app.inference import Backend
from aurora.app.inference.errors import one_line
from aurora.schema.chat import QueuedAsk, SourceRef

WAITING_LINE = "waiting for a model: the node answers it after the next sync"
STOPPED_LINE = "stopped by you"


@dataclass(frozen=True)
class AnswerQueued:
    """No model could answer now; the question waits for one (an `ask` action)."""

    message: str
    turn: Turn


@dataclass(frozen=True)
class QuestionRefused:
    """The question was refused before anything was saved (too long, empty, unknown personality): the
    text is the person's to fix, so the UI keeps it in the composer."""

    message: str
    question: str


ChatEvent = AnswerEvent | AnswerQueued | QuestionRefused


def source_refs(done: AnswerDone) -> list[SourceRef]:
    cited = {s.id for s in done.cited}
    return [
        SourceRef(ref=s.id, kind=s.kind[:20], entity_id=s.entity_id, title=s.title[:300], cited=s.id in cited)
        for s in done.sources
    ]


def default_backends() -> list[Backend]:
    """Ollama first where AURORA_OLLAMA_HOST names one, then the small in-process model."""
    from aurora.app.inference import LocalLlamaBackend, OllamaBackend

    backends: list[Backend] = []
    host = os.environ.get("AURORA_OLLAMA_HOST", "").strip()
    if host:
        backends.append(OllamaBackend(host))
    backends.append(LocalLlamaBackend())
    return backends


async def chat_turn(
    assistant: Assistant,
    conversation_id: str,
    question: str,
    personality: str | None = None,
    *,
    mood: Mood | None = None,
) -> AsyncGenerator[ChatEvent, None]:
    """Ask `question` in a conversation and save the turn; see the module doc."""
    conversations = assistant.workspace.conversations
    too_big = len(question.encode("utf-8", "surrogatepass")) > MAX_QUESTION_BYTES
    try:
        chosen = find_personality(assistant.personalities, personality)
    except AuroraError as error:
        yield QuestionRefused(one_line(error), question)
        return
    if too_big or not question.strip():
        async with contextlib.aclosing(assistant.ask(question, chosen.name)) as refused:
            async for event in refused:
                if isinstance(event, AnswerFailed):
                    yield QuestionRefused(event.message, question)
        return
    turn = await asyncio.to_thread(conversations.ask, conversation_id, question, chosen.name)
    parts: list[str] = []
    ended = False
    try:
        async with contextlib.aclosing(assistant.ask(question, chosen.name, mood=mood)) as events:
            async for event in events:
                if isinstance(event, AnswerText):
                    parts.append(event.text)
                    yield event
                elif isinstance(event, AnswerDone):
                    await asyncio.to_thread(
                        conversations.finish, turn.answer_id, event.answer, sources=source_refs(event),
                        model=event.model or "", local=event.local, personality=event.personality,
                    )  # fmt: skip
                    ended = True
                    yield event
                elif event.no_model:
                    await asyncio.to_thread(conversations.queue, turn, question, chosen.name, event.message)
                    ended = True
                    yield AnswerQueued(f"{WAITING_LINE} ({event.message})", turn)
                else:
                    await asyncio.to_thread(conversations.fail, turn.answer_id, event.message, event.partial)
                    ended = True
                    yield event
    finally:
        if not ended:
            # Escape, or the app closing: keep what had arrived. On a thread like every write; where this
            # task may not await any more (closed while cancelled), in place: one small transaction.
            with contextlib.suppress(AuroraError):
                try:
                    await asyncio.to_thread(conversations.fail, turn.answer_id, STOPPED_LINE, "".join(parts))
                except (asyncio.CancelledError, RuntimeError):
                    conversations.fail(turn.answer_id, STOPPED_LINE, "".join(parts))


async def answer_queued(assistant: Assistant, *, done_by: str, limit: int = 5) -> int:
    """Answer questions that were waiting for a model (oldest first, at most `limit`); how many were
    answered or failed. Stops at the first that still finds no model."""
    conversations = assistant.workspace.conversations
    handled = 0
    waiting: list[QueuedAsk] = await asyncio.to_thread(conversations.queued)
    for q in waiting[:limit]:
        final: AnswerDone | AnswerFailed | None = None
        async with contextlib.aclosing(assistant.ask(q.question, q.personality or None)) as events:
            async for event in events:
                if not isinstance(event, AnswerText):
                    final = event
        if isinstance(final, AnswerDone):
            await asyncio.to_thread(
                conversations.finish, q.answer_id, final.answer, sources=source_refs(final),
                model=final.model or "", local=final.local, personality=final.personality,
                action_id=q.action_id, done_by=done_by,
            )  # fmt: skip
        elif final is None or final.no_model:
            break
        else:
            await asyncio.to_thread(
                conversations.fail, q.answer_id, final.message, final.partial,
                action_id=q.action_id, done_by=done_by,
            )  # fmt: skip
        handled += 1
    return handled
