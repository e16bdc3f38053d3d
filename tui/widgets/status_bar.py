"""The status bar: workspace, connection, pending changes, counts, and Robbie's mood."""

from __future__ import annotations

from rich.markup import escape
from textual.widgets import Static

from aurora.app.mood import Mood
from aurora.app.workspace import WorkspaceStatus

MOOD_DETAILS = 2
"""How many of the mood's reasons the bar names ("2 overdue, 3 to do first"); the rest stay in `/`."""


def mood_text(mood: Mood | None) -> str:
    """A few words: "Robbie: calm", "Robbie: stretched (3 overdue, 2 to do first)"; "" before the first."""
    if mood is None:
        return ""
    reasons = [p for p in mood.status.split(" · ")[1:] if p != "nothing pressing"][:MOOD_DETAILS]
    return f"Robbie: {mood.label}" + (f" ({', '.join(reasons)})" if reasons else "")


def status_text(status: WorkspaceStatus, extra: str = "", mood: Mood | None = None) -> str:
    connection = "[green]online[/]" if status.online else "[yellow]offline[/]"
    pending = status.pending_ops
    if status.sync is not None:  # paired: the sync loop's own words ("node unreachable, 3 changes waiting")
        changes = escape(status.sync)
    else:
        changes = (
            f"{pending} change{'s' if pending != 1 else ''} waiting to sync" if pending else "all synced"
        )
    parts = [
        f"[b]{escape(status.name)}[/b]",
        connection,
        changes,
        f"{status.open_tasks} open task{'s' if status.open_tasks != 1 else ''}",
        f"{status.notes} note{'s' if status.notes != 1 else ''}",
    ]
    if mood is not None:
        parts.append(escape(mood_text(mood)))
    if status.index_queued:
        parts.append(f"indexing {status.index_queued}")
    if extra:
        parts.append(escape(extra))
    return "  ·  ".join(parts)


class StatusBar(Static):
    """One line at the bottom of each screen. The screen shows the workspace's status; the app passes the
    mood down whenever it is derived again (`show_mood`), and a bar mounted later starts from the app's
    latest (`AuroraApp.mood`)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._status: WorkspaceStatus | None = None
        self._extra = ""
        self.mood: Mood | None = None

    def on_mount(self) -> None:
        latest = getattr(self.app, "mood", None)
        if isinstance(latest, Mood):
            self.mood = latest

    def show(self, status: WorkspaceStatus, extra: str = "") -> None:
        self._status, self._extra = status, extra
        self.update(status_text(status, extra, self.mood), layout=False)  # one fixed line: no layout pass

    def show_mood(self, mood: Mood) -> None:
        self.mood = mood
        if self._status is not None:
            self.update(status_text(self._status, self._extra, mood), layout=False)
