"""The chat screen (`c`): conversations on the left, the open one on the right, a composer at the bottom.

Enter asks; the answer streams in as Markdown, with the sources it had and the ones it cites. Escape
stops an answer (what had arrived is kept); with nothing streaming it goes back. Asked with no model in
reach, the question waits ("waiting for node") and is answered after sync, by the node or by this laptop
once a model is there; the answer then appears here.

Keys on an answer (tab into the conversation, up/down to pick one; from the composer they act on the
last answer): `o` its sources, `y` copy it, `t` a task from it, `n` a note from it; `ctrl+e` exports the
conversation to Markdown, `ctrl+n` starts a new one, `ctrl+k` picks who answers.

Nothing here waits on the disk or the model on the UI thread: reads go through the app's database thread,
the answer through an async worker whose model calls run on the backend's own threads.
"""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, ListItem, ListView, Markdown, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from aurora.app.conversations import ChatMessage, ConversationSummary, markdown_of
from aurora.app.errors import AuroraError
from aurora.schema.chat import MessageStatus, Role, SourceRef
from aurora.tui.app import AuroraApp
from aurora.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from textual.widgets.markdown import MarkdownStream

    from aurora.app.assistant import Personality
    from aurora.app.workspace import Workspace, WorkspaceStatus

WAITING_TEXT = "waiting for node: no model could answer here; the node answers after the next sync"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_CITE = re.compile(r"\s*\[S\d+\]")
_LIST_MARKER = re.compile(r"^\s*(?:[-*•+]|\d+[.)]|#+)\s+")
_MARKUP = re.compile(r"[*_`]+")
_ITEM_KINDS = frozenset({"mail", "event", "message", "transcript", "item"})


def conversation_prompt(c: ConversationSummary) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(c.title or "(new conversation)", style="bold")
    text.append(f"\n{c.personality} · {c.updated_at.astimezone():%d %b %H:%M}", style="dim")
    if c.waiting:
        text.append(f" · {c.waiting} waiting", style="yellow")
    return text


def status_line(m: ChatMessage) -> str:
    """Under an answer: who answered and how it ended, as markup."""
    bits = [escape(m.personality or "assistant")]
    if m.model:
        bits.append(escape(m.model))
    if m.local:
        bits.append("answered by the small local model")
    if m.status is MessageStatus.WAITING:
        bits.append(f"[yellow]{WAITING_TEXT}[/]")
    elif m.status is MessageStatus.STREAMING:
        bits.append("[yellow]cut short: Aurora closed while it answered[/]")
    elif m.status is MessageStatus.FAILED:
        bits.append(f"[red]{escape(m.error or 'failed')}[/]")
    if m.sources:
        cited = sum(1 for s in m.sources if s.cited)
        bits.append(f"{len(m.sources)} sources, {cited} cited (o opens)")
    return "[dim]" + " · ".join(bits) + "[/dim]"


def answer_markdown(m: ChatMessage) -> str:
    if m.text:
        return m.text
    if m.status in (MessageStatus.WAITING, MessageStatus.STREAMING):
        return "_…_"
    return "_(no answer)_"


def task_title(answer: str) -> str:
    """A task's title from an answer with no TASK: line: the first sentence of its first line of some
    words, list markers, Markdown emphasis and citations left out."""
    for raw in _CITE.sub("", answer).splitlines():
        line = _MARKUP.sub("", _LIST_MARKER.sub("", raw)).strip()
        if len(line.split()) >= 2:
            first = _SENTENCE.split(line, maxsplit=1)[0].strip()
            return (first[:197] + "…") if len(first) > 200 else first
    return "Follow up on the chat"


class MessageItem(ListItem):
    """One turn's half: the person's question, or an answer (Markdown) with its status line."""

    def __init__(self, message: ChatMessage) -> None:
        super().__init__(classes=f"message {message.role.value}")
        self.message = message

    def compose(self) -> ComposeResult:
        m = self.message
        if m.role is Role.USER:
            yield Static(f"[b]You[/b]\n{escape(m.text)}", classes="question")
        else:
            yield Markdown(answer_markdown(m), classes="answer")
            yield Static(status_line(m), classes="answer-status")

    def show(self, message: ChatMessage) -> None:
        """The saved answer in place of what streamed."""
        self.message = message
        if message.role is Role.ASSISTANT:
            self.query_one(Markdown).update(answer_markdown(message))
            self.query_one(".answer-status", Static).update(status_line(message))


