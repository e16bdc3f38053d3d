"""Mood, the pure part: how the person's day looks, in a word, for the status bar and the assistant's tone.

`derive_mood(Workload) -> Mood` is pure. The workload's weight is a score:

    2 per overdue task + 1 per do-first task + 1.5 per meeting within the horizon + conversation stress

where conversation stress (0 to 3) counts worried words in the person's last few messages ("overwhelmed",
"late", "stuck"...) less half the relaxed ones ("thanks", "done"...). The score sets the level: under 2
calm, under 5 focused, under 9 busy, else stretched. Each input only ever adds weight, so more overdue
tasks, more do-first tasks, more meetings or more worried words never make the mood calmer (property
tests hold it to that).

Sync is apart from the weight: when a paired workspace's sync is failing, or it is offline with
`SYNC_WORRY_PENDING` or more changes waiting, the label is "worried about sync", unless the person is
already stretched (their own load matters more to the tone than the sync's).

What feeds it, on each side (the same rules, so the node's mood and the laptop's agree on the same data):

- overdue: open, not deleted tasks whose due time has passed;
- do first: open, not deleted tasks in the first quadrant;
- meetings soon: calendar events (items of kind "event") starting within `DEFAULT_HORIZON`;
- recent messages: the person's own last `RECENT_MESSAGES` messages to the assistant, within
  `RECENT_CONVERSATION`;
- sync: the laptop's background sync (`aurora.app.assistant.mood.sync_health`); None on the node, which
  is the far end of every sync.

This module imports nothing but the standard library, so the node imports it (its every-20-s job,
`aurora.node.scheduler`) without loading the laptop's store; `aurora.app.assistant.mood` gathers the
laptop's inputs through the workspace's services.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

MoodLabel = Literal["calm", "focused", "busy", "stretched", "worried about sync"]
LEVELS: tuple[MoodLabel, ...] = ("calm", "focused", "busy", "stretched")
THRESHOLDS = (2.0, 5.0, 9.0)
"""Score below THRESHOLDS[0]: calm; below [1]: focused; below [2]: busy; else stretched."""
RECENT_MESSAGES = 5
MAX_STRESS = 3.0
SYNC_WORRY_PENDING = 20
DEFAULT_HORIZON = timedelta(hours=3)
"""How far ahead a meeting counts as soon."""
RECENT_CONVERSATION = timedelta(hours=12)
"""How far back the person's messages still set the tone (yesterday's worries are not today's)."""
MOOD_EVERY = timedelta(seconds=20)
"""How often the node and the TUI derive the mood again."""

NEGATIVE_WORDS = frozenset(
    "stressed stress stressful overwhelmed overwhelming tired exhausted late behind worried worry anxious "
    "panic panicking urgent asap help ugh frustrated frustrating angry annoyed stuck swamped drowning "
    "deadline deadlines sorry cannot can't cant fail failed failing problem problems broken crisis "
    "impossible terrible awful hate burnout burned burnt nightmare chaos mess overdue missed".split()
)
POSITIVE_WORDS = frozenset(
    "thanks thank great good done finished happy calm relaxed awesome nice love excellent easy perfect "
    "cool glad fine sorted solved progress ahead smooth".split()
)
_WORD = re.compile(r"[a-z']+")

TONES: dict[MoodLabel, str] = {
    "calm": "They have room today: be warm and unhurried.",
    "focused": "They have a few things on: keep answers short and practical.",
    "busy": "They are busy: lead with the answer, at most three short points.",
    "stretched": "They are stretched: be brief and kind, suggest one next step, add no new commitments.",
    "worried about sync": "Their changes are not reaching their node: mention it only where it matters.",
}


@dataclass(frozen=True)
class SyncHealth:
    paired: bool
    online: bool
    pending: int
    """Changes made here, not yet on the node."""
    error: str | None = None
    """The last sync problem, in words; None when the last round worked."""


@dataclass(frozen=True)
class Workload:
    overdue: int = 0
    """Open tasks whose due time has passed."""
    do_first: int = 0
    """Open tasks in the first quadrant (urgent and important)."""
    meetings_soon: int = 0
    """Calendar events starting within `horizon_hours`."""
    recent_messages: tuple[str, ...] = ()
    """What the person said to the assistant lately, oldest first (the last RECENT_MESSAGES count)."""
    sync: SyncHealth | None = None
    """None: not paired (nothing to worry about)."""
    horizon_hours: float = DEFAULT_HORIZON.total_seconds() / 3600


@dataclass(frozen=True)
class Mood:
    label: MoodLabel
    level: int
    """0 (calm) to 3 (stretched): the workload's weight, sync aside."""
    score: float
    status: str
    """One line for the status bar: "busy · 2 overdue · 3 to do first · 1 meeting in 3 h"."""
    tone: str
    """A hint for the assistant's prompt."""


def conversation_stress(messages: Sequence[str]) -> float:
    """0 (relaxed or nothing said) to MAX_STRESS, from the last RECENT_MESSAGES messages."""
    negative = positive = 0
    for message in messages[-RECENT_MESSAGES:]:
        for word in _WORD.findall(message.lower().replace("\u2019", "'")):
            negative += word in NEGATIVE_WORDS
            positive += word in POSITIVE_WORDS
    return max(0.0, min(MAX_STRESS, negative - 0.5 * positive))


def load_score(w: Workload) -> float:
    return (
        2.0 * max(0, w.overdue)
        + 1.0 * max(0, w.do_first)
        + 1.5 * max(0, w.meetings_soon)
        + conversation_stress(w.recent_messages)
    )


def sync_worry(sync: SyncHealth | None) -> bool:
    if sync is None or not sync.paired:
        return False
    return bool(sync.error) or (not sync.online and sync.pending >= SYNC_WORRY_PENDING)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def derive_mood(w: Workload) -> Mood:
    """The mood for a workload (pure)."""
    score = load_score(w)
    level = sum(score >= t for t in THRESHOLDS)
    label: MoodLabel = LEVELS[level]
    worried = sync_worry(w.sync)
    if worried and level < len(LEVELS) - 1:
        label = "worried about sync"
    parts: list[str] = []
    if w.overdue > 0:
        parts.append(f"{w.overdue} overdue")
    if w.do_first > 0:
        parts.append(f"{w.do_first} to do first")
    if w.meetings_soon > 0:
        parts.append(f"{_plural(w.meetings_soon, 'meeting')} in {w.horizon_hours:g} h")
    if worried and w.sync is not None:
        problem = "sync failing" if w.sync.error else "offline"
        parts.append(f"{problem}, {_plural(w.sync.pending, 'change')} waiting")
    status = " · ".join([label, *parts]) if parts else f"{label} · nothing pressing"
    return Mood(label=label, level=level, score=score, status=status, tone=TONES[label])
