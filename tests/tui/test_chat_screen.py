"""The chat screen driven from the keyboard, with the real SmolLM2 model in process: ask, watch the answer
stream, open its sources, make a task and a note of it, export, stop an answer, and ask with no model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input

from aurora.app.assistant import Assistant, Personality, load_personalities
from aurora.app.inference import LocalLlamaBackend, Router
from aurora.app.workspace import Workspace
from aurora.schema.chat import MessageStatus
from aurora.tui.app import AuroraApp
from aurora.tui.screens.chat import WAITING_TEXT, ChatScreen, MessageItem, PersonalityModal, SourcesModal
from aurora.tui.screens.matrix import MatrixScreen
from tests.assistant.test_ask import Counted
from tests.local_model import warmed
from tests.tui.helpers import wait_until

MODEL_WAIT_S = 180.0
"""A 135M model on two shared cores: loading plus a short answer takes seconds, not minutes."""


@pytest.fixture(scope="module")
def model() -> Iterator[LocalLlamaBackend]:
    backend = warmed(LocalLlamaBackend(n_threads=2))
    yield backend
    asyncio.run(backend.aclose())


def brief(tokens: int = 40) -> dict[str, Personality]:
    found, broken = load_personalities(None)
    assert not broken
    return {
        name: p.model_copy(update={"max_tokens": tokens, "temperature": 0.0}) for name, p in found.items()
    }


@pytest.fixture
def planner(workspace: Workspace) -> Workspace:
    workspace.tasks.add_quick("Finish the board roadmap draft !urgent #goal")
    workspace.notes.add("Dana wants the renewal numbers before Friday.")
    workspace.search.drain_all()
    return workspace


def answers(ws: Workspace) -> list[MessageStatus]:
    return [
        m.status
        for c in ws.conversations.recent()
        for m in ws.conversations.messages(c.id)
        if m.role == "assistant"
    ]


async def test_ask_read_sources_task_note_export(planner: Workspace, model: LocalLlamaBackend) -> None:
    assistant = Assistant(planner, Router([Counted(model)]), brief())
    app = AuroraApp(planner, assistant=assistant)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen))
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        assert "Robbie" in str(screen.query_one("#header").render())
        await pilot.press(*"What does Dana want?", "enter")
        await wait_until(
            pilot, lambda: answers(planner) in ([MessageStatus.DONE], [MessageStatus.FAILED]), MODEL_WAIT_S
        )
        [conversation] = planner.conversations.recent()
        assert answers(planner) == [MessageStatus.DONE], planner.conversations.messages(conversation.id)[
            -1
        ].error
        assert conversation.title == "What does Dana want?"
        await wait_until(
            pilot,
            lambda: len(screen.query(MessageItem)) == 2 and screen.query(MessageItem)[1].message.id != "",
        )
        answer = screen.query(MessageItem)[1].message
        assert answer.text.strip() and answer.sources and answer.model == "smollm2:135m"
        status = str(screen.query(MessageItem)[1].query_one(".answer-status").render())
        assert "answered by the small local model" in status and "sources" in status

        await pilot.press("up", "o")
        await wait_until(pilot, lambda: isinstance(app.screen, SourcesModal))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)

        await pilot.press("t", "n")
        await wait_until(pilot, lambda: any(t.source == "chat" for t in planner.tasks.list()))
        await wait_until(pilot, lambda: any("chat" in n.tags for n in planner.notes.list()))

        await pilot.press("ctrl+s")
        exports = planner.settings.data_dir / "exports"
        await wait_until(pilot, lambda: exports.is_dir() and any(exports.iterdir()))
        text = next(exports.iterdir()).read_text(encoding="utf-8")
        assert "> What does Dana want?" in text and "Sources:" in text

        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, PersonalityModal))
        await pilot.press("down", "enter")  # Stoic, second in the list
        await wait_until(pilot, lambda: app.screen is screen and screen.personality == "Stoic")
        assert "Stoic" in str(screen.query_one("#header").render())


async def test_escape_stops_the_answer_and_keeps_the_question(
    planner: Workspace, model: LocalLlamaBackend
) -> None:
    assistant = Assistant(planner, Router([Counted(model)]), brief(400))
    app = AuroraApp(planner, assistant=assistant)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen))
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))
        await pilot.press(*"Write me a long plan for the roadmap", "enter")
        screen = app.screen
        # Escape once the answer is streaming (before the first token the model is still reading the
        # prompt, which llama.cpp finishes before it can stop).
        await wait_until(
            pilot,
            lambda: (
                len(screen.query(MessageItem)) == 2
                and "is answering" in str(screen.query(MessageItem)[1].query_one(".answer-status").render())
            ),
            MODEL_WAIT_S,
        )
        await pilot.press("escape")
        await wait_until(pilot, lambda: answers(planner) == [MessageStatus.FAILED], MODEL_WAIT_S)
        assert isinstance(app.screen, ChatScreen)  # escape stopped the answer; it did not leave
        [conversation] = planner.conversations.recent()
        question, answer = planner.conversations.messages(conversation.id)
        assert question.text == "Write me a long plan for the roadmap" and answer.error == "stopped by you"
        assert model.wait_idle(5), "the model kept generating after escape"
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen))


async def test_with_no_model_the_question_waits_for_the_node(planner: Workspace, tmp_path: Path) -> None:
    missing = LocalLlamaBackend(tmp_path / "gone.gguf", n_threads=1)
    app = AuroraApp(planner, assistant=Assistant(planner, Router([missing]), brief()))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen))
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))
        await pilot.press(*"Who is Dana?", "enter")
        await wait_until(pilot, lambda: answers(planner) == [MessageStatus.WAITING], 20)
        screen = app.screen
        await wait_until(pilot, lambda: "waiting for node" in str(screen.query_one("#status").render()), 10)
        await wait_until(
            pilot,
            lambda: (
                "waiting for node" in str(screen.query(MessageItem)[-1].query_one(".answer-status").render())
            ),
            10,
        )
        [queued] = planner.conversations.queued()
        assert queued.question == "Who is Dana?"
        assert WAITING_TEXT.startswith("waiting for node")
        # Back on the matrix, its status bar counts the conversation's changes too.
        waiting = f"{planner.store.pending_ops()} changes waiting"
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen))
        await wait_until(pilot, lambda: waiting in str(app.screen.query_one("#status").render()), 10)


async def test_a_question_over_100_kb_stays_in_the_composer(planner: Workspace, tmp_path: Path) -> None:
    missing = LocalLlamaBackend(tmp_path / "gone.gguf", n_threads=1)
    app = AuroraApp(planner, assistant=Assistant(planner, Router([missing]), brief()))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen))
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        composer = screen.query_one("#composer", Input)
        huge = "budget " * 15_000
        composer.value = huge
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen._answering is not None and not screen._busy(), 10)
        await pilot.pause(0.2)
        assert composer.value == huge and not screen.query(MessageItem)
        assert all(not planner.conversations.messages(c.id) for c in planner.conversations.recent())
