"""Priority scoring: where a task belongs on the matrix. Pure functions, no I/O.

Urgency comes from the due date and the `!urgent` flag; importance from the `!important` flag and tags
the person has marked important. A task's quadrant follows its scores until the person places it by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from aurora.schema import Quadrant

URGENT_AT = 0.5
IMPORTANT_AT = 0.5
_TAG_IMPORTANCE = 0.7


@dataclass(frozen=True)
class Scores:
    urgency: float
    importance: float

    @property
    def quadrant(self) -> Quadrant:
        urgent = self.urgency >= URGENT_AT
        important = self.importance >= IMPORTANT_AT
        if urgent and important:
            return Quadrant.DO_FIRST
        if important:
            return Quadrant.SCHEDULE
        if urgent:
            return Quadrant.DELEGATE
        return Quadrant.ELIMINATE


def urgency(due: datetime | None, urgent_flag: bool, now: datetime, urgent_within_days: float) -> float:
    """1.0 when flagged or overdue; otherwise rising linearly to 1.0 as the due date nears.

    A task due exactly `urgent_within_days` from now scores 0.5 (the urgency line); one due twice that far
    away or more scores 0.
    """
    if urgent_flag:
        return 1.0
    if due is None:
        return 0.0
    hours_left = (due - now).total_seconds() / 3600
    if hours_left <= 0:
        return 1.0
    horizon = 2 * urgent_within_days * 24
    return round(max(0.0, 1.0 - hours_left / horizon), 4)


def importance(important_flag: bool, tags: Iterable[str], important_tags: Iterable[str]) -> float:
    if important_flag:
        return 1.0
    if set(tags) & {t.lower() for t in important_tags}:
        return _TAG_IMPORTANCE
    return 0.0


def score(
    *,
    due: datetime | None,
    urgent: bool,
    important: bool,
    tags: Iterable[str],
    now: datetime,
    urgent_within_days: float,
    important_tags: Iterable[str],
) -> Scores:
    return Scores(
        urgency(due, urgent, now, urgent_within_days),
        importance(important, tags, important_tags),
    )
