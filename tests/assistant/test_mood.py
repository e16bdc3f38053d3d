"""Mood: a pure function of the workload (examples and Hypothesis properties), and the workload gathered
from a real workspace."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from aurora.app.assistant import SyncHealth, Workload, derive_mood, workload_from
from aurora.app.assistant.mood import (
    LEVELS,
    NEGATIVE_WORDS,
    RECENT_MESSAGES,
    SYNC_WORRY_PENDING,
    conversation_stress,
    mood_now,
    recent_user_messages,
)
from aurora.app.config import Settings
from aurora.app.ingest.pipeline import Importer
from aurora.app.syncer import LiveStatus
from aurora.app.workspace import Workspace
from aurora.schema import Quadrant
from tests.conftest import FIXED_NOW

counts = st.integers(min_value=0, max_value=60)
words = st.sampled_from([*sorted(NEGATIVE_WORDS), "thanks", "great", "lunch", "report", "the", "ok"])
messages = st.lists(st.lists(words, max_size=12).map(" ".join), max_size=8).map(tuple)
syncs = st.one_of(
    st.none(),
    st.builds(
        SyncHealth,
        paired=st.booleans(),
        online=st.booleans(),
        pending=counts,
        error=st.one_of(st.none(), st.just("node unreachable")),
    ),
)
workloads = st.builds(
    Workload, overdue=counts, do_first=counts, meetings_soon=counts, recent_messages=messages, sync=syncs
)


def test_an_empty_day_is_calm() -> None:
    mood = derive_mood(Workload())
    assert mood.label == "calm" and mood.level == 0
    assert mood.status == "calm · nothing pressing" and "warm" in mood.tone


def test_labels_follow_the_load() -> None:
    assert derive_mood(Workload(do_first=2)).label == "focused"
    assert derive_mood(Workload(overdue=2, meetings_soon=1)).label == "busy"
    stretched = derive_mood(Workload(overdue=4, do_first=3, meetings_soon=2))
    assert stretched.label == "stretched"
    assert stretched.status == "stretched · 4 overdue · 3 to do first · 2 meetings in 3 h"
    assert "one next step" in stretched.tone


def test_worried_words_weigh_and_relaxed_ones_lighten() -> None:
    assert conversation_stress(["I'm so overwhelmed and behind, everything is late"]) == 3.0
    assert conversation_stress(["thanks, that's great, all done"]) == 0.0
    assert conversation_stress([]) == 0.0
    assert derive_mood(Workload(do_first=1, recent_messages=("stuck and stressed",))).label == "focused"
    # only the last few messages count
    old = ("overwhelmed stressed panic",) + ("lunch?",) * 5
    assert conversation_stress(old) == 0.0


def test_sync_trouble_worries_unless_already_stretched() -> None:
    failing = SyncHealth(paired=True, online=False, pending=3, error="node unreachable")
    mood = derive_mood(Workload(do_first=2, sync=failing))
    assert mood.label == "worried about sync" and mood.level == 1
    assert mood.status == "worried about sync · 2 to do first · sync failing, 3 changes waiting"
    offline = SyncHealth(paired=True, online=False, pending=SYNC_WORRY_PENDING)
    assert derive_mood(Workload(sync=offline)).label == "worried about sync"
    briefly = SyncHealth(paired=True, online=False, pending=2)
    assert derive_mood(Workload(sync=briefly)).label == "calm"
    unpaired = SyncHealth(paired=False, online=False, pending=500)
    assert derive_mood(Workload(sync=unpaired)).label == "calm"
    assert derive_mood(Workload(overdue=9, sync=failing)).label == "stretched"


@given(workloads, st.integers(min_value=1, max_value=20))
def test_more_overdue_never_makes_it_calmer(w: Workload, more: int) -> None:
    before, after = derive_mood(w), derive_mood(Workload(**{**w.__dict__, "overdue": w.overdue + more}))
    assert after.level >= before.level and after.score > before.score


@given(workloads, st.integers(min_value=1, max_value=20))
def test_more_do_first_or_meetings_never_makes_it_calmer(w: Workload, more: int) -> None:
    base = derive_mood(w).level
    assert derive_mood(Workload(**{**w.__dict__, "do_first": w.do_first + more})).level >= base
    assert derive_mood(Workload(**{**w.__dict__, "meetings_soon": w.meetings_soon + more})).level >= base


@given(workloads, st.lists(st.sampled_from(sorted(NEGATIVE_WORDS)), min_size=1, max_size=5))
def test_worried_words_never_make_it_calmer(w: Workload, extra: list[str]) -> None:
    if not w.recent_messages:
        return
    *older, last = w.recent_messages
    worse = Workload(**{**w.__dict__, "recent_messages": (*older, f"{last} {' '.join(extra)}")})
    assert derive_mood(worse).level >= derive_mood(w).level


@given(workloads)
def test_every_mood_is_well_formed(w: Workload) -> None:
    mood = derive_mood(w)
    assert 0 <= mood.level < len(LEVELS) and mood.score >= 0
    assert mood.status.startswith(mood.label) and "\n" not in mood.status
    assert mood.label in (*LEVELS, "worried about sync") and mood.tone
    assert derive_mood(w) == mood  # pure: same workload, same mood


def test_workload_from_a_real_workspace(workspace: Workspace, tmp_path: Path) -> None:
    now = FIXED_NOW
    workspace.tasks.add("File the tax return", due=now - timedelta(days=2), important=True)
    workspace.tasks.add("Call the bank", due=now - timedelta(hours=1))
    workspace.tasks.add("Board deck", quadrant=Quadrant.DO_FIRST)
    done = workspace.tasks.add("Old overdue, done", due=now - timedelta(days=9))
    workspace.tasks.toggle_done(done.id)
    workspace.tasks.add("Plan the offsite", due=now + timedelta(days=20))

    def event(uid: str, start: str) -> str:
        return (f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261120T090000Z\r\nDTSTART:{start}\r\n"
                f"DURATION:PT30M\r\nSUMMARY:Meeting {uid}\r\nEND:VEVENT\r\n")  # fmt: skip

    ics = tmp_path / "cal.ics"
    ics.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        + event("soon", "20261127T100000Z")  # in an hour
        + event("later", "20261127T113000Z")  # in 2.5 hours
        + event("tomorrow", "20261128T100000Z")
        + event("past", "20261127T080000Z")
        + "END:VCALENDAR\r\n"
    )
    Importer(workspace).run([ics])
    live = LiveStatus(online=False, live=False, pending=42, last_sync=None, last_error="node unreachable",
                      summary="node unreachable")  # fmt: skip

    w = workload_from(workspace, now, live, recent_messages=["a", "b", "c", "d", "e", "I'm swamped"])

    assert (w.overdue, w.meetings_soon) == (2, 2)
    assert w.do_first == sum(1 for t in workspace.tasks.list() if t.quadrant == Quadrant.DO_FIRST) >= 1
    assert w.recent_messages == ("b", "c", "d", "e", "I'm swamped")
    assert w.sync == SyncHealth(paired=True, online=False, pending=42, error="node unreachable")
    assert workload_from(workspace, now, None).sync is None
    mood = derive_mood(w)
    assert mood.label == "stretched" and "2 overdue" in mood.status and "2 meetings in 3 h" in mood.status


def test_the_pure_rules_import_nothing_of_the_laptop() -> None:
    """The node imports `aurora.app.mood`: it must load no store, workspace, services or SQLite driver."""
    heavy = ["aurora.app.store", "aurora.app.workspace", "aurora.app.assistant", "aurora.schema", "apsw"]
    code = f"import sys, aurora.app.mood; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_laptop_reads_the_persons_recent_messages(settings: Settings) -> None:
    clock = [FIXED_NOW - timedelta(days=1)]
    ws = Workspace.open(settings, now=lambda: clock[0])
    try:
        chats = ws.conversations
        yesterday = chats.start("robbie")
        chats.ask(yesterday, "overwhelmed, panic, everything is broken", "robbie")  # too long ago
        clock[0] = FIXED_NOW - timedelta(hours=2)
        today = chats.start("robbie")
        for n in range(RECENT_MESSAGES):
            chats.ask(today, f"question {n}", "robbie")
        clock[0] = FIXED_NOW - timedelta(minutes=5)
        chats.ask(today, "I'm swamped and behind, the deadline is late", "robbie")
        clock[0] = FIXED_NOW

        said = recent_user_messages(ws, FIXED_NOW)

        # the last few only, oldest first; yesterday's never count
        assert said == [f"question {n}" for n in range(1, RECENT_MESSAGES)] + [
            "I'm swamped and behind, the deadline is late"
        ]
        mood = mood_now(ws)
        assert mood == derive_mood(workload_from(ws, FIXED_NOW, None, recent_messages=said))
        assert mood.score == conversation_stress(said) > 0 and mood.label == "focused"
        assert mood_now(ws, recent_messages=()).label == "calm"
    finally:
        ws.close()
