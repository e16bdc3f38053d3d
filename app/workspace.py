"""A workspace: one database file, opened, with the services the UI and the CLI call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aurora.app.config import Settings
from aurora.app.notes import NoteService
from aurora.app.paths import workspace_path
from aurora.app.store import Store
from aurora.app.tasks import ScoringRules, TaskFilter, TaskService
from aurora.schema import Quadrant, Task

if TYPE_CHECKING:
    from aurora.app.conversations import ConversationService
    from aurora.app.people_service import PeopleService
    from aurora.app.search.keyword import Hit
    from aurora.app.search.service import SearchService
    from aurora.app.syncer import LiveStatus


def _now() -> datetime:
    return datetime.now().astimezone()


FIRST_PAGE = 200
"""Tasks per quadrant read before the matrix's first paint: more than any terminal shows."""


@dataclass(frozen=True)
class WorkspaceStatus:
    """What the status bar shows."""

    name: str
    pending_ops: int
    online: bool
    open_tasks: int
    notes: int
    per_quadrant: dict[Quadrant, int]
    index_queued: int = 0
    """Changes not yet in the search index."""
    unembedded: int = 0
    """Indexed chunks still waiting for their vectors."""
    sync: str | None = None
    """Sync in words ("synced", "node unreachable, 42 changes waiting"); None when not paired."""


@dataclass(frozen=True)
class MatrixPage:
    """What the matrix shows first: the top of each quadrant, each quadrant's count, the status bar."""

    tasks: dict[Quadrant, list[Task]]
    totals: dict[Quadrant, int]
    status: WorkspaceStatus

    @property
    def complete(self) -> bool:
        return all(self.totals[q] == len(self.tasks[q]) for q in Quadrant)


class Workspace:
    """The open workspace. Thread-safe: the TUI calls it from worker threads."""

    def __init__(self, store: Store, settings: Settings, now: Callable[[], datetime] = _now) -> None:
        self.store = store
        self.settings = settings
        self.now = now
        rules = ScoringRules(settings.urgent_within_days, tuple(settings.important_tags))
        self.tasks = TaskService(store, rules, now)
        self.notes = NoteService(store, now)
        self._people: PeopleService | None = None
        self._search: SearchService | None = None
        self._conversations: ConversationService | None = None
        self.live_status: Callable[[], LiveStatus | None] | None = None
        """Set by whoever runs the background sync (the TUI): the status bar reads it."""

    # People and search load on first use: their modules are not needed for the matrix's first paint.
    @property
    def people(self) -> PeopleService:
        if self._people is None:
            from aurora.app.people_service import PeopleService

            self._people = PeopleService(self.store, self.now)
        return self._people

    @property
    def search(self) -> SearchService:
        if self._search is None:
            from aurora.app.search.service import SearchService

            self._search = SearchService(self.store, self.settings.embedding_model)
        return self._search

    @property
    def conversations(self) -> ConversationService:
        if self._conversations is None:
            from aurora.app.conversations import ConversationService

            self._conversations = ConversationService(self.store, self.now)
        return self._conversations

    @classmethod
    def open(cls, settings: Settings, now: Callable[[], datetime] = _now) -> Workspace:
        path = workspace_path(settings.workspace, settings.data_dir)
        return cls(Store.open(path, busy_timeout_ms=settings.busy_timeout_ms), settings, now)

    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def name(self) -> str:
        return self.path.stem

    def matrix_page(self, flt: TaskFilter | None = None, per_quadrant: int = FIRST_PAGE) -> MatrixPage:
        page, totals = self.tasks.first_page(
            flt or TaskFilter(show_done=self.settings.show_done), per_quadrant
        )
        return MatrixPage(page, totals, self.status())

    def status(self) -> WorkspaceStatus:
        counts = self.tasks.counts()
        notes = self.store.query("SELECT count(*) FROM notes WHERE deleted = 0")[0][0]
        queued, unembedded = self.store.query(
            "SELECT (SELECT count(*) FROM search_queue), "
            "(SELECT count(*) FROM chunks WHERE embedded_model IS NULL)"
        )[0]
        live = self.live_status() if self.live_status is not None else None
        return WorkspaceStatus(
            name=self.name,
            pending_ops=self.store.pending_ops(),
            online=bool(live and live.online),
            open_tasks=sum(counts.values()),
            notes=int(notes),
            per_quadrant=counts,
            index_queued=int(queued),
            unembedded=int(unembedded),
            sync=live.describe() if live is not None else None,
        )

    def task_from_result(self, hit: Hit) -> Task:
        """A task made from a search result: its title (a mail or message: "Follow up: ..."), a note
        saying where it came from, and, for an event still ahead, a due date at its start."""
        from aurora.app.search.keyword import MARK_END, MARK_START

        title = " ".join((hit.title or "").split())[:380]
        due: datetime | None = None
        item_kind = ""
        if hit.kind == "item":
            rows = self.store.query("SELECT kind, occurred_at FROM items WHERE id = ?", (hit.entity_id,))
            if rows:
                item_kind = str(rows[0][0])
                when = datetime.fromisoformat(str(rows[0][1])) if rows[0][1] else None
                if item_kind == "event" and when is not None and when > self.now():
                    due = when
        if item_kind in {"mail", "message", "transcript"} or not title:
            title = f"Follow up: {title or 'search result'}"
        snippet = " ".join(hit.snippet.replace(MARK_START, "").replace(MARK_END, "").split())
        notes = f"From {item_kind or hit.kind} {hit.entity_id}: {snippet}"[:2000]
        return self.tasks.add(title, notes=notes, due=due, source=f"search:{item_kind or hit.kind}")

    def close(self) -> None:
        self.store.close()
