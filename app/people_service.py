"""What the people screen and `aurora people` show: everyone, ranked by engagement, with their history."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aurora.app.entities import parse_time
from aurora.app.errors import NotFoundError
from aurora.app.people import Engagement, engagement
from aurora.app.store import Store

OUTBOUND = frozenset({"mail_out"})


@dataclass(frozen=True)
class PersonSummary:
    id: str
    name: str
    emails: list[str]
    org: str
    job_title: str
    vip: bool
    engagement: Engagement

    @property
    def label(self) -> str:
        return self.name or (self.emails[0] if self.emails else "(unnamed)")


@dataclass(frozen=True)
class InteractionView:
    kind: str
    occurred_at: datetime | None
    item_id: str
    item_kind: str
    title: str
    source: str


class PeopleService:
    def __init__(self, store: Store, now: Callable[[], datetime]) -> None:
        self._store = store
        self._now = now

    def ranked(self, limit: int | None = None) -> list[PersonSummary]:
        """Everyone, most engaged first (ties by name)."""
        people = self._store.query(
            "SELECT id, name, emails, org, job_title, vip FROM people WHERE deleted = 0"
        )
        history: dict[str, list[tuple[datetime | None, str]]] = defaultdict(list)
        for person_id, when, kind in self._store.query(
            "SELECT person_id, occurred_at, kind FROM interactions WHERE deleted = 0"
        ):
            history[str(person_id)].append((parse_time(when), str(kind)))
        now = self._now()
        ranked = [
            PersonSummary(
                id=str(pid), name=str(name), emails=list(json.loads(emails)), org=str(org),
                job_title=str(job), vip=bool(vip),
                engagement=engagement(history.get(str(pid), []), now, outbound=OUTBOUND),
            )
            for pid, name, emails, org, job, vip in people
        ]  # fmt: skip
        ranked.sort(key=lambda p: (-p.engagement.score, p.label.casefold()))
        return ranked[:limit] if limit is not None else ranked

    def get(self, person_id: str) -> PersonSummary:
        found = [p for p in self.ranked() if p.id == person_id]
        if not found:
            raise NotFoundError(f"no person with id {person_id}; list them with `aurora people`")
        return found[0]

    def recent(self, person_id: str, limit: int = 20) -> list[InteractionView]:
        """The person's latest interactions, newest first, with what each was about."""
        rows = self._store.query(
            "SELECT i.kind, i.occurred_at, i.item_id, it.kind, it.title, it.source "
            "FROM interactions i JOIN items it ON it.id = i.item_id "
            "WHERE i.person_id = ? AND i.deleted = 0 AND it.deleted = 0 "
            "ORDER BY i.occurred_at DESC LIMIT ?",
            (person_id, limit),
        )
        return [
            InteractionView(str(k), parse_time(when), str(item), str(ik), str(title), str(src))
            for k, when, item, ik, title, src in rows
        ]
