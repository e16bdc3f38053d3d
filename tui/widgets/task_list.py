"""A quadrant's list of tasks, drawn with Textual's line API: only the rows on screen are rendered.

A quadrant may hold thousands of tasks. A widget per row, or an OptionList (which measures every option
up front), costs time in proportion to the list; this one costs time in proportion to the screen, so
showing 10,000 tasks or moving one between quadrants stays within a frame.

Up/down (and j/k) move the cursor; at the list's ends they hand focus on (`EdgeReached`), so the four lists
read as one matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from aurora.app.quickadd import ALL_DAY
from aurora.schema import Task, TaskStatus


def due_label(due: datetime | None, now: datetime) -> str:
    """Short, relative where it helps: 'overdue', 'today 15:00', 'tomorrow', 'Fri', '12 Dec'."""
    if due is None:
        return ""
    # Each in its own local offset: a summer date shows summer time even when read in winter.
    local = due.astimezone()
    days = (local.date() - now.astimezone().date()).days
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


def task_prompt(task: Task, now: datetime, width: int | None = None) -> Text:
    """One row: a mark, the title, then due date, tags and the by-hand flag. Given a `width`, the title is
    what gets cut short, so the due date and tags stay in view."""
    done = task.status is TaskStatus.DONE
    suffix = Text(no_wrap=True)
    due = due_label(task.due, now)
    if due:
        suffix.append(f"  {due}", style="bold red" if due == "overdue" and not done else "cyan")
    for tag in task.tags:
        suffix.append(f" #{tag}", style="magenta")
    if task.manual:
        suffix.append(" ⚑", style="dim")
    title = Text(task.title or "(untitled)", style="strike dim" if done else "", no_wrap=True)
    if width is not None:
        room = max(8, width - 2 - suffix.cell_len)
        if title.cell_len > room:
            title.truncate(room, overflow="ellipsis")
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("✓ " if done else "• ", style="green" if done else "dim")
    text.append_text(title)
    text.append_text(suffix)
    return text


class TaskList(ScrollView, can_focus=True):
    """The tasks of one quadrant, one line each."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "down", "Down", show=False),
        Binding("up,k", "up", "Up", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("enter", "select", "Open", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"task-list--cursor", "task-list--cursor-blurred"}
    DEFAULT_CSS = """
    TaskList {
        overflow-x: hidden;
        overflow-y: auto;
        padding: 0 0 0 1;
    }
    TaskList > .task-list--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    TaskList > .task-list--cursor-blurred {
        background: $block-cursor-blurred-background;
    }
    """

    highlighted: reactive[int | None] = reactive(None, always_update=True)

    @dataclass
    class EdgeReached(Message):
        """The cursor tried to leave the list: the screen moves focus to the next quadrant."""

        task_list: TaskList
        direction: Literal["up", "down"]

    @dataclass
    class Selected(Message):
        """Enter (or a double click) on a task."""

        task_list: TaskList
        task_id: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._tasks: list[Task] = []
        self._now = datetime.now().astimezone()

    # The list's contents -------------------------------------------------------------------------------

    def show_tasks(self, tasks: list[Task], now: datetime, keep: str | None = None) -> None:
        """Replace the list's contents, keeping the cursor on task `keep` (or on the same row)."""
        previous = self.highlighted
        self._tasks = tasks
        self._now = now
        self._set_length(len(tasks))
        if not tasks:
            self.highlighted = None
        else:
            index = next((i for i, t in enumerate(tasks) if t.id == keep), None) if keep else None
            self.highlighted = index if index is not None else min(previous or 0, len(tasks) - 1)
        self.refresh()

    def _set_length(self, length: int) -> None:
        """Tell the scroll machinery how many rows there are. `virtual_size` is a layout reactive: setting it
        lays out the whole screen (~10 ms here). That is needed only when the scrollbar appears or goes;
        otherwise the new length is set quietly and just the scrollbar's thumb is updated."""
        size = Size(self.size.width, length)
        old = self.virtual_size
        if size == old:
            return
        viewport = self.scrollable_content_region.height
        if not self.is_mounted or (old.height > viewport) != (length > viewport) or size.width != old.width:
            self.virtual_size = size
            return
        self.set_reactive(TaskList.virtual_size, size)
        if self.show_vertical_scrollbar:
            self.vertical_scrollbar.window_virtual_size = length
        if self.scroll_y > self.max_scroll_y:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    def set_now(self, now: datetime) -> None:
        """Redraw relative due dates ("today", "overdue") against a new time."""
        self._now = now
        self.refresh()

    @property
    def option_count(self) -> int:
        return len(self._tasks)

    @property
    def current_task_id(self) -> str | None:
        index = self.highlighted
        return self._tasks[index].id if index is not None and index < len(self._tasks) else None

    # Drawing ---------------------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = y + self.scroll_offset.y
        base = self.rich_style
        if index >= len(self._tasks):
            return Strip.blank(width, base)
        text = task_prompt(self._tasks[index], self._now, width)
        text.truncate(width, overflow="ellipsis", pad=True)
        segments = [
            Segment(s.text, base + s.style if s.style else base, s.control)
            for s in text.render(self.app.console)
            if s.text != "\n"
        ]
        strip = Strip(segments).adjust_cell_length(width, base)
        if index == self.highlighted:
            cursor = "task-list--cursor" if self.has_focus else "task-list--cursor-blurred"
            strip = strip.apply_style(self.get_component_rich_style(cursor, partial=True))
        return strip

    def watch_highlighted(self, index: int | None) -> None:
        if index is not None:
            self._keep_visible(index)
        self.refresh()

    def _keep_visible(self, index: int) -> None:
        height = self.scrollable_content_region.height
        top = self.scroll_offset.y
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif height and index >= top + height:
            self.scroll_to(y=index - height + 1, animate=False, immediate=True)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self._tasks))  # a resize lays out anyway
        if self.highlighted is not None:
            self._keep_visible(self.highlighted)

    # Keys and mouse --------------------------------------------------------------------------------------

    def action_down(self) -> None:
        if self.highlighted is None or self.highlighted >= len(self._tasks) - 1:
            self.post_message(self.EdgeReached(self, "down"))
        else:
            self.highlighted += 1

    def action_up(self) -> None:
        if self.highlighted is None or self.highlighted <= 0:
            self.post_message(self.EdgeReached(self, "up"))
        else:
            self.highlighted -= 1

    def action_first(self) -> None:
        if self._tasks:
            self.highlighted = 0

    def action_last(self) -> None:
        if self._tasks:
            self.highlighted = len(self._tasks) - 1

    def action_page(self, direction: int) -> None:
        if self._tasks:
            step = max(1, self.scrollable_content_region.height - 1)
            current = self.highlighted or 0
            self.highlighted = max(0, min(len(self._tasks) - 1, current + direction * step))

    def action_select(self) -> None:
        task_id = self.current_task_id
        if task_id is not None:
            self.post_message(self.Selected(self, task_id))

    def on_click(self, event: events.Click) -> None:
        index = event.y + self.scroll_offset.y
        if 0 <= index < len(self._tasks):
            self.highlighted = index
            if event.chain == 2:
                self.action_select()
