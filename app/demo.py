"""The demo workspace: a realistic week for Maya Chen, head of product at a 40-person startup.

Written for Aurora (no real people). Dates are relative to today, so the matrix always looks current.
`aurora demo` rebuilds it each time in its own file; it never touches the person's own workspace.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from aurora.app.config import Settings
from aurora.app.paths import DEMO_WORKSPACE, workspace_path
from aurora.app.workspace import Workspace
from aurora.schema import NoteColour, Quadrant

# (quick-add line, manual quadrant or None, done?)
_TASKS: list[tuple[str, Quadrant | None, bool]] = [
    ("Finish Q1 roadmap draft for the board today 5pm !important #goal", None, False),
    ("Reply to Dana Ruiz about the renewal discount tomorrow 10am !important #sales", None, False),
    ("Fix the onboarding email that links to the old pricing page today !urgent !important", None, False),
    ("Prep talking points for Monday all-hands in 3 days !important", None, False),
    ("Sign the SOC 2 auditor engagement letter tomorrow !important #admin", None, False),
    ("Review Priya's design doc for offline sync in 5 days !important #eng", None, False),
    ("Book a 1:1 with every new hire this month !important #people #goal", None, False),
    ("Write the hiring plan for two senior engineers in 9 days #goal", None, False),
    ("Read 'Working Backwards' chapter 4 #learning #goal", None, False),
    ("Plan the Lisbon offsite agenda in 14 days !important #team", None, False),
    ("Run 30 minutes #health", None, False),
    ("Approve Jonas's expense report tomorrow #admin !urgent", None, False),
    ("Send the conference talk slides to the organisers tomorrow 9am !urgent", None, False),
    ("Answer the vendor security questionnaire in 2 days", None, False),
    ("Confirm catering headcount for Thursday tomorrow noon !urgent #team", None, False),
    ("Forward the podcast invite to marketing !urgent", Quadrant.DELEGATE, False),
    ("Clean up the old Jira board", None, False),
    ("Unsubscribe from five newsletters", None, False),
    ("Rename the shared drive folders", None, False),
    ("Look at the new espresso machine options #office", None, False),
    ("Call the bank about the card limit", Quadrant.DELEGATE, False),
    ("Send Tomas feedback on the pricing experiment !important", None, True),
    ("Update the investor CRM notes #sales", None, True),
    ("Pay the co-working invoice !urgent", None, True),
]

_NOTES: list[tuple[str, NoteColour, bool, list[str]]] = [
    ("This week: ship the board roadmap, close the Ruiz renewal, hire plan to Priya by Friday.",
     NoteColour.YELLOW, True, ["week"]),
    ("Dana prefers calls before 11am her time (Austin). Renewal is up on the 15th; she asked about a "
     "multi-year discount.", NoteColour.PINK, True, ["sales", "people"]),
    ("Board deck outline:\n1. What we shipped\n2. Retention by cohort\n3. Roadmap and the two bets\n"
     "4. Hiring", NoteColour.BLUE, False, ["board"]),
    ("Offsite ideas: customer panel on day one, no laptops during strategy block, walking 1:1s.",
     NoteColour.GREEN, False, ["team"]),
    ("Wi-Fi at the Lisbon venue: ask for the guest network password at reception.",
     NoteColour.PURPLE, False, ["travel"]),
    ("Book recommendations from Jonas: 'An Elegant Puzzle', 'The Manager's Path'.",
     NoteColour.ORANGE, False, ["learning"]),
    ("Remember: say no to new meetings on Wednesday afternoons (focus block).",
     NoteColour.YELLOW, False, ["habits"]),
]  # fmt: skip


def demo_path(settings: Settings) -> Path:
    return workspace_path(DEMO_WORKSPACE, settings.data_dir)


def build_demo(settings: Settings, now: datetime | None = None) -> Path:
    """Create a fresh demo workspace (replacing an earlier demo) and return its path."""
    path = demo_path(settings)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    when = now or datetime.now().astimezone()
    demo_settings = settings.model_copy(update={"workspace": str(path)})
    ws = Workspace.open(demo_settings, now=lambda: when)
    try:
        for line, quadrant, done in _TASKS:
            task = ws.tasks.add_quick(line)
            if quadrant is not None:
                ws.tasks.move(task.id, quadrant)
            if done:
                ws.tasks.toggle_done(task.id)
        # Newest first on the notes screen: add them in reverse so the list reads as written here.
        for body, colour, pinned, tags in reversed(_NOTES):
            ws.notes.add(body, colour=colour, pinned=pinned, tags=tags)
        ws.search.drain_all()  # searchable from the first keypress
    finally:
        ws.close()
    return path
