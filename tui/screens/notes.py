"""The sticky-notes screen (`n`): pinned notes first, each in its colour."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from aurora.app.workspace import Workspace
from aurora.schema import MAX_BODY, Note, NoteColour
from aurora.tui.app import AuroraApp
from aurora.tui.widgets.filter_bar import FilterBar
from aurora.tui.widgets.status_bar import StatusBar

_SWATCH = {
    NoteColour.YELLOW: "yellow",
    NoteColour.PINK: "hot_pink",
    NoteColour.BLUE: "deep_sky_blue1",
    NoteColour.GREEN: "green3",
    NoteColour.PURPLE: "medium_purple1",
    NoteColour.ORANGE: "dark_orange",
}


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(1, width - 1)] + "…"


def note_prompt(note: Note, width: int = 200) -> Text:
    """A note as up to five lines, each cut to `width` with an ellipsis rather than wrapped unindented."""
    colour = _SWATCH[note.colour]
    text = Text()
    text.append("▌", style=colour)
    text.append("📌 " if note.pinned else "   ")
    lines = note.body.splitlines() or [""]
    text.append(_cut(lines[0], width - 5), style=f"bold {colour}")
    for line in lines[1:4]:
        text.append("\n    " + _cut(line, width - 5))
    if len(lines) > 4:
        text.append("\n    …", style="dim")
    if note.tags:
        text.append("\n    " + " ".join(f"#{t}" for t in note.tags), style="magenta")
    return text


@dataclass(frozen=True)
class NoteEdit:
    fields: dict[str, Any]


class NoteFormModal(ModalScreen[NoteEdit | None]):
    """Write or edit a note. ctrl+s saves, escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, note: Note | None = None, focus_tags: bool = False) -> None:
        super().__init__()
        self._note = note
        self._focus_tags = focus_tags

    def compose(self) -> ComposeResult:
        note = self._note
        with Vertical(classes="dialog"):
            yield Label("[b]Edit note[/b]" if note else "[b]New note[/b]")
            yield TextArea(note.body if note else "", id="body")
            yield Label("Tags [dim](space-separated)[/dim]")
            yield Input(" ".join(note.tags) if note else "", id="tags")
            yield Label("Colour")
            yield Select(
                [(c.value, c) for c in NoteColour],
                value=note.colour if note else NoteColour.YELLOW,
                allow_blank=False,
                id="colour",
            )
            yield Static("", id="form-error")
            yield Label("[dim]ctrl+s saves · escape cancels[/dim]")

    def on_mount(self) -> None:
        self.query_one("#tags" if self._focus_tags else "#body").focus()

    def action_save(self) -> None:
        body = self.query_one("#body", TextArea).text
        if not body.strip():
            self.query_one("#form-error", Static).update("[red]a note needs some text[/]")
            return
        if len(body) > MAX_BODY:
            self.query_one("#form-error", Static).update(f"[red]keep a note under {MAX_BODY} characters[/]")
            return
        form: dict[str, Any] = {
            "body": body,
            "tags": self.query_one("#tags", Input).value.split(),
            "colour": self.query_one("#colour", Select).value,
        }
        if self._note is None:
            self.dismiss(NoteEdit(form))
            return
        # Only what the person changed, so a field left alone never overwrites a newer value.
        changes = {name: value for name, value in form.items() if value != getattr(self._note, name)}
        self.dismiss(NoteEdit(changes) if changes else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class NotesScreen(Screen[None]):
    TITLE = "Notes"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("p", "pin", "Pin"),
        Binding("c", "colour", "Colour"),
        Binding("t", "tag", "Tags"),
        Binding("d", "delete", "Delete"),
        Binding("u", "undo", "Undo"),
        Binding("U,ctrl+y", "redo", "Redo", key_display="U"),
        Binding("f", "filter", "Filter"),
        Binding("escape,m", "back", "Matrix"),
        Binding("j", "cursor(1)", "Next note", show=False),
        Binding("k", "cursor(-1)", "Previous note", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._notes: list[Note] = []
        self._query = ""

    @property
    def aurora(self) -> AuroraApp:
        assert isinstance(self.app, AuroraApp)
        return self.app

    @property
    def ws(self) -> Workspace:
        return self.aurora.workspace

    def compose(self) -> ComposeResult:
        yield Static("[b]Aurora[/b]  sticky notes", id="header")
        yield FilterBar(placeholder="filter notes: words and #tags", id="filter")
        yield OptionList(id="notes-list")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(FilterBar).display = False
        self.query_one("#notes-list", OptionList).focus()
        self.reload()

    def reload(self, keep: str | None = None) -> None:
        query = self._query
        self.aurora.background(
            lambda: (self.ws.notes.list(query), self.ws.status()), lambda r: self._show(*r, keep=keep)
        )

    def _show(self, notes: list[Note], status: Any, keep: str | None) -> None:
        self._notes = notes
        notes_list = self.query_one("#notes-list", OptionList)
        previous = notes_list.highlighted
        width = notes_list.scrollable_content_region.width or 200
        notes_list.set_options([Option(note_prompt(n, width), id=n.id) for n in notes])
        if notes:
            index = next((i for i, n in enumerate(notes) if n.id == keep), None)
            notes_list.highlighted = index if index is not None else min(previous or 0, len(notes) - 1)
        self.query_one(StatusBar).show(status, f"filter: {self._query}" if self._query else "")

    def current(self) -> Note | None:
        option = self.query_one("#notes-list", OptionList).highlighted_option
        return next((n for n in self._notes if option is not None and n.id == option.id), None)

    def action_cursor(self, offset: int) -> None:
        notes_list = self.query_one("#notes-list", OptionList)
        if offset > 0:
            notes_list.action_cursor_down()
        else:
            notes_list.action_cursor_up()

    def action_add(self) -> None:
        def saved(edit: NoteEdit | None) -> None:
            if edit is not None:
                self.aurora.background(
                    lambda: self.ws.notes.add(
                        edit.fields["body"], colour=edit.fields["colour"], tags=edit.fields["tags"]
                    ),
                    lambda note: self.reload(keep=note.id),
                )

        self.app.push_screen(NoteFormModal(), saved)

    def _edit(self, focus_tags: bool) -> None:
        note = self.current()
        if note is None:
            return

        def saved(edit: NoteEdit | None) -> None:
            if edit is not None:
                self.aurora.background(
                    lambda: self.ws.notes.update(note.id, **edit.fields), lambda n: self.reload(keep=n.id)
                )

        self.app.push_screen(NoteFormModal(note, focus_tags=focus_tags), saved)

    def action_edit(self) -> None:
        self._edit(focus_tags=False)

    def action_tag(self) -> None:
        self._edit(focus_tags=True)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_edit()

    def action_pin(self) -> None:
        note = self.current()
        if note is not None:
            self.aurora.background(
                lambda: self.ws.notes.toggle_pin(note.id), lambda n: self.reload(keep=n.id)
            )

    def action_colour(self) -> None:
        note = self.current()
        if note is not None:
            self.aurora.background(
                lambda: self.ws.notes.cycle_colour(note.id), lambda n: self.reload(keep=n.id)
            )

    def action_delete(self) -> None:
        note = self.current()
        if note is not None:

            def deleted(_body: str) -> None:
                self.notify("Deleted the note. Press u to undo.", timeout=4)
                self.reload()

            self.aurora.background(lambda: self.ws.notes.delete(note.id), deleted)

    def action_undo(self) -> None:
        self.aurora.background(self.ws.notes.undo, lambda d: self._after_history("Undid", d))

    def action_redo(self) -> None:
        self.aurora.background(self.ws.notes.redo, lambda d: self._after_history("Redid", d))

    def _after_history(self, verb: str, description: str | None) -> None:
        self.notify(
            f"{verb} {escape(description)}" if description else f"Nothing to {verb[:-1].lower()}", timeout=3
        )
        self.reload()

    def action_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.display = True
        bar.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._query = event.value.strip()
        self.reload()

    @on(Input.Submitted, "#filter")
    @on(FilterBar.Closed)
    def _filter_done(self) -> None:
        self.query_one(FilterBar).display = bool(self._query)
        self.query_one("#notes-list", OptionList).focus()

    def action_back(self) -> None:
        self.dismiss(None)
