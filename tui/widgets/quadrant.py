"""One cell of the matrix: a title with its count, and the task list."""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from aurora.schema import Quadrant, Task
from aurora.tui.widgets.task_list import TaskList


class QuadrantPanel(Vertical):
    """A quadrant of the Eisenhower matrix."""

    def __init__(self, quadrant: Quadrant) -> None:
        super().__init__(id=f"q{quadrant.value}", classes="quadrant")
        self.quadrant = quadrant
        self.tasks: list[Task] = []
        self.total = 0
        """How many tasks match in this quadrant; more than `len(tasks)` while the rest is loading."""

    def compose(self) -> ComposeResult:
        yield Static(self._title(0), classes="quadrant-title")
        yield TaskList(id=f"list{self.quadrant.value}")

    @property
    def task_list(self) -> TaskList:
        return self.query_one(TaskList)

    def show(
        self, tasks: list[Task], now: datetime, keep: str | None = None, total: int | None = None
    ) -> None:
        """Show `tasks`; `total` when they are only the first page of the quadrant."""
        if total is None:
            loading = self.total > len(self.tasks)
            total = self.total + len(tasks) - len(self.tasks) if loading else len(tasks)
        self.tasks = tasks
        self.total = total
        # The title is one line of fixed size: no layout pass needed (a layout restyles the whole screen).
        self.query_one(".quadrant-title", Static).update(self._title(total), layout=False)
        self.task_list.show_tasks(tasks, now, keep)

    def _title(self, count: int) -> str:
        q = self.quadrant
        return f"[b]{q.value} {q.label}[/b] [dim]({q.hint})[/dim]  [b]{count}[/b]"
