"""`Assistant.ask`: one question, answered from the person's own memory, streamed.

    assistant = Assistant(workspace, router, personalities)
    async with contextlib.aclosing(assistant.ask("What did Dana say about the budget?")) as events:
        async for event in events:
            match event:
                case AnswerText(text=text): show(text)
                case AnswerDone(): show_sources(event.sources)
                case AnswerFailed(): show_error(event.message)

The steps: check the question (at most `MAX_QUESTION_BYTES`; a longer one is refused in one line before
anything else runs); retrieve sources within the personality's memory scope (`retrieval.retrieve`, on a
worker thread: SQLite blocks); with none, answer `prompt.NO_SUPPORT` without asking any model; else fit
the sources to the prompt budget, build the prompt and stream the router's answer. The last event is
always `AnswerDone` or `AnswerFailed`, never an exception: a backend that fails, before or during the
answer, gives one line, and the event carries the question and whatever part of the answer had arrived,
so neither is lost.

`AnswerDone` carries the whole answer, the sources that were in the prompt, the ones the answer cites
(ids it made up are ignored), the task and note suggestions found in it as reviewed by the gatekeeper
(never carried out: the UI offers them), injection patterns the answer itself shows (an answer that
repeats a source's instructions is a sign the model was swayed), and whether the small local model
answered (`local`, and `marker`, "answered by the small local model", for the UI to show).

The text streamed is the model's, less any source marker it echoes (`MarkerFilter`); an answer that is
nothing else ends in `AnswerFailed` ("the model gave no answer"). A model that starts repeating the same
line (`REPEATS` times) is stopped there, the final answer keeps the line once, and `note` says so.

A personality's model that no backend serves is not an error: the question goes to whatever model the
router can reach (offline, the local one), and `AnswerDone.note` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from aurora.app.assistant.answer_text import MarkerFilter, repeating, without_repeats
from aurora.app.assistant.gatekeeper import PendingAction, review
from aurora.app.assistant.injection import Finding, scan
from aurora.app.assistant.mood import Mood
from aurora.app.assistant.personalities import Personality, find_personality
from aurora.app.assistant.prompt import (
    DEFAULT_BUDGET_CHARS,
    build_prompt,
    citations,
    fit_sources,
    no_support,
    prompt_room,
    suggestions,
)
from aurora.app.assistant.retrieval import DEFAULT_LIMIT, retrieve
from aurora.app.assistant.sources import Source
from aurora.app.errors import AuroraError
from aurora.app.inference import (
    ChatRequest,
    InferenceError,
    LocalModelUnavailableError,
    ModelNotFoundError,
    NoBackendError,
    Router,
    StreamInterruptedError,
)
from aurora.app.inference.errors import LOCAL_LLM_HINT, one_line

if TYPE_CHECKING:
    from aurora.app.workspace import Workspace

MAX_QUESTION_BYTES = 100_000
LOCAL_MARKER = "answered by the small local model"
NO_MODEL_HINT = f"install the local model ({LOCAL_LLM_HINT}) or pair with a node"


@dataclass(frozen=True)
class AnswerText:
    """A piece of the answer, as it streams."""

    text: str


@dataclass(frozen=True)
class AnswerDone:
    """The end of an answer."""

    question: str
    answer: str
    personality: str
    sources: tuple[Source, ...]
    """What was in the prompt, in order (S1 first)."""
    cited: tuple[Source, ...]
    suggestions: tuple[PendingAction, ...] = ()
    findings: tuple[Finding, ...] = ()
    """Injection patterns in the answer itself."""
    model: str | None = None
    backend: str | None = None
    local: bool = False
    supported: bool = True
    """False: retrieval found nothing and the fixed no-support answer was given (no model was asked)."""
    note: str | None = None

    @property
    def marker(self) -> str | None:
        return LOCAL_MARKER if self.local else None


@dataclass(frozen=True)
class AnswerFailed:
    """The answer could not be had. One line in `message`; the question and any partial answer kept."""

    message: str
    question: str
    partial: str = ""
    personality: str | None = None
    sources: tuple[Source, ...] = field(default=())
    no_model: bool = False
    """No model could be reached at all (none installed, none running): the question can wait for one."""


AnswerEvent = AnswerText | AnswerDone | AnswerFailed


class Assistant:
    def __init__(
        self,
        workspace: Workspace,
        router: Router,
        personalities: Mapping[str, Personality],
        *,
        local_backends: frozenset[str] = frozenset({"local"}),
        sources_limit: int = DEFAULT_LIMIT,
        budget_chars: int = DEFAULT_BUDGET_CHARS,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        """`local_backends`: the router's backend names that are the small in-process model.
        `budget_chars`: the most characters of prompt (system, sources, question) sent to a model."""
        self.workspace = workspace
        self.router = router
        self.personalities = dict(personalities)
        self.local_backends = local_backends
        self.sources_limit = sources_limit
        self.budget_chars = budget_chars
        self._now = now or workspace.now

    def _sources(self, personality: Personality, question: str, mood: Mood | None) -> list[Source]:
        found = retrieve(self.workspace.search, question, personality.memory_scope, self.sources_limit)
        return fit_sources(found, prompt_room(personality, question, mood, self.budget_chars))

    async def ask(
        self, question: str, personality: str | None = None, *, mood: Mood | None = None
    ) -> AsyncGenerator[AnswerEvent, None]:
        """Stream the answer to `question` in `personality`'s voice (None: Robbie); see the module doc."""
        size = len(question.encode("utf-8", "surrogatepass"))
        if size > MAX_QUESTION_BYTES:
            yield AnswerFailed(
                f"The question is {size:,} bytes; the assistant takes at most {MAX_QUESTION_BYTES:,}: "
                "save the text as a note and ask about it",
                question,
            )
            return
        if not question.strip():
            yield AnswerFailed("Ask a question: the text is empty", question)
            return
        try:
            chosen = find_personality(self.personalities, personality)
            sources = await asyncio.to_thread(self._sources, chosen, question, mood)
        except AuroraError as error:
            yield AnswerFailed(one_line(error), question, personality=personality)
            return
        fixed = no_support(sources)
        if fixed is not None:
            yield AnswerText(fixed)
            yield AnswerDone(question, fixed, chosen.name, (), (), supported=False)
            return
        messages = build_prompt(chosen, question, sources, mood, today=self._now().date())
        request = ChatRequest(
            model=chosen.model,
            messages=messages,
            temperature=chosen.temperature,
            max_tokens=chosen.max_tokens,
        )
        parts: list[str] = []
        markers = MarkerFilter()
        backend: str | None = None
        model: str | None = None
        note: str | None = None
        looped = False
        try:
            for attempt in (request, request.model_copy(update={"model": None})):
                try:
                    async with contextlib.aclosing(self.router.chat(attempt)) as stream:
                        async for chunk in stream:
                            backend, model = chunk.backend, chunk.model
                            text = markers.feed(chunk.text) + (markers.flush() if chunk.done else "")
                            if text:
                                parts.append(text)
                                yield AnswerText(text)
                                if repeating("".join(parts)):
                                    looped = True
                                    break  # leaving the block closes the stream: the model stops
                    break
                except ModelNotFoundError:
                    if parts or attempt.model is None:
                        raise
                    note = f"{chosen.model} is not available here; another model answered"
        except StreamInterruptedError as error:
            yield AnswerFailed(str(error), question, "".join(parts), chosen.name, tuple(sources))
            return
        except InferenceError as error:
            unreachable = isinstance(error, LocalModelUnavailableError | NoBackendError) and not parts
            yield AnswerFailed(
                _failure(error), question, "".join(parts), chosen.name, tuple(sources), no_model=unreachable
            )
            return
        said = "".join(parts)
        answer = without_repeats(said.rsplit("\n", 1)[0] if looped else said)  # a loop's last line is cut
        if looped:
            note = "; ".join(x for x in (note, "the model began repeating itself and was stopped") if x)
        if not answer:
            yield AnswerFailed(
                "The model gave no answer: ask again, perhaps in other words",
                question, "", chosen.name, tuple(sources),
            )  # fmt: skip
            return
        local = backend in self.local_backends
        yield AnswerDone(
            question=question,
            answer=answer,
            personality=chosen.name,
            sources=tuple(sources),
            cited=tuple(citations(answer, sources)),
            suggestions=tuple(review(suggestions(answer), sources)),
            findings=tuple(scan(answer)),
            model=model,
            backend=backend,
            local=local,
            note=note,
        )


def _failure(error: InferenceError) -> str:
    """One line; where no model could be reached at all, what to install or do."""
    text = one_line(error, 300)
    if isinstance(error, LocalModelUnavailableError | NoBackendError | ModelNotFoundError):
        todo = "or pair with a node" if LOCAL_LLM_HINT in text else NO_MODEL_HINT
        return f"No language model could answer ({text}): {todo}"
    return text
