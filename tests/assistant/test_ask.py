"""`Assistant.ask` end to end with the real SmolLM2 model through `LocalLlamaBackend` and the router, on a
workspace of real recorded mail. The answers of a 135M model are poor; the tests hold the structure: the
stream, the final event, the sources, the citations, the failures."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from pathlib import Path

from aurora.app.assistant import (
    LOCAL_MARKER,
    MAX_QUESTION_BYTES,
    NO_SUPPORT,
    AnswerDone,
    AnswerEvent,
    AnswerFailed,
    AnswerText,
    Assistant,
    Personality,
    retrieve,
)
from aurora.app.assistant.prompt import DEFAULT_BUDGET_CHARS, fit_sources, prompt_room
from aurora.app.inference import (
    BackendHealth,
    BackendUnavailableError,
    ChatChunk,
    ChatRequest,
    LocalLlamaBackend,
    Router,
)
from aurora.app.inference.types import JsonSchema
from aurora.app.workspace import Workspace
from tests.assistant.hostile import HOSTILE, codeword

QUESTION = "When does the shuffle and sort start working in Hadoop?"
SHORT = 2_000
"""A prompt budget for the tests that are not about the budget: fewer tokens for the model to read."""


class Counted:
    """The real local backend, counting the chats it is asked for, and, with `break_after`, failing the
    way a dropped connection does after that many chunks."""

    def __init__(self, inner: LocalLlamaBackend, break_after: int | None = None) -> None:
        self.inner = inner
        self.break_after = break_after
        self.chats = 0

    @property
    def name(self) -> str:
        return self.inner.name

    async def models(self) -> list[str]:
        return await self.inner.models()

    async def health(self) -> BackendHealth:
        return await self.inner.health()

    async def chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        self.chats += 1
        sent = 0
        async with contextlib.aclosing(self.inner.chat(request)) as stream:
            async for chunk in stream:
                if self.break_after is not None and sent >= self.break_after:
                    raise BackendUnavailableError("local: the connection dropped")
                sent += 1
                yield chunk

    async def generate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        schema: JsonSchema | None = None,
        max_tokens: int = 512,
    ) -> str:
        return await self.inner.generate(prompt, model=model, schema=schema, max_tokens=max_tokens)

    async def embed(self, texts: list[str], *, model: str | None = None) -> list[list[float]]:
        return await self.inner.embed(texts, model=model)

    async def aclose(self) -> None:  # the session's model outlives each test
        pass


async def collect(stream: AsyncGenerator[AnswerEvent, None]) -> list[AnswerEvent]:
    async with contextlib.aclosing(stream) as events:
        return [event async for event in events]


async def test_an_answer_streams_then_ends_with_its_sources(
    mail_workspace: Workspace, local_backend: LocalLlamaBackend, personalities: dict[str, Personality]
) -> None:
    backend = Counted(local_backend)
    assistant = Assistant(mail_workspace, Router([backend]), personalities)

    events = await collect(assistant.ask(QUESTION))

    *streamed, done = events
    assert isinstance(done, AnswerDone), done
    assert streamed and all(isinstance(e, AnswerText) for e in streamed)
    text = "".join(e.text for e in streamed if isinstance(e, AnswerText))
    assert text.strip() and text.strip() == done.answer
    robbie = personalities["Robbie"]
    expected = fit_sources(
        retrieve(mail_workspace.search, QUESTION, robbie.memory_scope),
        prompt_room(robbie, QUESTION, None, DEFAULT_BUDGET_CHARS),
    )
    assert [(s.id, s.entity_id) for s in done.sources] == [(s.id, s.entity_id) for s in expected]
    assert done.sources and done.sources[0].kind == "mail"
    assert {s.id for s in done.cited} <= {s.id for s in done.sources}
    assert all(p.needs_confirmation for p in done.suggestions)  # every source is someone else's mail
    assert done.local and done.marker == LOCAL_MARKER and done.backend == "local"
    assert done.model == "smollm2:135m" and done.personality == "Robbie" and done.supported
    assert "<<<" not in done.answer and backend.chats == 1


async def test_a_mentor_answers_in_its_own_scope(
    mail_workspace: Workspace, local_backend: LocalLlamaBackend, personalities: dict[str, Personality]
) -> None:
    # The Stoic may read tasks, notes, events and transcripts, not mail: nothing here supports an answer.
    backend = Counted(local_backend)
    assistant = Assistant(mail_workspace, Router([backend]), personalities)
    events = await collect(assistant.ask(QUESTION, "stoic"))
    assert isinstance(events[-1], AnswerDone) and events[-1].personality == "Stoic"
    assert not events[-1].supported and backend.chats == 0


async def test_with_nothing_retrieved_the_model_is_not_asked(
    mail_workspace: Workspace, local_backend: LocalLlamaBackend, personalities: dict[str, Personality]
) -> None:
    backend = Counted(local_backend)
    assistant = Assistant(mail_workspace, Router([backend]), personalities)

    events = await collect(assistant.ask("What about the zebra quantum xylophone?"))

    assert events[0] == AnswerText(NO_SUPPORT)
    done = events[-1]
    assert isinstance(done, AnswerDone) and len(events) == 2
    assert done.answer == NO_SUPPORT and not done.supported and done.sources == () and not done.local
    assert done.model is None and backend.chats == 0


async def test_a_question_over_100_kb_is_refused_in_one_line(
    mail_workspace: Workspace, local_backend: LocalLlamaBackend, personalities: dict[str, Personality]
) -> None:
    backend = Counted(local_backend)
    assistant = Assistant(mail_workspace, Router([backend]), personalities)
    question = "shuffle " * (MAX_QUESTION_BYTES // 8 + 1)

    [failed] = await collect(assistant.ask(question))

    assert isinstance(failed, AnswerFailed) and failed.question == question
    assert "\n" not in failed.message and "100,000" in failed.message and backend.chats == 0
    [empty] = await collect(assistant.ask("   "))
    assert isinstance(empty, AnswerFailed) and "empty" in empty.message
    [unknown] = await collect(assistant.ask(QUESTION, "Yoda"))
    assert isinstance(unknown, AnswerFailed) and "no personality called 'Yoda'" in unknown.message


async def test_a_backend_failing_mid_answer_keeps_the_question_and_the_partial_answer(
    mail_workspace: Workspace, local_backend: LocalLlamaBackend, personalities: dict[str, Personality]
) -> None:
    assistant = Assistant(
        mail_workspace,
        Router([Counted(local_backend, break_after=40)]),
        {"Robbie": personalities["Robbie"].model_copy(update={"max_tokens": 120})},
        budget_chars=SHORT,
    )

    events = await collect(assistant.ask(QUESTION))

    *streamed, failed = events
    assert isinstance(failed, AnswerFailed), failed
    shown = "".join(e.text for e in streamed if isinstance(e, AnswerText))
    assert 1 <= len(streamed) <= 40 and failed.partial == shown and shown.strip()
    assert failed.question == QUESTION and "\n" not in failed.message and "broke off" in failed.message
    assert failed.sources and failed.personality == "Robbie"
    assert local_backend.wait_idle(5)


async def test_no_model_at_all_says_what_to_install(
    mail_workspace: Workspace, personalities: dict[str, Personality], tmp_path: Path
) -> None:
    missing = LocalLlamaBackend(tmp_path / "gone.gguf", n_threads=1)
    assistant = Assistant(mail_workspace, Router([missing]), personalities)

    [failed] = await collect(assistant.ask(QUESTION))

    assert isinstance(failed, AnswerFailed) and failed.question == QUESTION
    assert "aurora[local-llm]" in failed.message and "pair with a node" in failed.message
    assert "\n" not in failed.message
    await missing.aclose()


async def test_a_model_no_backend_serves_falls_back_to_the_local_one(
    mail_workspace: Workspace, local_backend: LocalLlamaBackend, personalities: dict[str, Personality]
) -> None:
    big = {"Robbie": personalities["Robbie"].model_copy(update={"model": "llama3.1:70b"})}
    assistant = Assistant(mail_workspace, Router([Counted(local_backend)]), big, budget_chars=SHORT)

    done = (await collect(assistant.ask(QUESTION)))[-1]

    assert isinstance(done, AnswerDone) and done.local and done.model == "smollm2:135m"
    assert done.note is not None and "llama3.1:70b is not available" in done.note


async def test_closing_the_answer_stops_the_model(
    mail_workspace: Workspace, local_backend: LocalLlamaBackend, personalities: dict[str, Personality]
) -> None:
    long = {"Robbie": personalities["Robbie"].model_copy(update={"max_tokens": 400})}
    assistant = Assistant(mail_workspace, Router([Counted(local_backend)]), long, budget_chars=SHORT)
    async with contextlib.aclosing(assistant.ask(QUESTION)) as events:
        async for event in events:
            assert isinstance(event, AnswerText)
            break
    assert local_backend.wait_idle(2), "the model kept generating after the answer was closed"


async def test_hostile_mail_in_the_prompt_never_leads_to_a_silent_action(
    hostile_workspace: Workspace, local_backend: LocalLlamaBackend, personalities: dict[str, Personality]
) -> None:
    n = next(i for i, (name, _) in enumerate(HOSTILE) if name == "delete-all")
    assistant = Assistant(
        hostile_workspace, Router([Counted(local_backend)]), personalities, budget_chars=SHORT
    )

    done = (await collect(assistant.ask(f"What does the {codeword(n)} update about the contract say?")))[-1]

    assert isinstance(done, AnswerDone)
    assert done.sources[0].flagged and codeword(n) in done.sources[0].title
    assert all(p.needs_confirmation for p in done.suggestions)
    assert "bluebottle" not in "".join(s.text for s in done.sources)


def test_echoed_source_markers_are_left_out_of_the_answer() -> None:
    from aurora.app.assistant.answer_text import MarkerFilter

    stream = [
        "<",
        "<<END SOURCE S2 0f1e2d>",
        ">>\n\nThe shuffle ",
        "starts a<b and x << y; ",
        "<<",
        "<SOURCE S3",
        "\nend<",
    ]
    f = MarkerFilter()
    shown = "".join(f.feed(part) for part in stream) + f.flush()
    assert shown == "\n\nThe shuffle starts a<b and x << y; \nend<"


def test_a_looping_answer_is_noticed_and_trimmed() -> None:
    from aurora.app.assistant.answer_text import repeating, without_repeats

    loop = "Here is the answer:\n\nThe answer is:\n\nThe answer is:\n\nThe answer is:\n\nThe ans"
    assert repeating(loop) and not repeating("a\nb\na\nb\n") and not repeating("xyz\nxyz\nxyz")
    assert not repeating("> a\n>\n>\n>\n") and repeating("Hi there\n>\nHi there\n\nHi there\n")
    assert without_repeats(loop) == "Here is the answer:\n\nThe answer is:\n\nThe ans"
    assert without_repeats("  one\n\n\n\ntwo  ") == "one\n\ntwo"