class SourcesModal(ModalScreen[None]):
    """An answer's sources; enter opens one in the reader."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, sources: tuple[SourceRef, ...]) -> None:
        super().__init__()
        self._sources = sources

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("[b]Sources[/b]  [dim]* cited in the answer · enter opens · escape closes[/dim]")
            yield OptionList(
                *[
                    Option(
                        f"{'*' if s.cited else ' '} [{s.ref}] {s.kind}: {s.title or '(untitled)'}", id=s.ref
                    )
                    for s in self._sources
                ],
                id="sources",
            )

    def on_mount(self) -> None:
        self.query_one("#sources", OptionList).focus()

    @on(OptionList.OptionSelected, "#sources")
    def _open(self, event: OptionList.OptionSelected) -> None:
        source = next((s for s in self._sources if s.ref == event.option.id), None)
        app = self.app
        if source is None or not isinstance(app, AuroraApp):
            return
        ws = app.workspace
        kind = "item" if source.kind in _ITEM_KINDS else source.kind

        def read() -> str:
            doc = ws.search.read(kind, source.entity_id)
            parts = [f"[b]{escape(doc.title or '(untitled)')}[/b]"]
            if doc.meta:
                parts.append(f"[dim]{escape(doc.meta)}[/dim]")
            return "\n".join([*parts, "", escape(doc.body)])

        def show(text: str) -> None:
            app.push_screen(TextModal(text))

        app.background(read, show)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


class TextModal(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog reader"):
            yield Static(self._text)
            yield Static("[dim]escape closes[/dim]")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


class PersonalityModal(ModalScreen[str | None]):
    """Pick who answers; broken personality files are listed with why, and cannot be picked."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Cancel")]

    def __init__(
        self, personalities: dict[str, Personality], broken: list[tuple[str, str]], current: str
    ) -> None:
        super().__init__()
        self._personalities = personalities
        self._broken = broken
        self._current = current

    def compose(self) -> ComposeResult:
        options = [
            Option(f"{'● ' if name == self._current else '  '}{name} — {p.description}", id=name)
            for name, p in self._personalities.items()
        ]
        options += [
            Option(f"  {escape(path)}: broken ({escape(error)})", disabled=True)
            for path, error in self._broken
        ]
        with Vertical(classes="dialog"):
            yield Static("[b]Who answers?[/b]  [dim]enter picks · escape cancels[/dim]")
            yield OptionList(*options, id="personalities")

    def on_mount(self) -> None:
        self.query_one("#personalities", OptionList).focus()

    @on(OptionList.OptionSelected, "#personalities")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    async def action_dismiss(self, result: str | None = None) -> None:
        self.dismiss(result)


