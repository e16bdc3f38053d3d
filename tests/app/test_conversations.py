"""Conversations with the assistant as saved entities: turns, waiting answers and their actions, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aurora.app.conversations import TITLE_WORDS, title_from
from aurora.app.errors import InvalidInputError, NotFoundError
from aurora.app.store import Store
from aurora.app.workspace import Workspace
from aurora.schema.chat import MessageStatus, Role, SourceRef


def test_a_turn_is_a_question_and_an_answer_in_order(workspace: Workspace) -> None:
    chats = workspace.conversations
    conv = chats.start("Robbie")
    first = chats.ask(conv, "What did I promise Dana last week?", "Robbie")
    chats.finish(
        first.answer_id,
        "You promised the budget by Friday [S1].",
        model="smollm2:135m",
        local=True,
        sources=[SourceRef(ref="S1", kind="mail", entity_id="m1", title="Budget", cited=True)],
    )
    second = chats.ask(conv, "And to Sam?", "Stoic")

    q1, a1, q2, a2 = chats.messages(conv)
    assert (q1.id, a1.id, q2.id, a2.id) == (
        first.question_id,
        first.answer_id,
        second.question_id,
        second.answer_id,
    )
    assert [m.role for m in (q1, a1, q2, a2)] == [Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT]
    assert a1.status is MessageStatus.DONE and a1.local and a1.cited[0].entity_id == "m1"
    assert a2.status is MessageStatus.STREAMING and a2.text == ""
    [summary] = chats.recent()
    assert summary.title == "What did I promise Dana last week?" and summary.personality == "Stoic"


def test_a_failed_answer_keeps_the_question_and_what_had_arrived(workspace: Workspace) -> None:
    chats = workspace.conversations
    conv = chats.start("Robbie")
    turn = chats.ask(conv, "Summarise my week", "Robbie")
    chats.fail(turn.answer_id, "the model broke off", "You had three meet")
    question, answer = chats.messages(conv)
    assert question.text == "Summarise my week"
    assert answer.status is MessageStatus.FAILED and answer.text == "You had three meet"
    assert answer.error == "the model broke off"


def test_a_queued_question_waits_then_is_answered_once(workspace: Workspace) -> None:
    chats = workspace.conversations
    conv = chats.start("Robbie")
    turn = chats.ask_later(conv, "Who is Dana?", "Robbie", reason="no model")
    [waiting] = chats.queued()
    assert (waiting.answer_id, waiting.question, waiting.personality) == (
        turn.answer_id,
        "Who is Dana?",
        "Robbie",
    )
    assert chats.recent()[0].waiting == 1
    assert chats.message(turn.answer_id).status is MessageStatus.WAITING

    chats.finish(turn.answer_id, "Dana runs finance.", action_id=waiting.action_id, done_by="node")

    assert chats.queued() == [] and chats.recent()[0].waiting == 0
    assert chats.message(turn.answer_id).text == "Dana runs finance."
    status, done_by = workspace.store.query("SELECT status, done_by FROM actions")[0]
    assert (status, done_by) == ("done", "node")


def test_cancelling_a_waiting_answer_cancels_its_action(workspace: Workspace) -> None:
    chats = workspace.conversations
    conv = chats.start("Robbie")
    turn = chats.ask_later(conv, "Who is Dana?", "Robbie")
    assert chats.cancel_waiting(turn.answer_id)
    assert not chats.cancel_waiting(turn.answer_id)
    assert chats.queued() == []
    assert chats.message(turn.answer_id).status is MessageStatus.FAILED


def test_rename_delete_and_short_ids(workspace: Workspace) -> None:
    chats = workspace.conversations
    conv = chats.start("Robbie")
    chats.ask_later(conv, "Who is Dana?", "Robbie")
    assert chats.resolve_id(conv[-8:]) == conv
    chats.rename(conv, "  Dana  questions ")
    assert chats.get(conv).title == "Dana questions"
    with pytest.raises(InvalidInputError, match="needs a title"):
        chats.rename(conv, "   ")
    chats.delete(conv)
    assert chats.recent() == [] and chats.queued() == []
    with pytest.raises(NotFoundError, match="aurora chat list"):
        chats.get(conv)
    with pytest.raises(NotFoundError, match="start a new one"):
        chats.ask(conv, "still there?", "Robbie")


def test_every_change_is_an_operation_another_replica_can_apply(workspace: Workspace, tmp_path: Path) -> None:
    chats = workspace.conversations
    conv = chats.start("Coach")
    turn = chats.ask_later(conv, "Plan my Monday", "Coach")
    chats.finish(
        turn.answer_id, "Start with the report.", sources=[SourceRef(ref="S1", kind="task", entity_id="t1")]
    )

    other = Store.open(tmp_path / "other.db")
    try:
        with other.transaction() as tx:
            for op in workspace.store.operations():
                assert tx.apply(op)
        rows = other.query("SELECT text, status, sources FROM messages ORDER BY position")
        assert [(r[0], r[1]) for r in rows] == [
            ("Plan my Monday", "done"),
            ("Start with the report.", "done"),
        ]
        assert json.loads(rows[1][2])[0]["entity_id"] == "t1"
        assert other.query("SELECT kind, status FROM actions") == [("ask", "queued")]
    finally:
        other.close()


def test_export_is_markdown_with_sources(workspace: Workspace) -> None:
    chats = workspace.conversations
    conv = chats.start("Robbie")
    turn = chats.ask(conv, "What is due?\nAnd when?", "Robbie")
    chats.finish(
        turn.answer_id,
        "The report, Friday [S1].",
        sources=[SourceRef(ref="S1", kind="task", entity_id="t1", title="Report", cited=True)],
    )
    waiting = chats.ask_later(conv, "Anything else?", "Robbie")
    text = chats.export_markdown(conv)
    assert text.startswith("# What is due? And when?\n")
    assert "> What is due?\n> And when?" in text and "The report, Friday [S1]." in text
    assert "- [S1] task: Report (cited)" in text and "waiting for a model" in text
    assert waiting.answer_id  # the waiting answer is in the export, not dropped


def test_long_questions_make_short_titles() -> None:
    title = title_from("word " * 100)
    assert len(title) <= TITLE_WORDS + 1 and title.endswith("…")
