"""Adding a task (quick-add, parsed live as you type) and editing one in a form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label, Static, TextArea

from aurora.app import quickadd
from aurora.app.errors import InvalidInputError
from aurora.schema import MAX_TITLE, Task
from aurora.tui.widgets.task_list import due_label


def draft_preview(draft: quickadd.Draft, now: datetime) -> str:
    parts = [f"[b]{escape(draft.title)}[/b]"]
    if draft.due is not None:
        parts.append(f"due [cyan]{due_label(draft.due, now)}[/] [dim]({draft.due:%a %d %b %H:%M})[/dim]")
    if draft.urgent:
        parts.append("[red]urgent[/]")
    if draft.important:
        parts.append("[yellow]important[/]")
    parts += [f"[magenta]#{t}[/]" for t in draft.tags]
    return "  ".join(parts)


class QuickAddModal(ModalScreen[str | None]):
    """One line: 'Call Dana tomorrow 3pm !urgent !important #sales'. Returns the line, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("[b]Add a task[/b]  [dim]date, !urgent (!u), !important (!i), #tag[/dim]")
            yield Input(placeholder="Call Dana tomorrow 3pm !urgent #sales", id="quick", max_length=2000)
            yield Static("", id="preview")
            yield Label("[dim]enter adds · escape cancels[/dim]")

    @on(Input.Changed, "#quick")
    def _changed(self, event: Input.Changed) -> None:
        self._parse(event.value)

    @work(thread=True, exclusive=True, group="quick-add-preview")
    def _parse(self, text: str) -> None:
        # Parsing dates is CPU work of a few ms; it runs off the UI thread so typing never stutters.
        now = _clock(self.app)
        if not text.strip():
            preview = ""
        else:
            try:
                preview = draft_preview(quickadd.parse(text, now), now)
            except InvalidInputError as exc:
                preview = f"[red]{escape(str(exc))}[/]"
        self.app.call_from_thread(self.query_one("#preview", Static).update, preview)

    @on(Input.Submitted, "#quick")
    def _submit(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        try:
            quickadd.parse(text, _clock(self.app))
        except InvalidInputError as exc:
            self.query_one("#preview", Static).update(f"[red]{escape(str(exc))}[/]")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class TaskEdit:
    """What the edit form returns: the fields to change."""

    changes: dict[str, Any]


class TaskFormModal(ModalScreen[TaskEdit | None]):
    """Edit every field of a task. ctrl+s saves, escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, task: Task) -> None:
        super().__init__()
        self._editing = task

    def compose(self) -> ComposeResult:
        task = self._editing
        due = task.due.astimezone().strftime("%Y-%m-%d %H:%M") if task.due else ""
        with Vertical(classes="dialog"):
            yield Label("[b]Edit task[/b]")
            yield Label("Title")
            yield Input(task.title, id="title", max_length=MAX_TITLE)
            yield Label("Due [dim](e.g. 'fri 5pm', '2026-12-01'; empty for none)[/dim]")
            yield Input(due, id="due")
            yield Label("Tags [dim](space-separated)[/dim]")
            yield Input(" ".join(task.tags), id="tags")
            with Horizontal(classes="flags"):
                yield Checkbox("Urgent", task.urgent, id="urgent")
                yield Checkbox("Important", task.important, id="important")
            yield Label("Notes")
            yield TextArea(task.notes, id="task-notes")
            yield Static("", id="form-error")
            yield Label("[dim]ctrl+s saves · escape cancels[/dim]")

    @on(Input.Submitted)
    def _enter(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        now = _clock(self.app)
        try:
            due = quickadd.parse_due(self.query_one("#due", Input).value, now)
        except InvalidInputError as exc:
            self.query_one("#form-error", Static).update(f"[red]{escape(str(exc))}[/]")
            return
        title = self.query_one("#title", Input).value
        if not title.strip():
            self.query_one("#form-error", Static).update("[red]a task needs a title[/]")
            return
        task = self._editing
        form: dict[str, Any] = {
            "title": title,
            "due": due,
            "tags": self.query_one("#tags", Input).value.split(),
            "urgent": self.query_one("#urgent", Checkbox).value,
            "important": self.query_one("#important", Checkbox).value,
            "notes": self.query_one("#task-notes", TextArea).text,
        }
        # Only what the person changed: a field left alone must not write back the value it had when the
        # form opened over a newer one (from the CLI, or later from sync).
        changes = {name: value for name, value in form.items() if value != getattr(task, name)}
        self.dismiss(TaskEdit(changes) if changes else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _clock(app: object) -> datetime:
    """Now, by the workspace's clock (the one the matrix shows and the tests fix), in local time."""
    workspace = getattr(app, "workspace", None)
    now = workspace.now() if workspace is not None else datetime.now()
    return now.astimezone()
