from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from aurora.app import priority, quickadd
from aurora.app.errors import InvalidInputError
from aurora.schema import Quadrant
from tests.conftest import FIXED_NOW


@pytest.mark.parametrize(
    ("line", "title", "due"),
    [
        ("Call Dana tomorrow 3pm", "Call Dana", FIXED_NOW.replace(hour=15) + timedelta(days=1)),
        ("Pay rent on dec 1", "Pay rent", datetime(2026, 12, 1, 23, 59, tzinfo=FIXED_NOW.tzinfo)),
        ("Prep the Monday all-hands in 3 days", "Prep the Monday all-hands",
         (FIXED_NOW + timedelta(days=3)).replace(hour=23, minute=59)),
        ("Review may budget", "Review may budget", None),
        ("Sun screen purchase", "Sun screen purchase", None),
        ("Ship v2 release", "Ship v2 release", None),
        ("Fix bug in 2 places", "Fix bug in 2 places", None),
        ("Call back in 2 hours", "Call back", FIXED_NOW + timedelta(hours=2)),
        ("Stretch in an hour", "Stretch", FIXED_NOW + timedelta(hours=1)),
    ],
)  # fmt: skip
def test_dates_are_found_where_people_write_them(line: str, title: str, due: datetime | None) -> None:
    draft = quickadd.parse(line, FIXED_NOW)
    assert (draft.title, draft.due) == (title, due)


def test_flags_and_tags_anywhere() -> None:
    draft = quickadd.parse("!u #Sales Call Dana !i #sales", FIXED_NOW)
    assert (draft.title, draft.urgent, draft.important, draft.tags) == ("Call Dana", True, True, ["sales"])


def test_due_field_must_be_a_whole_date() -> None:
    assert quickadd.parse_due("", FIXED_NOW) is None
    assert quickadd.parse_due("2026-12-24 18:00", FIXED_NOW) == datetime(
        2026, 12, 24, 18, 0, tzinfo=FIXED_NOW.tzinfo
    )
    with pytest.raises(InvalidInputError, match="not a date"):
        quickadd.parse_due("whenever", FIXED_NOW)


def test_urgency_rises_as_the_due_date_nears() -> None:
    def urgency(hours: float) -> float:
        return priority.urgency(FIXED_NOW + timedelta(hours=hours), False, FIXED_NOW, 3)

    assert urgency(-1) == 1.0
    assert urgency(1) > urgency(24) > urgency(72) > urgency(140) >= urgency(200) == 0.0
    assert urgency(71) >= priority.URGENT_AT > urgency(73)
    tagged = priority.score(
        due=None, urgent=False, important=False, tags=["vip"], now=FIXED_NOW,
        urgent_within_days=3, important_tags=["vip"],
    )  # fmt: skip
    assert tagged.quadrant is Quadrant.SCHEDULE
