"""A quadrant's list of tasks: an OptionList whose up/down (and j/k) hand focus on at its edges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from aurora.app.quickadd import ALL_DAY
from aurora.schema import Task, TaskStatus


def due_label(due: datetime | None, now: datetime) -> str:
    """Short, relative where it helps: 'overdue', 'today 15:00', 'tomorrow', 'Fri', '12 Dec'."""
    if due is None:
        return ""
    local = due.astimezone(now.tzinfo)
    days = (local.date() - now.date()).days
    clock = "" if local.time().replace(second=0, microsecond=0) == ALL_DAY else local.strftime(" %H:%M")
    if local < now:
        return "overdue"
    if days == 0:
        return f"today{clock}"
    if days == 1:
        return f"tomorrow{clock}"
    if days < 7:
        return f"{local.strftime('%a')}{clock}"
    return f"{local.day} {local.strftime('%b')}"


def task_prompt(task: Task, now: datetime) -> Text:
    done = task.status is TaskStatus.DONE
    text = Text()
    text.append("✓ " if done else "• ", style="green" if done else "dim")
    text.append(task.title, style="strike dim" if done else "")
    due = due_label(task.due, now)
    if due:
        text.append(f"  {due}", style="bold red" if due == "overdue" and not done else "cyan")
    for tag in task.tags:
        text.append(f" #{tag}", style="magenta")
    if task.manual:
        text.append(" ⚑", style="dim")
    return text


class TaskList(OptionList):
    """The tasks of one quadrant."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "down", "Down", show=False),
        Binding("up,k", "up", "Up", show=False),
    ]

    @dataclass
    class EdgeReached(Message):
        """The cursor tried to leave the list: the screen moves focus to the next quadrant."""

        task_list: TaskList
        direction: Literal["up", "down"]

    def show_tasks(self, tasks: list[Task], now: datetime, keep: str | None = None) -> None:
        """Replace the list's contents, keeping the cursor on task `keep` (or on the same row)."""
        previous = self.highlighted
        self.set_options([Option(task_prompt(t, now), id=t.id) for t in tasks])
        if not tasks:
            return
        if keep is not None:
            index = next((i for i, t in enumerate(tasks) if t.id == keep), None)
            if index is not None:
                self.highlighted = index
                return
        self.highlighted = min(previous or 0, len(tasks) - 1)

    @property
    def current_task_id(self) -> str | None:
        option = self.highlighted_option
        return option.id if option is not None else None

    def action_down(self) -> None:
        if self.highlighted is None or self.highlighted >= self.option_count - 1:
            self.post_message(self.EdgeReached(self, "down"))
        else:
            self.action_cursor_down()

    def action_up(self) -> None:
        if self.highlighted is None or self.highlighted <= 0:
            self.post_message(self.EdgeReached(self, "up"))
        else:
            self.action_cursor_up()
