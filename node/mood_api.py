"""`GET /v1/mood`: Robbie's mood as the node last derived it, and the node's scheduler that derives it.

The router brings its own lifespan, which FastAPI runs inside the app's (after the database is open,
before it closes): it starts `aurora.node.scheduler.NodeScheduler` on the server's event loop and stops
it at shutdown. The route is authenticated like every device route (the app passes its own dependency in,
so revocation counts from the next request here too). Before the first scheduled run has finished, the
route derives the mood itself rather than answer with nothing.
"""

# No `from __future__ import annotations` here: FastAPI reads the route signatures' annotations at run time.
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel

from aurora.app.mood import MoodLabel
from aurora.node.scheduler import MoodReading, NodeScheduler


class MoodWorkload(BaseModel):
    overdue: int
    do_first: int
    meetings_soon: int
    horizon_hours: float
    recent_messages: int
    """How many of the person's recent messages set the tone (their text stays on the node)."""


class MoodResponse(BaseModel):
    label: MoodLabel
    level: int
    """0 (calm) to 3 (stretched): the workload's weight."""
    score: float
    status: str
    """One line: "busy · 2 overdue · 3 to do first · 1 meeting in 3 h"."""
    tone: str
    """The hint the assistant's prompt gets."""
    at: datetime
    """When the workload was read."""
    workload: MoodWorkload

    @classmethod
    def of(cls, reading: MoodReading) -> "MoodResponse":
        mood, w = reading.mood, reading.workload
        return cls(
            label=mood.label,
            level=mood.level,
            score=mood.score,
            status=mood.status,
            tone=mood.tone,
            at=reading.at,
            workload=MoodWorkload(
                overdue=w.overdue,
                do_first=w.do_first,
                meetings_soon=w.meetings_soon,
                horizon_hours=w.horizon_hours,
                recent_messages=len(w.recent_messages),
            ),
        )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    scheduler = NodeScheduler(app.state.node.db.pool)
    scheduler.start()
    app.state.scheduler = scheduler
    try:
        yield
    finally:
        await scheduler.stop()


def mood_router(device: Callable[..., Any]) -> APIRouter:
    """The mood route and the scheduler's lifespan; `device` is the app's authentication dependency."""
    router = APIRouter(lifespan=_lifespan)

    @router.get("/v1/mood", response_model=MoodResponse)
    async def mood(request: Request, device_id: Annotated[str, Depends(device)]) -> MoodResponse:
        scheduler: NodeScheduler = request.app.state.scheduler
        reading = scheduler.mood.latest or await scheduler.mood.run()
        return MoodResponse.of(reading)

    return router


__all__ = ["MoodResponse", "mood_router"]
