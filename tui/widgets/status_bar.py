"""The status bar: workspace, connection, pending changes, counts."""

from __future__ import annotations

from rich.markup import escape
from textual.widgets import Static

from aurora.app.workspace import WorkspaceStatus


def status_text(status: WorkspaceStatus, extra: str = "") -> str:
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
    if status.index_queued:
        parts.append(f"indexing {status.index_queued}")
    if extra:
        parts.append(escape(extra))
    return "  ·  ".join(parts)


class StatusBar(Static):
    """One line at the bottom of each screen."""

    def show(self, status: WorkspaceStatus, extra: str = "") -> None:
        self.update(status_text(status, extra), layout=False)  # one fixed line: no layout pass
