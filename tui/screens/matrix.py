"""The main screen: the Eisenhower matrix, four quadrants of tasks, driven from the keyboard.

Quadrants are laid out as the matrix is drawn everywhere:

    1 Do first   | 2 Schedule
    3 Delegate   | 4 Eliminate
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from aurora.app import quickadd
from aurora.app.tasks import TaskFilter
from aurora.app.workspace import MatrixPage, Workspace, WorkspaceStatus
from aurora.schema import Quadrant, Task, TaskStatus
from aurora.tui.app import AuroraApp
from aurora.tui.widgets.filter_bar import FilterBar
from aurora.tui.widgets.quadrant import QuadrantPanel
from aurora.tui.widgets.status_bar import StatusBar
from aurora.tui.widgets.task_list import TaskList

_EMBED_AFTER_S = 3.0
"""The embedding model loads this long after the first paint, not in the way of it."""
_RESCORE_EVERY_S = 60
"""How often due dates are re-read against the clock: quadrants follow, and "today" turns "overdue"."""


def _cell(q: Quadrant) -> tuple[int, int]:
    return (q.value - 1) // 2, (q.value - 1) % 2


def neighbour(q: Quadrant, d_row: int, d_col: int) -> Quadrant | None:
    """The quadrant next to `q` in a direction, or None at the matrix's edge."""
    row, col = _cell(q)
    row, col = row + d_row, col + d_col
    if not (0 <= row <= 1 and 0 <= col <= 1):
        return None
    return Quadrant(row * 2 + col + 1)