class Transcript(ListView):
    """The open conversation. With focus, single keys act on the highlighted answer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "screen.sources", "Sources"),
        Binding("y", "screen.copy", "Copy"),
        Binding("t", "screen.make_task", "Make a task"),
        Binding("n", "screen.make_note", "Make a note"),
        Binding("i,tab", "screen.to_composer", "Ask", key_display="i"),
    ]


class ChatScreen(Screen[None]):
    TITLE = "Chat"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop_or_back", "Stop / back"),
        Binding("ctrl+n", "new_conversation", "New conversation"),
        Binding("ctrl+r", "pick_personality", "Who answers"),
        Binding("ctrl+s", "export", "Export to Markdown"),
        Binding("ctrl+o", "sources", "Sources"),
        Binding("ctrl+y", "copy", "Copy answer"),
        Binding("up", "to_transcript", "Answers", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.conversation_id: str | None = None
        self.personality = "Robbie"
        self._conversations: list[ConversationSummary] = []
        self._answering: Worker[None] | None = None
        self._answering_queued = False
        self._said = ""

    @property
    def aurora(self) -> AuroraApp:
        assert isinstance(self.app, AuroraApp)
        return self.app

    @property
    def workspace(self) -> Workspace:
        return self.aurora.workspace

    # -------------------------------------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield Static(self._header(), id="header")
        with Horizontal(id="chat-body"):
            yield OptionList(id="conversations")
            with Vertical(id="chat-main"):
                yield Transcript(id="transcript")
                yield Input(placeholder="Ask Robbie about your tasks, notes, mail and meetings; enter sends",
                            id="composer")  # fmt: skip
        yield StatusBar(id="status")
        yield Footer()

    def _header(self) -> str:
        return (
            f"[b]Aurora[/b]  chat with [b]{escape(self.personality)}[/b]  "
            "[dim]ctrl+r who answers · ctrl+n new · ↑ to the answers: o sources, y copy, t task, n note[/dim]"
        )

    def on_mount(self) -> None:
        self.aurora.background(self.aurora.personalities)  # the TOML files, read off the UI thread
        self.query_one("#composer", Input).focus()
        self.reload_conversations(select_first=True)
        self.refresh_status()
        self.answer_waiting()

    # ------------------------------------------------------------------------------------- conversations

    def reload_conversations(self, *, select_first: bool = False) -> None:
        ws = self.workspace

        def show(found: list[ConversationSummary]) -> None:
            self._conversations = found
            listing = self.query_one("#conversations", OptionList)
            listing.set_options([Option(conversation_prompt(c), id=c.id) for c in found])
            if select_first and found and self.conversation_id is None:
                self.open_conversation(found[0])
            elif self.conversation_id is not None:
                index = next((i for i, c in enumerate(found) if c.id == self.conversation_id), None)
                if index is not None:
                    listing.highlighted = index

        self.aurora.background(lambda: ws.conversations.recent(), show)

    @on(OptionList.OptionSelected, "#conversations")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        chosen = next((c for c in self._conversations if c.id == event.option.id), None)
        if chosen is not None and not self._busy():
            self.open_conversation(chosen)
            self.query_one("#composer", Input).focus()

    def open_conversation(self, conversation: ConversationSummary) -> None:
        self.conversation_id = conversation.id
        self.personality = conversation.personality or self.personality
        self.query_one("#header", Static).update(self._header())
        self.reload_messages()

    def reload_messages(self, *, force: bool = False) -> None:
        """Show the open conversation as saved. While an answer streams, only `force` (the answer's own
        end) replaces what is on screen."""
        conversation_id = self.conversation_id
        if conversation_id is None:
            return
        ws = self.workspace

        def show(messages: list[ChatMessage]) -> None:
            if conversation_id != self.conversation_id or (self._busy() and not force):
                return
            transcript = self.query_one("#transcript", ListView)
            transcript.clear()
            transcript.extend(MessageItem(m) for m in messages)
            transcript.scroll_end(animate=False)

        self.aurora.background(lambda: ws.conversations.messages(conversation_id), show)

    def refresh_after_sync(self, changed: bool) -> None:
        """The background sync finished a round: answers the node wrote may have arrived."""
        self.refresh_status()
        if changed:
            self.reload_conversations()
            self.reload_messages()
            self.answer_waiting()

    def action_new_conversation(self) -> None:
        if self._busy():
            self.notify("An answer is still coming: escape stops it", severity="warning")
            return
        self.conversation_id = None
        self.query_one("#transcript", ListView).clear()
        self.query_one("#conversations", OptionList).highlighted = None
        self.query_one("#composer", Input).focus()
        self._say("New conversation: ask away")

    # ------------------------------------------------------------------------------------------- asking

    def _busy(self) -> bool:
        return self._answering is not None and self._answering.state in (
            WorkerState.PENDING,
            WorkerState.RUNNING,
        )

    @on(Input.Submitted, "#composer")
    def _submitted(self, event: Input.Submitted) -> None:
        question = event.value
        if not question.strip():
            return
        if self._busy():
            self.notify("An answer is still coming: wait, or press escape to stop it", severity="warning")
            return
        self.query_one("#composer", Input).value = ""
        self._answering = self._ask(question)

    @work(group="chat", exclusive=True)
    async def _ask(self, question: str) -> None:
        from aurora.app.assistant import AnswerDone, AnswerFailed, AnswerText
        from aurora.app.assistant.chat import AnswerQueued, QuestionRefused, chat_turn

        ws = self.workspace
        transcript = self.query_one("#transcript", ListView)
        assistant = await self.aurora.assistant()
        if self.conversation_id is None:
            personality = self.personality
            self.conversation_id = await self.aurora.run_in_db(lambda: ws.conversations.start(personality))
            self.reload_conversations()
        conversation_id = self.conversation_id
        now = datetime.now(UTC)
        asked = ChatMessage("", conversation_id, Role.USER, question, 0, self.personality, MessageStatus.DONE,
                            "", (), "", False, now)  # fmt: skip
        pending = ChatMessage("", conversation_id, Role.ASSISTANT, "", 0, self.personality,
                              MessageStatus.STREAMING, "", (), "", False, now)  # fmt: skip
        question_item, answer_item = MessageItem(asked), MessageItem(pending)
        await transcript.extend([question_item, answer_item])
        transcript.scroll_end(animate=False)
        markdown = answer_item.query_one(Markdown)
        status = answer_item.query_one(".answer-status", Static)
        status.update(f"[dim]{escape(self.personality)} is thinking… (escape stops)[/dim]")
        stream: MarkdownStream | None = None
        try:
            async with contextlib.aclosing(
                chat_turn(assistant, conversation_id, question, self.personality, mood=self.aurora.mood)
            ) as events:
                async for event in events:
                    if isinstance(event, AnswerText):
                        if stream is None:
                            await markdown.update("")
                            stream = Markdown.get_stream(markdown)
                            status.update(
                                f"[dim]{escape(self.personality)} is answering… (escape stops)[/dim]"
                            )
                        await stream.write(event.text)
                        transcript.scroll_end(animate=False)
                    elif isinstance(event, QuestionRefused):
                        await question_item.remove()
                        await answer_item.remove()
                        self.query_one("#composer", Input).value = question  # nothing was saved: keep it
                        self.notify(event.message, severity="error", timeout=10)
                    elif isinstance(event, AnswerQueued):
                        self._say(WAITING_TEXT)
                    elif isinstance(event, AnswerFailed):
                        self.notify(event.message, severity="error", timeout=10)
                    elif isinstance(event, AnswerDone) and event.note:
                        self._say(event.note)
        finally:
            if stream is not None:
                await stream.stop()
        self.reload_conversations()
        self.reload_messages(force=True)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self._answering and event.state is WorkerState.CANCELLED:
            self._say("Stopped: what had arrived is kept")
            self.reload_messages(force=True)
            self.reload_conversations()

    def action_to_transcript(self) -> None:
        transcript = self.query_one("#transcript", ListView)
        if transcript.children:
            transcript.focus()
            answers = [i for i, c in enumerate(transcript.children) if isinstance(c, MessageItem)
                       and c.message.role is Role.ASSISTANT]  # fmt: skip
            transcript.index = answers[-1] if answers else len(transcript.children) - 1

    def action_to_composer(self) -> None:
        self.query_one("#composer", Input).focus()

    def action_stop_or_back(self) -> None:
        if self._busy() and self._answering is not None:
            self._answering.cancel()
            return
        self.dismiss(None)

    def answer_waiting(self) -> None:
        """Questions that waited for a model: answer them now if a model is in reach (quietly otherwise)."""
        if self._answering_queued:
            return
        self._answering_queued = True
        self._answer_waiting()

    @work(group="queued", exclusive=True)
    async def _answer_waiting(self) -> None:
        from aurora.app.assistant.chat import answer_queued

        ws = self.workspace
        try:
            waiting = await self.aurora.run_in_db(lambda: ws.conversations.queued())
            if not waiting:
                return
            answered = await answer_queued(await self.aurora.assistant(), done_by=ws.store.device_id)
            if answered:
                self._say(f"{answered} waiting question{'s' if answered != 1 else ''} answered")
                self.reload_conversations()
                self.reload_messages()
        except AuroraError as exc:
            self._say(str(exc))
        finally:
            self._answering_queued = False

    def action_pick_personality(self) -> None:
        personalities, broken = self.aurora.personalities()

        def picked(name: str | None) -> None:
            if name:
                self.personality = name
                self.query_one("#header", Static).update(self._header())
                self.query_one("#composer", Input).placeholder = f"Ask {name}; enter sends"
                self._say(f"{name} answers from now on")

        self.app.push_screen(PersonalityModal(personalities, broken, self.personality), picked)

    # ---------------------------------------------------------------------------------- on an answer

    def _answer(self) -> ChatMessage | None:
        """The highlighted answer when the conversation has focus, else the last finished one."""
        transcript = self.query_one("#transcript", ListView)
        items = [i for i in transcript.children if isinstance(i, MessageItem)]
        if transcript.has_focus and isinstance(transcript.highlighted_child, MessageItem):
            chosen = transcript.highlighted_child.message
            if chosen.role is Role.ASSISTANT:
                return chosen
            index = items.index(transcript.highlighted_child)
            later = [i.message for i in items[index + 1 :] if i.message.role is Role.ASSISTANT]
            return later[0] if later else None
        answers = [i.message for i in items if i.message.role is Role.ASSISTANT and i.message.id]
        return answers[-1] if answers else None

    def _question_for(self, answer: ChatMessage) -> str:
        transcript = self.query_one("#transcript", ListView)
        items = [i.message for i in transcript.children if isinstance(i, MessageItem)]
        earlier = [m for m in items if m.role is Role.USER and m.position < answer.position]
        return earlier[-1].text if earlier else ""

    def _need_answer(self) -> ChatMessage | None:
        answer = self._answer()
        if answer is None or not answer.text:
            self.notify("No answer to use yet: ask something first", severity="warning")
            return None
        return answer

    def action_sources(self) -> None:
        answer = self._answer()
        if answer is None or not answer.sources:
            self.notify("This answer has no sources", severity="warning")
            return
        self.app.push_screen(SourcesModal(answer.sources))

    def action_copy(self) -> None:
        answer = self._need_answer()
        if answer is not None:
            self.app.copy_to_clipboard(markdown_of(answer))
            self._say("Answer copied (with its sources) to the clipboard")

    def action_make_task(self) -> None:
        answer = self._need_answer()
        if answer is None:
            return
        from aurora.app.assistant.prompt import suggestions

        proposed = [p for p in suggestions(answer.text) if p.kind == "create_task"]
        title = proposed[0].title if proposed else task_title(answer.text)
        notes = f"From a chat with {answer.personality}: {self._question_for(answer)}"[:2000]
        ws = self.workspace
        self.aurora.background(
            lambda: ws.tasks.add(title, notes=notes, source="chat"),
            lambda task: self.notify(f"Task added: {escape(task.title)}", timeout=4),
        )

    def action_make_note(self) -> None:
        answer = self._need_answer()
        if answer is None:
            return
        from aurora.app.assistant.prompt import suggestions

        proposed = [p for p in suggestions(answer.text) if p.kind == "create_note"]
        body = (
            proposed[0].body if proposed else f"{self._question_for(answer)}\n\n{_CITE.sub('', answer.text)}"
        )
        ws = self.workspace
        self.aurora.background(
            lambda: ws.notes.add(body.strip()[:20_000], tags=["chat"]),
            lambda note: self.notify("Note added from the answer", timeout=4),
        )

    def action_export(self) -> None:
        conversation_id = self.conversation_id
        if conversation_id is None:
            self.notify("Nothing to export yet: ask something first", severity="warning")
            return
        ws = self.workspace
        folder = ws.settings.data_dir / "exports"

        def export() -> Path:
            text = ws.conversations.export_markdown(conversation_id)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"chat-{datetime.now(UTC):%Y%m%d-%H%M%S}-{conversation_id[-8:]}.md"
            path.write_text(text, encoding="utf-8")
            return path

        self.aurora.background(export, lambda path: self._say(f"Exported to {path}"))

    def _say(self, text: str) -> None:
        """A line in the status bar, after the workspace's status and Robbie's mood."""
        self._said = text
        self.refresh_status()

    def refresh_status(self) -> None:
        ws = self.workspace

        def show(status: WorkspaceStatus) -> None:
            self.query_one(StatusBar).show(status, self._said)

        self.aurora.background(ws.status, show)
