"""Mood on the laptop: the pure rules of `aurora.app.mood`, fed from the workspace and the background sync.

`derive_mood(Workload) -> Mood` and its rules live in `aurora.app.mood` (pure, standard library only), which
the node imports too; they are re-exported here, where the assistant and the TUI have always found them.
`workload_from(workspace, now, sync_status)` gathers the inputs through the workspace's services;
`mood_now(workspace)` is what the TUI derives every 20 s, with the person's recent messages from the
conversations (`recent_user_messages`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aurora.app.mood import (
    DEFAULT_HORIZON,
    LEVELS,
    MAX_STRESS,
    MOOD_EVERY,
    NEGATIVE_WORDS,
    POSITIVE_WORDS,
    RECENT_CONVERSATION,
    RECENT_MESSAGES,
    SYNC_WORRY_PENDING,
    THRESHOLDS,
    TONES,
    Mood,
    MoodLabel,
    SyncHealth,
    Workload,
    conversation_stress,
    derive_mood,
    load_score,
    sync_worry,
)
from aurora.schema import Quadrant

if TYPE_CHECKING:
    from aurora.app.syncer import LiveStatus
    from aurora.app.workspace import Workspace

__all__ = [
    "DEFAULT_HORIZON",
    "LEVELS",
    "MAX_STRESS",
    "MOOD_EVERY",
    "NEGATIVE_WORDS",
    "POSITIVE_WORDS",
    "RECENT_CONVERSATION",
    "RECENT_MESSAGES",
    "SYNC_WORRY_PENDING",
    "THRESHOLDS",
    "TONES",
    "Mood",
    "MoodLabel",
    "SyncHealth",
    "Workload",
    "conversation_stress",
    "derive_mood",
    "load_score",
    "mood_now",
    "recent_user_messages",
    "sync_health",
    "sync_worry",
    "upcoming_meetings",
    "workload_from",
]


def sync_health(status: LiveStatus | None) -> SyncHealth | None:
    """What the background sync reports, as the mood reads it; None when nothing syncs."""
    if status is None:
        return None
    error = status.last_error or ("sync stopped" if status.stopped else None)
    return SyncHealth(paired=True, online=status.online, pending=status.pending, error=error)


def upcoming_meetings(workspace: Workspace, now: datetime, horizon: timedelta = DEFAULT_HORIZON) -> int:
    """How many calendar events start between `now` and `now + horizon`, through the search service: every
    dated item's searchable text ends with its "When: ..." line (`chunking.when_line`), so the word "when"
    with the kind and date filters lists them. (A calendar service with an agenda query would be the
    cleaner seam; until there is one, this keeps the mood away from SQL.)"""
    hits = workspace.search.query("when", kinds=["event"], since=now, until=now + horizon, limit=100)
    return len(hits)


def workload_from(
    workspace: Workspace,
    now: datetime,
    sync_status: LiveStatus | None,
    *,
    recent_messages: Sequence[str] = (),
    horizon: timedelta = DEFAULT_HORIZON,
) -> Workload:
    """The workload now: open tasks (overdue, first quadrant), meetings soon, the person's recent messages
    to the assistant, and the sync's health."""
    overdue = do_first = 0
    for task in workspace.tasks.list():
        if task.due is not None and task.due < now:
            overdue += 1
        if task.quadrant == Quadrant.DO_FIRST:
            do_first += 1
    return Workload(
        overdue=overdue,
        do_first=do_first,
        meetings_soon=upcoming_meetings(workspace, now, horizon),
        recent_messages=tuple(recent_messages[-RECENT_MESSAGES:]),
        sync=sync_health(sync_status),
        horizon_hours=horizon.total_seconds() / 3600,
    )


def recent_user_messages(
    workspace: Workspace,
    now: datetime,
    *,
    within: timedelta = RECENT_CONVERSATION,
    limit: int = RECENT_MESSAGES,
) -> list[str]:
    """What the person said to the assistant lately: the text of their own messages written within
    `within` of `now`, the last `limit` of them, oldest first (the same rule the node's job applies)."""
    since = now - within
    said: list[tuple[datetime, str]] = []
    chats = workspace.conversations
    for conversation in chats.recent(limit):  # the most recently used first
        if conversation.updated_at < since:
            break
        said += [
            (m.created_at, m.text)
            for m in chats.messages(conversation.id)
            if m.role == "user" and m.created_at >= since and m.text.strip()
        ]
    said.sort(key=lambda pair: pair[0])
    return [text for _, text in said[-limit:]]


def mood_now(workspace: Workspace, *, recent_messages: Sequence[str] | None = None) -> Mood:
    """The mood this moment, on the laptop: the workspace's workload, the person's recent messages to the
    assistant (read from the conversations when not given) and the background sync's health (as
    `workspace.live_status` reports it, when something syncs). What the TUI runs every `MOOD_EVERY`, on a
    worker thread: it reads the store."""
    now = workspace.now()
    live = workspace.live_status() if workspace.live_status is not None else None
    if recent_messages is None:
        recent_messages = recent_user_messages(workspace, now)
    return derive_mood(workload_from(workspace, now, live, recent_messages=recent_messages))
