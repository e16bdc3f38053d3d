"""The people screen (`p`): everyone in your mail, calendar and chats, most engaged first, and what you
last did together."""

from __future__ import annotations

from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from aurora.app.people_service import InteractionView, PersonSummary
from aurora.app.workspace import Workspace, WorkspaceStatus
from aurora.tui.app import AuroraApp
from aurora.tui.widgets.status_bar import StatusBar

_KIND_LABELS = {
    "mail_in": "mail from them",
    "mail_out": "mail to them",
    "meeting": "meeting",
    "message": "message",
    "transcript": "in a transcript",
}


def person_prompt(person: PersonSummary) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    bar = round(person.engagement.score * 10)
    text.append("█" * bar + "░" * (10 - bar), style="green")
    text.append(f" {person.label}", style="bold")
    if person.org:
        text.append(f"  {person.org}", style="dim")
    return text


def person_detail(person: PersonSummary, recent: list[InteractionView]) -> str:
    e = person.engagement
    lines = [f"[b]{escape(person.label)}[/b]"]
    if person.job_title or person.org:
        lines.append(escape(" · ".join(x for x in (person.job_title, person.org) if x)))
    lines += [escape(", ".join(person.emails)) if person.emails else "[dim]no e-mail address[/dim]", ""]
    last = f"{e.last_seen.astimezone():%d %b %Y}" if e.last_seen else "never"
    lines.append(
        f"engagement [b]{e.score:.2f}[/b]  (recency {e.recency:.2f}, frequency {e.frequency:.2f}, "
        f"reciprocity {e.reciprocity:.2f}) · {e.count} interactions · last {last}"
    )
    lines += ["", "[b]Recent[/b]"]
    for r in recent:
        when = f"{r.occurred_at.astimezone():%d %b %Y}" if r.occurred_at else "undated"
        lines.append(
            f"{when}  [cyan]{_KIND_LABELS.get(r.kind, r.kind)}[/]  {escape(r.title or '(untitled)')}"
        )
    if not recent:
        lines.append("[dim]nothing yet[/dim]")
    return "\n".join(lines)


class PeopleScreen(Screen[None]):
    TITLE = "People"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,m", "back", "Matrix"),
        Binding("j", "cursor(1)", "Next person", show=False),
        Binding("k", "cursor(-1)", "Previous person", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._people: list[PersonSummary] = []

    @property
    def ws(self) -> Workspace:
        app = self.app
        assert isinstance(app, AuroraApp)
        return app.workspace

    def compose(self) -> ComposeResult:
        yield Static("[b]Aurora[/b]  people, most engaged first", id="header")
        with Horizontal(id="people-body"):
            yield OptionList(id="people-list")
            yield Static("", id="person-detail")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#people-list", OptionList).focus()
        assert isinstance(self.app, AuroraApp)
        self.app.background(lambda: (self.ws.people.ranked(), self.ws.status()), lambda r: self._show(*r))

    def _show(self, people: list[PersonSummary], status: WorkspaceStatus) -> None:
        self._people = people
        listing = self.query_one("#people-list", OptionList)
        listing.set_options([Option(person_prompt(p), id=p.id) for p in people])
        if people:
            listing.highlighted = 0
        else:
            self.query_one("#person-detail", Static).update(
                "No people yet. Import mail, calendars or chats: [b]aurora import PATH[/b]"
            )
        self.query_one(StatusBar).show(status, f"{len(people)} people")

    @on(OptionList.OptionHighlighted, "#people-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        person = next((p for p in self._people if p.id == event.option.id), None)
        if person is None:
            return
        assert isinstance(self.app, AuroraApp)
        self.app.background(
            lambda: self.ws.people.recent(person.id),
            lambda recent: self.query_one("#person-detail", Static).update(person_detail(person, recent)),
        )

    def action_cursor(self, offset: int) -> None:
        listing = self.query_one("#people-list", OptionList)
        if offset > 0:
            listing.action_cursor_down()
        else:
            listing.action_cursor_up()

    def action_back(self) -> None:
        self.dismiss(None)
