"""Search (`/` from any screen): results as you type, enter opens one in a reader, `t` makes a task of it."""

from __future__ import annotations

from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from aurora.app.errors import AuroraError
from aurora.app.search.keyword import MARK_END, MARK_START, Hit
from aurora.app.workspace import Workspace
from aurora.schema import Task
from aurora.tui.app import AuroraApp

_KIND_ICONS = {"task": "☐", "note": "✎", "person": "☺", "item": "✉"}


def hit_prompt(hit: Hit, width: int = 200) -> Text:
    """Two lines: what it is, then the passage that matched, cut to `width` rather than wrapped."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{_KIND_ICONS.get(hit.kind, '•')} ", style="cyan")
    text.append(hit.title or "(untitled)", style="bold")
    meta = " · ".join(x for x in (hit.source or "", (hit.occurred_at or "")[:10]) if x)
    if meta:
        text.append(f"  {meta}", style="dim")
    text.append("\n    ")
    snippet = " ".join(hit.snippet.split())
    room = max(10, width - 6)
    if len(snippet) > room:
        snippet = snippet[: room - 1] + "…"
    for i, part in enumerate(snippet.replace(MARK_END, MARK_START).split(MARK_START)):
        text.append(part, style="reverse" if i % 2 else "")
    return text


def read_entity(ws: Workspace, hit: Hit) -> str:
    """The whole of what a hit points at, as markup for the reader."""
    doc = ws.search.read(hit.kind, hit.entity_id)
    parts = [f"[b]{escape(doc.title or '(untitled)')}[/b]"]
    if doc.meta:
        parts.append(f"[dim]{escape(doc.meta)}[/dim]")
    parts += ["", escape(doc.body)]
    return "\n".join(parts)


class ReaderModal(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("t", "make_task", "Make a task"),
    ]

    def __init__(self, hit: Hit, text: str) -> None:
        super().__init__()
        self._hit = hit
        self._text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog reader"):
            yield Static(self._text, id="reader-text")
            yield Static("[dim]t makes a task of this · escape closes[/dim]")

    def action_make_task(self) -> None:
        screen = self.app.screen_stack[-2]
        if isinstance(screen, SearchScreen):
            screen.make_task(self._hit)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


class SearchScreen(Screen[None]):
    TITLE = "Search"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("t", "make_task", "Make a task"),
        Binding("down", "to_results", "Results", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._hits: list[Hit] = []
        self._asked = ""

    @property
    def aurora(self) -> AuroraApp:
        assert isinstance(self.app, AuroraApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Static(
            "[b]Aurora[/b]  search everything: tasks, notes, people, mail, events, chats", id="header"
        )
        with Vertical(id="search-body"):
            yield Input(placeholder="type to search; enter opens a result, t makes a task of it", id="query")
            yield OptionList(id="results")
            yield Static("", id="search-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#query", Input).focus()

    @on(Input.Changed, "#query")
    def _changed(self, event: Input.Changed) -> None:
        query = event.value
        self._asked = query
        ws = self.aurora.workspace

        def show(hits: list[Hit]) -> None:
            if query != self._asked:
                return  # a newer query is on its way
            self._hits = hits
            self.query_one("#results", OptionList).set_options(
                [Option(hit_prompt(h), id=h.key) for h in hits]
            )
            found = f"{len(hits)} result{'s' if len(hits) != 1 else ''}" if query.strip() else ""
            self.query_one("#search-status", Static).update(found)

        self.aurora.background(lambda: ws.search.query(query, limit=50), show)

    @on(Input.Submitted, "#query")
    def _submitted(self) -> None:
        self.action_to_results()

    def action_to_results(self) -> None:
        results = self.query_one("#results", OptionList)
        if self._hits:
            results.focus()
            results.highlighted = results.highlighted or 0

    def _current(self) -> Hit | None:
        option = self.query_one("#results", OptionList).highlighted_option
        return next((h for h in self._hits if option is not None and h.key == option.id), None)

    @on(OptionList.OptionSelected, "#results")
    def _open(self) -> None:
        hit = self._current()
        if hit is None:
            return
        ws = self.aurora.workspace

        def show(text: str) -> None:
            self.app.push_screen(ReaderModal(hit, text))

        self.aurora.background(lambda: read_entity(ws, hit), show)

    def action_make_task(self) -> None:
        hit = self._current()
        if hit is not None:
            self.make_task(hit)

    def make_task(self, hit: Hit) -> None:
        ws = self.aurora.workspace

        def added(task: Task) -> None:
            due = f", due {task.due:%a %d %b %H:%M}" if task.due else ""
            self.notify(f"Task added: {escape(task.title)}{due}", timeout=4)

        def failed(exc: AuroraError) -> None:
            self.notify(str(exc), severity="error")

        self.aurora.background(lambda: ws.task_from_result(hit), added, failed)

    def action_back(self) -> None:
        self.dismiss(None)