class MatrixScreen(Screen[None]):
    TITLE = "Matrix"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("x,space", "toggle_done", "Done", key_display="x"),
        Binding("d", "delete", "Delete"),
        Binding("u", "undo", "Undo"),
        Binding("U,ctrl+y", "redo", "Redo", key_display="U"),
        Binding("f", "filter", "Filter"),
        Binding("full_stop", "toggle_show_done", "Show done", key_display="."),
        Binding("n", "notes", "Notes"),
        Binding("p", "people", "People"),
        Binding("c", "app.chat", "Chat"),
        Binding("1", "move(1)", "Move to Do first", show=False),
        Binding("2", "move(2)", "Move to Schedule", show=False),
        Binding("3", "move(3)", "Move to Delegate", show=False),
        Binding("4", "move(4)", "Move to Eliminate", show=False),
        Binding("0", "auto_place", "Let scores place the task", show=False),
        Binding("shift+left,H", "shift(0,-1)", "Move task one quadrant left", show=False),
        Binding("shift+right,L", "shift(0,1)", "Move task one quadrant right", show=False),
        Binding("shift+up,K", "shift(-1,0)", "Move task one quadrant up", show=False),
        Binding("shift+down,J", "shift(1,0)", "Move task one quadrant down", show=False),
        Binding("left_square_bracket,ctrl+up", "reorder(-1)", "Move task up the list", show=False),
        Binding("right_square_bracket,ctrl+down", "reorder(1)", "Move task down the list", show=False),
        Binding("left,h", "focus_side(0,-1)", "Focus quadrant to the left", show=False),
        Binding("right,l", "focus_side(0,1)", "Focus quadrant to the right", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._query = ""
        self._show_done = False
        self._focus_before_filter: TaskList | None = None
        self._generation = 0
        """Bumped by every reload, so a slow read from an older one is never shown over a newer."""

    @property
    def aurora(self) -> AuroraApp:
        assert isinstance(self.app, AuroraApp)
        return self.app

    @property
    def ws(self) -> Workspace:
        return self.aurora.workspace

    def compose(self) -> ComposeResult:
        yield Static("[b]Aurora[/b]  priority matrix", id="header")
        yield FilterBar(placeholder="filter: words and #tags; enter keeps, escape clears", id="filter")
        with Grid(id="matrix"):
            for q in Quadrant:
                yield QuadrantPanel(q)
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self._show_done = self.ws.settings.show_done
        self.query_one(FilterBar).display = False
        self.panel(Quadrant.DO_FIRST).task_list.focus()
        # Paint the matrix first; re-placing tasks whose due dates drew near, and warming the date
        # parser for quick-add, can wait until the person sees their tasks.
        self.reload(then=self._after_first_paint)
        self.set_interval(_RESCORE_EVERY_S, self._rescore)

    def on_screen_resume(self) -> None:
        """Back from another screen (chat, notes, people): what was done there may have queued changes."""
        if self.is_mounted:
            self._refresh_status()

    def _after_first_paint(self) -> None:
        self._rescore()
        self.aurora.background(quickadd.warm_up)
        self.set_timer(_EMBED_AFTER_S, self.aurora.start_embedding)
        self.aurora.start_sync()

    def refresh_after_sync(self, changed: bool) -> None:
        """A sync round finished: the status bar's sync words have changed, and with `changed`, what other
        devices changed may be on screen (the reload refreshes the status bar too)."""
        if changed:
            self.reload(keep=self.focused_panel().task_list.current_task_id)
        else:
            self._refresh_status()

    def _rescore(self) -> None:
        def done(moved: int) -> None:
            if moved:
                self.reload(keep=self.focused_panel().task_list.current_task_id)
            else:
                now = self.ws.now()
                for panel in self.query(QuadrantPanel):
                    panel.task_list.set_now(now)

        self.aurora.background(self.ws.tasks.rescore, done)

    # Showing ----------------------------------------------------------------------------------------------

    def panel(self, q: Quadrant) -> QuadrantPanel:
        return self.query_one(f"#q{q.value}", QuadrantPanel)

    def focused_panel(self) -> QuadrantPanel:
        focused = self.focused
        if isinstance(focused, TaskList) and isinstance(focused.parent, QuadrantPanel):
            return focused.parent
        return self.panel(Quadrant.DO_FIRST)

    def current_task(self) -> Task | None:
        panel = self.focused_panel()
        task_id = panel.task_list.current_task_id
        return next((t for t in panel.tasks if t.id == task_id), None)

    def reload(self, keep: str | None = None, then: Callable[[], None] | None = None) -> None:
        """Read the matrix afresh (in the background) and show it: the top of each quadrant first, so the
        screen fills at once however many tasks there are, then the rest."""
        flt = TaskFilter.parse(self._query, self._show_done)
        self._generation += 1
        generation = self._generation

        def show_page(page: MatrixPage) -> None:
            if generation != self._generation:
                return  # a newer reload is on its way
            now = self.ws.now()
            for q in Quadrant:
                self.panel(q).show(page.tasks[q], now, keep, total=page.totals[q])
            self._show_status(page.status)

            def after_paint() -> None:
                # Only once this frame is on screen: background work holds the GIL and would delay it.
                if not page.complete:
                    self.aurora.background(
                        lambda: self.ws.tasks.list(flt), lambda tasks: self._show_rest(tasks, generation)
                    )
                if then is not None:
                    then()

            self.call_after_refresh(after_paint)

        prefetched, self.aurora.first_page = self.aurora.first_page, None
        if prefetched is not None and not self._query:
            self.aurora.when_done(prefetched, show_page)
        else:
            self.aurora.background(lambda: self.ws.matrix_page(flt), show_page)

    def _show_rest(self, tasks: list[Task], generation: int) -> None:
        if generation != self._generation:
            return
        by_quadrant: dict[Quadrant, list[Task]] = {q: [] for q in Quadrant}
        for task in tasks:
            by_quadrant[task.quadrant].append(task)
        now = self.ws.now()
        for q in Quadrant:
            panel = self.panel(q)
            panel.show(by_quadrant[q], now, keep=panel.task_list.current_task_id, total=len(by_quadrant[q]))

    def _show_status(self, status: WorkspaceStatus) -> None:
        extra = []
        if self._query:
            extra.append(f"filter: {self._query}")
        if self._show_done:
            extra.append("showing done")
        self.query_one(StatusBar).show(status, "  ".join(extra))

    def _refresh_status(self) -> None:
        self.aurora.background(self.ws.status, self._show_status)

    def _place(self, task: Task | None, removed: str | None = None, focus: bool = False) -> None:
        """Show one changed task without re-reading the matrix (what keeps a move under two frames)."""
        task_id = task.id if task else removed
        now = self.ws.now()
        for panel in self.query(QuadrantPanel):
            if any(t.id == task_id for t in panel.tasks):
                panel.show([t for t in panel.tasks if t.id != task_id], now)
        visible = task is not None and (self._show_done or task.status is TaskStatus.OPEN)
        if task is not None and visible:
            if self._query:
                self.reload(keep=task.id)  # whether it still matches is the filter's business
                return
            target = self.panel(task.quadrant)
            tasks = sorted([*target.tasks, task], key=lambda t: (t.position, t.id))
            target.show(tasks, now, keep=task.id)
            if focus:
                target.task_list.focus()
        self._refresh_status()

    # Actions ----------------------------------------------------------------------------------------------

    def action_add(self) -> None:
        # The forms (TextArea and friends) load on first use, not before the matrix's first paint.
        from aurora.tui.screens.task_forms import QuickAddModal

        def added(text: str | None) -> None:
            if text:
                self.aurora.background(
                    lambda: self.ws.tasks.add_quick(text), lambda task: self._place(task, focus=True)
                )

        self.app.push_screen(QuickAddModal(), added)

    def action_edit(self) -> None:
        task = self.current_task()
        if task is None:
            return
        from aurora.tui.screens.task_forms import TaskEdit, TaskFormModal

        def edited(edit: TaskEdit | None) -> None:
            if edit is not None:
                self.aurora.background(
                    lambda: self.ws.tasks.update(task.id, **edit.changes), lambda t: self._place(t)
                )

        self.app.push_screen(TaskFormModal(task), edited)

    @on(TaskList.Selected)
    def _selected(self, event: TaskList.Selected) -> None:
        event.stop()
        self.action_edit()

    def action_toggle_done(self) -> None:
        task = self.current_task()
        if task is not None:
            self.aurora.background(lambda: self.ws.tasks.toggle_done(task.id), self._place)

    def action_delete(self) -> None:
        task = self.current_task()
        if task is not None:

            def deleted(title: str) -> None:
                self._place(None, removed=task.id)
                self.notify(f"Deleted “{escape(title)}”. Press u to undo.", timeout=4)

            self.aurora.background(lambda: self.ws.tasks.delete(task.id), deleted)

    def action_move(self, quadrant: int) -> None:
        task = self.current_task()
        if task is not None:
            self.aurora.background(lambda: self.ws.tasks.move(task.id, Quadrant(quadrant)), self._place)

    def action_shift(self, d_row: int, d_col: int) -> None:
        task = self.current_task()
        if task is None:
            return
        target = neighbour(task.quadrant, d_row, d_col)
        if target is not None:
            self.action_move(target.value)

    def action_auto_place(self) -> None:
        task = self.current_task()
        if task is not None:
            self.aurora.background(lambda: self.ws.tasks.place_automatically(task.id), self._place)

    def action_reorder(self, offset: int) -> None:
        task = self.current_task()
        if task is not None:
            self.aurora.background(lambda: self.ws.tasks.reorder(task.id, offset), self._place)

    def action_undo(self) -> None:
        self._history(self.ws.tasks.undo, "Undid", "Nothing to undo")

    def action_redo(self) -> None:
        self._history(self.ws.tasks.redo, "Redid", "Nothing to redo")

    def _history(self, step: object, verb: str, empty: str) -> None:
        def done(description: str | None) -> None:
            self.notify(f"{verb} {escape(description)}" if description else empty, timeout=3)
            self.reload(keep=self.focused_panel().task_list.current_task_id)

        self.aurora.background(step, done)  # type: ignore[arg-type]

    def action_filter(self) -> None:
        self._focus_before_filter = self.focused_panel().task_list
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
        (self._focus_before_filter or self.panel(Quadrant.DO_FIRST).task_list).focus()

    def action_toggle_show_done(self) -> None:
        self._show_done = not self._show_done
        self.reload(keep=self.focused_panel().task_list.current_task_id)

    def action_focus_side(self, d_row: int, d_col: int) -> None:
        target = neighbour(self.focused_panel().quadrant, d_row, d_col)
        if target is not None:
            self.panel(target).task_list.focus()

    @on(TaskList.EdgeReached)
    def _edge(self, event: TaskList.EdgeReached) -> None:
        panel = event.task_list.parent
        if not isinstance(panel, QuadrantPanel):
            return
        here = panel.quadrant
        target = neighbour(here, 1 if event.direction == "down" else -1, 0)
        if target is not None:
            task_list = self.panel(target).task_list
            task_list.focus()
            if task_list.option_count:
                task_list.highlighted = 0 if event.direction == "down" else task_list.option_count - 1

    def action_people(self) -> None:
        from aurora.tui.screens.people import PeopleScreen

        self.app.push_screen(PeopleScreen())

    def action_notes(self) -> None:
        from aurora.tui.screens.notes import NotesScreen

        self.app.push_screen(NotesScreen(), lambda _: self.reload())
