"""Quick-add: one line of text into a task draft. Pure (the clock is passed in).

    Call Dana tomorrow 3pm !urgent !important #sales

sets the title "Call Dana", a due date (tomorrow 15:00), both flags and the tag `sales`. Flags are
`!urgent` (`!u`) and `!important` (`!i`); `#word` is a tag; a date phrase may stand anywhere and may start
with on/by/due/at. Words that are dates only sometimes ("may", "march", "sun") count as dates only after
on/by/due/next/this, so "Review may budget" keeps its title.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import cache
from typing import Any

from aurora.app.errors import InvalidInputError
from aurora.schema import MAX_TITLE, normalise_tags

FLAGS = {"!urgent": "urgent", "!u": "urgent", "!important": "important", "!i": "important"}
ALL_DAY = time(23, 59)
"""A due date given without a time means "by the end of that day"."""

_PREPOSITIONS = {"on", "by", "due", "at", "before"}
_QUALIFIERS = {"next", "this", "on", "by", "due", "before", "until"}
_DAYS = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri",
}  # fmt: skip
_MONTHS = {
    "january", "february", "april", "june", "july", "august", "september", "october", "november",
    "december", "jan", "feb", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
}  # fmt: skip
_AMBIGUOUS = {"may", "march", "mar", "sun", "sat", "saturday", "sunday", "second"}
_ANCHORS = {"today", "tonight", "tomorrow", "tmrw", "tmr", "next", "in", "noon", "midnight"}
_UNITS = {
    "minute", "minutes", "min", "mins", "hour", "hours", "hr", "hrs", "day", "days", "week", "weeks",
    "month", "months", "year", "years",
}  # fmt: skip
_TIME_RE = re.compile(r"^(\d{1,2}(:\d{2})?\s*(am|pm)|\d{1,2}:\d{2}|noon|midnight|tonight)$", re.I)
_NUMERIC_DATE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}(/\d{2,4})?)$")
_HAS_TIME_RE = re.compile(
    r"\d\s*(am|pm)\b|\d:\d{2}|\bnoon\b|\bmidnight\b|\btonight\b|\bmorning\b|\bevening\b"
    r"|\bafternoon\b|\b(minute|minutes|min|mins|hour|hours|hr|hrs)\b",
    re.I,
)
_MAX_PHRASE = 5


@dataclass(frozen=True)
class Draft:
    """What a quick-add line asks for."""

    title: str
    due: datetime | None = None
    urgent: bool = False
    important: bool = False
    tags: list[str] = field(default_factory=list)
    date_text: str | None = None


def parse(text: str, now: datetime) -> Draft:
    """Parse a quick-add line; `now` must be timezone-aware. Raises InvalidInputError with a hint."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    words = text.split()
    urgent = important = False
    tags: list[str] = []
    rest: list[str] = []
    for word in words:
        lower = word.lower()
        if lower in FLAGS:
            if FLAGS[lower] == "urgent":
                urgent = True
            else:
                important = True
        elif lower.startswith("!") and len(lower) > 1:
            raise InvalidInputError(f"unknown flag '{word}': use !urgent (!u) or !important (!i)")
        elif word.startswith("#"):
            if len(word) == 1:
                raise InvalidInputError("'#' needs a tag name after it, like #sales")
            tags.append(word[1:])
        else:
            rest.append(word)
    try:
        tags = normalise_tags(tags)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None

    due, span = _find_date(rest, now)
    date_text = None
    if span is not None:
        start, end = span
        date_text = " ".join(rest[start:end])
        if start > 0 and rest[start - 1].lower() in _PREPOSITIONS:
            start -= 1
        rest = rest[:start] + rest[end:]
    title = " ".join(rest).strip(" ,;-")
    if not title:
        raise InvalidInputError("a task needs a title: type what to do, then any date, !flags and #tags")
    if len(title) > MAX_TITLE:
        raise InvalidInputError(f"the title is {len(title)} characters; keep it under {MAX_TITLE}")
    return Draft(title, due, urgent, important, tags, date_text)


def parse_due(text: str, now: datetime) -> datetime | None:
    """A due date typed on its own (the edit form's field); empty text clears it."""
    text = text.strip()
    if not text:
        return None
    due, span = _find_date(text.split(), now)
    if due is None or span != (0, len(text.split())):
        raise InvalidInputError(f"'{text}' is not a date Aurora understands; try 'fri 5pm' or '2026-12-01'")
    return due


def _is_anchor(words: list[str], i: int) -> bool:
    word = words[i].lower().strip(",.")
    prev = words[i - 1].lower() if i > 0 else ""
    if word in _AMBIGUOUS:
        return prev in _QUALIFIERS or (i + 1 < len(words) and words[i + 1].strip(",.").isdigit())
    if word == "in":
        # "in 2 days", "in an hour"; not "in 2 places" or "in the morning meeting".
        count = words[i + 1].lower() if i + 1 < len(words) else ""
        unit = words[i + 2].lower().strip(",.") if i + 2 < len(words) else ""
        return (count.isdigit() or count in {"a", "an"}) and unit in _UNITS
    if word == "next":
        return i + 1 < len(words)
    return (
        word in _ANCHORS
        or word in _DAYS
        or word in _MONTHS
        or bool(_TIME_RE.match(word))
        or bool(_NUMERIC_DATE_RE.match(word))
    )


def _find_date(words: list[str], now: datetime) -> tuple[datetime | None, tuple[int, int] | None]:
    """The date phrase that ends last (people write the due date at the end: "Prep the Monday all-hands
    in 3 days" is due in 3 days), and of those the one that starts first ("tomorrow 3pm", not "3pm")."""
    best: tuple[datetime, tuple[int, int]] | None = None
    for start in range(len(words)):
        if not _is_anchor(words, start):
            continue
        for end in range(min(len(words), start + _MAX_PHRASE), start, -1):
            if best is not None and end <= best[1][1]:
                break
            when = _dateparse(" ".join(words[start:end]).strip(",."), now)
            if when is not None:
                best = (when, (start, end))
                break
    return (best[0], best[1]) if best else (None, None)


def _dateparse(phrase: str, now: datetime) -> datetime | None:
    local_now = now.astimezone()
    with _PARSE_LOCK:
        parsed: datetime | None = _parser()(
            phrase,
            languages=["en"],
            settings={
                "PREFER_DATES_FROM": "future",
                "RELATIVE_BASE": local_now.replace(tzinfo=None),
                "RETURN_AS_TIMEZONE_AWARE": False,
                "STRICT_PARSING": False,
            },
        )
    if parsed is None:
        return None
    if not _HAS_TIME_RE.search(phrase):
        parsed = datetime.combine(parsed.date(), ALL_DAY)
    # astimezone() on a naive time gives that date's own local offset (summer or winter), not today's.
    aware: datetime = parsed.astimezone()
    if aware < now - timedelta(days=366) or aware > now + timedelta(days=3660):
        return None
    return aware


_PARSE_LOCK = threading.Lock()
"""dateparser is not thread-safe, and the preview, the UI and the database thread may all parse."""


@cache
def _parser() -> Any:
    # dateparser takes ~0.2 s to import and ~0.15 s more on its first parse; import it only when needed
    # (the TUI warms it in a worker at start so the first quick-add is instant).
    import dateparser

    return dateparser.parse


def warm_up() -> None:
    """Pay dateparser's one-time start-up cost now (call from a background worker)."""
    _dateparse("tomorrow 3pm", datetime.now().astimezone())
