"""The node's periodic jobs, on APScheduler 3 (`AsyncIOScheduler`, on the server's own event loop).

Two jobs: Robbie's mood every 20 s (`MOOD_EVERY`), and the questions laptops queued, answered every
`actions_every_s` (a minute; `aurora.node.answers`, which claims each action so that two node processes
never answer the same one). `MoodJob` reads the workload from the replica
state in PostgreSQL (the `entities` table, written only by folding operations, so it holds what every
laptop holds), derives the mood with the laptop's own pure function (`aurora.app.mood.derive_mood`, so
both sides agree on the same data) and keeps the latest reading in memory for `GET /v1/mood`. Every node
process keeps its own: the job only reads, so two processes on one database need no lock between them.

What counts, as on the laptop (`aurora.app.mood`):

- overdue: tasks not deleted, open (a task whose creating operation has not arrived yet counts as open, as
  on the laptop), with a due time before now;
- do first: such tasks in quadrant 1;
- meetings soon: items of kind "event", not deleted, starting within the horizon (3 h);
- recent conversation: the text of the person's own (role "user") `message` entities created in the last
  `RECENT_CONVERSATION`, the last `RECENT_MESSAGES` of them. No rows of that kind (an older laptop, or no
  chat yet) is simply no conversation;
- sync health: None. The node is the far end of every sync; whether a laptop's changes reach it is known
  on that laptop, whose own mood adds it.

A failing read (PostgreSQL restarting) is logged and the last mood is kept; the next run tries again.
`NodeScheduler.stop()` returns once the scheduler has stopped and a run in flight has ended, so the pool
can be closed after it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from aurora.app.mood import (
    DEFAULT_HORIZON,
    MOOD_EVERY,
    RECENT_CONVERSATION,
    RECENT_MESSAGES,
    Mood,
    Workload,
    derive_mood,
)
from aurora.node.config import NodeSettings
from aurora.node.db import Pool

if TYPE_CHECKING:
    from aurora.node.answers import AnswerProcessor

log = logging.getLogger(__name__)

MOOD_JOB = "mood"
ACTIONS_JOB = "actions"

# One statement, one snapshot. Values are JSON as operations set them (times as ISO text with an offset,
# checked when pushed); the pattern guard keeps one odd value from failing the whole read.
_ISO = r"'^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}'"
_WORKLOAD_SQL = f"""
WITH open_tasks AS (
    SELECT "values" AS v FROM entities
    WHERE entity = 'task'
      AND "values" -> 'deleted' IS DISTINCT FROM 'true'::jsonb
      AND coalesce("values" ->> 'status', 'open') = 'open'
)
SELECT
    (SELECT count(*) FROM open_tasks
     WHERE CASE WHEN v ->> 'due' ~ {_ISO} THEN (v ->> 'due')::timestamptz < %(now)s ELSE false END),
    (SELECT count(*) FROM open_tasks WHERE v -> 'quadrant' = '1'::jsonb),
    (SELECT count(*) FROM entities
     WHERE entity = 'item' AND "values" ->> 'kind' = 'event'
       AND "values" -> 'deleted' IS DISTINCT FROM 'true'::jsonb
       AND CASE WHEN "values" ->> 'occurred_at' ~ {_ISO}
                THEN ("values" ->> 'occurred_at')::timestamptz >= %(now)s
                     AND ("values" ->> 'occurred_at')::timestamptz < %(until)s
                ELSE false END),
    (SELECT coalesce(json_agg(m.text ORDER BY m.at), '[]')::text FROM (
        SELECT "values" ->> 'text' AS text, ("values" ->> 'created_at')::timestamptz AS at
        FROM entities
        WHERE entity = 'message' AND "values" ->> 'role' = 'user'
          AND "values" -> 'deleted' IS DISTINCT FROM 'true'::jsonb
          AND jsonb_typeof("values" -> 'text') = 'string'
          AND CASE WHEN "values" ->> 'created_at' ~ {_ISO}
                   THEN ("values" ->> 'created_at')::timestamptz >= %(since)s ELSE false END
        ORDER BY at DESC LIMIT %(recent)s
    ) AS m)
