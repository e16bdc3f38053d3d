"""Benchmark 2: keypress to updated screen when moving a task between quadrants, with 10,000 tasks.

The real AuroraApp runs headless (`run_test`). Keys are sent the way the pilot sends them
(`driver.send_message(Key)`) but without `pilot.press`, whose two `wait_for_idle` calls sleep at least
20 ms each and would swamp the figure. A subclass of the app only adds clocks:

- `_display` is where Textual hands a composed frame to the driver (the headless driver drops it after
  it is composed); the first frame composed once the moved task is in the target quadrant ends the
  move's measurement ("updated screen");
- `on_key` at the app runs when an unhandled key has bubbled all the way up: the end of a no-op key,
  the baseline.

The waiting loop sleeps 1 ms at a time (a `sleep(0)` spin would hold the GIL against the database thread).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import RenderableType
from textual import events
from textual.pilot import Pilot
from textual.screen import Screen

from aurora.app.workspace import Workspace
from aurora.schema import Quadrant
from aurora.tui.app import AuroraApp
from aurora.tui.screens.matrix import MatrixScreen
from aurora.tui.widgets.quadrant import QuadrantPanel
from tests.bench.common import N_TASKS, Row, median, ms, percentile, ratio, settings_for

ITERATIONS = 40
NOOP_KEY = "f9"  # bound to nothing in Aurora or Textual
GOAL_MS = 33.0
POLL_S = 0.001
TIMEOUT_S = 10.0


@dataclass
class _Probe:
    """What one measurement waits for; the app's hooks fill in the times."""

    check: Callable[[], bool] | None = None  # the model shows the change
    frame_at: float | None = None
    key_at: float | None = None
    key: str | None = None


class TimedAuroraApp(AuroraApp):
    """AuroraApp with clocks on frame composition and on unhandled keys; behaviour unchanged."""

    def __init__(self, workspace: Workspace) -> None:
        super().__init__(workspace)
        self.probe = _Probe()

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        super()._display(screen, renderable)
        probe = self.probe
        if renderable is not None and probe.frame_at is None and probe.check is not None and probe.check():
            probe.frame_at = time.perf_counter()

    def on_key(self, event: events.Key) -> None:
        if self.probe.key is not None and event.key == self.probe.key and self.probe.key_at is None:
            self.probe.key_at = time.perf_counter()


@dataclass
class MoveResult:
    move_frame: list[float] = field(default_factory=list)  # key sent -> first frame showing the move
    move_model: list[float] = field(default_factory=list)  # key sent -> panels hold the moved task
    noop: list[float] = field(default_factory=list)  # no-op key sent -> its dispatch ends at the app


def _send_key(app: AuroraApp, key: str) -> None:
    """What `pilot.press` does for one key, minus its idle waits."""
    driver = app._driver
    assert driver is not None
    event = events.Key(key, None)
    event.set_sender(app)
    driver.send_message(event)


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.perf_counter() + TIMEOUT_S
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(POLL_S)


async def _settle(app: AuroraApp, pilot: Pilot[None]) -> None:
    """Let the database thread and the UI go quiet (follow-up status refreshes included)."""
    await app.workers.wait_for_complete()
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def _measure(path: Path) -> MoveResult:
    ws = Workspace.open(settings_for(path))
    result = MoveResult()
    try:
        app = TimedAuroraApp(ws)
        async with app.run_test(size=(120, 40)) as pilot:
            await _until(lambda: isinstance(app.screen, MatrixScreen), "the matrix screen")
            screen = app.screen
            assert isinstance(screen, MatrixScreen)
            panels = {q: screen.panel(q) for q in Quadrant}
            await _until(lambda: sum(len(p.tasks) for p in panels.values()) == N_TASKS, "the tasks")
            await _settle(app, pilot)

            source, target = panels[Quadrant.DO_FIRST], panels[Quadrant.SCHEDULE]
            for i in range(ITERATIONS):
                # Baseline: a key bound to nothing, through the same app in the same state.
                app.probe = _Probe(key=NOOP_KEY)
                start = time.perf_counter()
                _send_key(app, NOOP_KEY)
                await _until(lambda: app.probe.key_at is not None, "the no-op key")
                assert app.probe.key_at is not None
                result.noop.append(app.probe.key_at - start)
                await _settle(app, pilot)

                # The move: right from Do first to Schedule, then back left, the same task each time.
                here, there = (source, target) if i % 2 == 0 else (target, source)
                key = "shift+right" if i % 2 == 0 else "shift+left"
                here.task_list.focus()
                await _settle(app, pilot)
                task_id = here.task_list.current_task_id
                assert task_id is not None
                count_before = there.task_list.option_count
                after = count_before + 1

                def moved(there: QuadrantPanel = there, task_id: str = task_id, after: int = after) -> bool:
                    return there.task_list.option_count == after and any(t.id == task_id for t in there.tasks)

                app.probe = _Probe(check=moved)
                model_at: float | None = None
                start = time.perf_counter()
                _send_key(app, key)
                deadline = start + TIMEOUT_S
                while model_at is None or app.probe.frame_at is None:
                    if model_at is None and moved():
                        model_at = time.perf_counter()
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"the move {key} of {task_id} did not show")
                    await asyncio.sleep(POLL_S)
                result.move_model.append(min(model_at, app.probe.frame_at) - start)
                result.move_frame.append(app.probe.frame_at - start)
                await _settle(app, pilot)
                # Keep the moved task under the cursor in its new quadrant for the way back.
                assert there.task_list.current_task_id == task_id, "the moved task lost the cursor"
    finally:
        ws.close()
    return result


def run(workspace: Path) -> list[Row]:
    res = asyncio.run(_measure(workspace))
    p50, p95 = median(res.move_frame), percentile(res.move_frame, 95)
    m50, m95 = median(res.move_model), percentile(res.move_model, 95)
    b50, b95 = median(res.noop), percentile(res.noop, 95)
    r = ratio(p50, b50)
    met = p50 * 1000 <= GOAL_MS and p95 * 1000 <= GOAL_MS
    n = len(res.move_frame)
    print(
        f"move task key->frame, 10k tasks: p50 {ms(p50)}, p95 {ms(p95)} ({n} moves) | "
        f"baseline no-op key p50 {ms(b50)}, p95 {ms(b95)} | ratio p50 {r:.0f}x | "
        f"goal p50 and p95 <={GOAL_MS:.0f} ms | {'met' if met else 'MISSED'}"
    )
    print(f"  key->panels updated (before the frame): p50 {ms(m50)}, p95 {ms(m95)}")
    return [
        Row(
            "move task key->frame p50 / p95",
            f"{ms(p50)} / {ms(p95)}",
            f"no-op key {ms(b50)} / {ms(b95)}",
            f"{r:.0f}x",
            f"<={GOAL_MS:.0f} ms",
            met,
        )
    ]
