"""A chat turn saved in its conversation, with the real SmolLM2 model: done, failed, stopped, queued for
a model and answered later."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from pathlib import Path

from aurora.app.assistant import AnswerDone, AnswerFailed, AnswerText, Assistant, Personality
from aurora.app.assistant.chat import (
    STOPPED_LINE,
    AnswerQueued,
    ChatEvent,
    QuestionRefused,
    answer_queued,
    chat_turn,
)
from aurora.app.inference import LocalLlamaBackend, Router
from aurora.app.workspace import Workspace
from aurora.schema.chat import MessageStatus
from tests.assistant.test_ask import QUESTION, SHORT, Counted


async def collect(stream: AsyncGenerator[ChatEvent, None]) -> list[ChatEvent]:
    async with contextlib.aclosing(stream) as events:
        return [event async for event in events]


async def test_a_finished_answer_is_saved_with_its_sources(
    mail_workspace: Workspace, local_backend: LocalLlamaBackend, personalities: dict[str, Personality]
) -> None:
    assistant = Assistant(mail_workspace, Router([Counted(local_backend)]), personalities, budget_chars=SHORT)
    conv = mail_workspace.conversations.start("Robbie")

    *streamed, done = await collect(chat_turn(assistant, conv, QUESTION))

    assert isinstance(done, AnswerDone) and all(isinstance(e, AnswerText) for e in streamed)
    question, answer = mail_workspace.conversations.messages(conv)
    assert question.text == QUESTION
    assert answer.status is MessageStatus.DONE and answer.text == done.answer and answer.local
    assert [(s.ref, s.entity_id) for s in answer.sources] == [(s.id, s.entity_id) for s in done.sources]
    assert {s.ref for s in answer.cited} == {s.id for s in done.cited}


async def test_escape_keeps_the_question_and_what_had_arrived(
    mail_workspace: Workspace, local_backend: LocalLlamaBackend, personalities: dict[str, Personality]
) -> None:
    long = {"Robbie": personalities["Robbie"].model_copy(update={"max_tokens": 400})}
    assistant = Assistant(mail_workspace, Router([Counted(local_backend)]), long, budget_chars=SHORT)
    conv = mail_workspace.conversations.start("Robbie")
    shown = ""
    async with contextlib.aclosing(chat_turn(assistant, conv, QUESTION)) as events:
        async for event in events:
            assert isinstance(event, AnswerText)
            shown += event.text
            break

    question, answer = mail_workspace.conversations.messages(conv)
    assert question.text == QUESTION
    assert answer.status is MessageStatus.FAILED and answer.error == STOPPED_LINE and answer.text == shown
    assert local_backend.wait_idle(2), "the model kept generating after escape"


async def test_a_broken_stream_is_saved_as_failed_with_the_partial_answer(
    mail_workspace: Workspace, local_backend: LocalLlamaBackend, personalities: dict[str, Personality]
) -> None:
    wordy = {"Robbie": personalities["Robbie"].model_copy(update={"max_tokens": 120})}
    assistant = Assistant(
        mail_workspace, Router([Counted(local_backend, break_after=20)]), wordy, budget_chars=SHORT
    )
    conv = mail_workspace.conversations.start("Robbie")

    *_, failed = await collect(chat_turn(assistant, conv, QUESTION))

    assert isinstance(failed, AnswerFailed)
    _, answer = mail_workspace.conversations.messages(conv)
    assert (
        answer.status is MessageStatus.FAILED
        and answer.text == failed.partial
        and answer.error == failed.message
    )
    assert local_backend.wait_idle(5)


async def test_with_no_model_the_question_waits_and_is_answered_when_one_is_in_reach(
    mail_workspace: Workspace,
    local_backend: LocalLlamaBackend,
    personalities: dict[str, Personality],
    tmp_path: Path,
) -> None:
    missing = LocalLlamaBackend(tmp_path / "gone.gguf", n_threads=1)
    offline = Assistant(mail_workspace, Router([missing]), personalities, budget_chars=SHORT)
    conv = mail_workspace.conversations.start("Robbie")

    [queued] = await collect(chat_turn(offline, conv, QUESTION))

    assert isinstance(queued, AnswerQueued) and "waiting for a model" in queued.message
    _, answer = mail_workspace.conversations.messages(conv)
    assert answer.status is MessageStatus.WAITING
    assert await answer_queued(offline, done_by="laptop") == 0  # still no model: it keeps waiting
    await missing.aclose()

    online = Assistant(mail_workspace, Router([Counted(local_backend)]), personalities, budget_chars=SHORT)
    assert await answer_queued(online, done_by="laptop") == 1

    _, answer = mail_workspace.conversations.messages(conv)
    assert answer.status is MessageStatus.DONE and answer.text.strip() and answer.sources
    assert mail_workspace.conversations.queued() == []


async def test_a_question_over_100_kb_is_refused_and_nothing_is_saved(
    mail_workspace: Workspace, local_backend: LocalLlamaBackend, personalities: dict[str, Personality]
) -> None:
    assistant = Assistant(mail_workspace, Router([Counted(local_backend)]), personalities)
    conv = mail_workspace.conversations.start("Robbie")

    [refused] = await collect(chat_turn(assistant, conv, "x" * 100_001))

    assert isinstance(refused, QuestionRefused) and "100,000" in refused.message
    assert mail_workspace.conversations.messages(conv) == []