"""


async def read_workload(pool: Pool, now: datetime, horizon: timedelta = DEFAULT_HORIZON) -> Workload:
    """The workload in the node's replica state at `now` (see the module docstring for what counts)."""
    params = {
        "now": now,
        "until": now + horizon,
        "since": now - RECENT_CONVERSATION,
        "recent": RECENT_MESSAGES,
    }
    async with pool.connection() as conn:
        cursor = await conn.execute(_WORKLOAD_SQL, params)
        row = await cursor.fetchone()
    assert row is not None  # an aggregate always answers one row
    overdue, do_first, meetings, messages = row
    return Workload(
        overdue=int(overdue),
        do_first=int(do_first),
        meetings_soon=int(meetings),
        recent_messages=tuple(json.loads(messages)),
        sync=None,
        horizon_hours=horizon.total_seconds() / 3600,
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class MoodReading:
    mood: Mood
    workload: Workload
    at: datetime
    """When the workload was read."""


class MoodJob:
    """Derives the mood from the database; `latest` is the last one that worked (None before the first)."""

    def __init__(
        self, pool: Pool, *, now: Callable[[], datetime] = _utc_now, horizon: timedelta = DEFAULT_HORIZON
    ) -> None:
        self._pool = pool
        self._now = now
        self._horizon = horizon
        self._lock = asyncio.Lock()
        self.latest: MoodReading | None = None
        self.last_error: str | None = None
        """Why the last run failed; None when it worked."""

    async def run(self) -> MoodReading:
        """Read the workload now, derive the mood, keep it; errors are the caller's."""
        async with self._lock:
            now = self._now()
            workload = await read_workload(self._pool, now, self._horizon)
            reading = MoodReading(derive_mood(workload), workload, now)
            self.latest, self.last_error = reading, None
            return reading

    async def tick(self) -> None:
        """What the scheduler runs: like `run`, but a failure is logged and the last mood kept."""
        try:
            await self.run()
        except Exception as error:
            self.last_error = str(error)[:300] or type(error).__name__
            log.warning("could not derive the mood (%s); keeping the last one", self.last_error)

    async def idle(self) -> None:
        """Return once no run is in flight."""
        async with self._lock:
            return


class NodeScheduler:
    """The node's periodic jobs on one `AsyncIOScheduler`. `start()` inside the running event loop (the
    mood job runs at once, then every `mood_every`); `await stop()` before the database closes."""

    def __init__(
        self,
        pool: Pool,
        *,
        mood_every: timedelta = MOOD_EVERY,
        now: Callable[[], datetime] = _utc_now,
        settings: NodeSettings | None = None,
        answers: AnswerProcessor | None = None,
    ) -> None:
        """`settings`: the node's (None: read from the environment now, as the server's lifespan does);
        `answers`: the processor for queued questions (None: one from `settings`)."""
        self.mood = MoodJob(pool, now=now)
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.scheduler.add_job(
            self.mood.tick,
            IntervalTrigger(seconds=mood_every.total_seconds(), timezone=UTC),
            id=MOOD_JOB,
            name="Robbie's mood",
            next_run_time=_utc_now(),
            max_instances=1,  # a slow read is never overlapped by the next one...
            coalesce=True,  # ...and runs missed meanwhile collapse into one
            misfire_grace_time=max(1, int(mood_every.total_seconds())),
        )
        settings = settings or NodeSettings()
        if answers is None:
            # Imported here: the mood job alone loads none of the laptop's assistant modules.
            from aurora.node.answers import AnswerProcessor

            answers = AnswerProcessor.from_settings(pool, settings, mood=self._mood_now)
        self.answers = answers
        self.scheduler.add_job(
            self.answers.tick,
            IntervalTrigger(seconds=settings.actions_every_s, timezone=UTC),
            id=ACTIONS_JOB,
            name="answer queued questions",
            next_run_time=_utc_now(),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(settings.actions_every_s)),
        )

    def answer_soon(self) -> None:
        """Run the queued-questions job now (a push just brought an action) rather than at its next turn."""
        if self.scheduler.running:
            self.scheduler.modify_job(ACTIONS_JOB, next_run_time=_utc_now())

    def _mood_now(self) -> Mood | None:
        return self.mood.latest.mood if self.mood.latest is not None else None

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    def start(self) -> None:
        self.scheduler.start()

    async def stop(self) -> None:
        if not self.scheduler.running:
            return
        # AsyncIOScheduler shuts down on the loop's next turn (and cancels a job in flight then): wait
        # for both, so the caller may close the pool the job reads.
        self.scheduler.shutdown(wait=False)
        while self.scheduler.running:
            await asyncio.sleep(0)
        await self.mood.idle()
        await self.answers.idle()
        await self.answers.aclose()


__all__ = ["ACTIONS_JOB", "MOOD_JOB", "MoodJob", "MoodReading", "NodeScheduler", "read_workload"]
