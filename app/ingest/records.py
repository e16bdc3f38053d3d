"""What every parser produces: `Record`s (one imported thing each) and `Skipped`s (with the reason)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

RecordKind = Literal["mail", "event", "message", "transcript", "contact", "task"]
Role = Literal["from", "to", "cc", "bcc", "organizer", "attendee", "author", "speaker", "contact"]


@dataclass(frozen=True)
class Participant:
    """Someone a record involves. Either may be empty, not both."""

    name: str = ""
    email: str = ""
    role: Role = "to"


@dataclass(frozen=True)
class Record:
    """One imported thing.

    `source` names the format ("mbox", "maildir", "eml", "emlx", "ics", "slack", "vtt", "srt",
    "transcript", "vcard", "csv-contacts", "taskwarrior"); `external_id` is stable within the source
    (Message-ID, UID plus recurrence id, channel plus Slack ts, ...), so importing the same file twice
    finds the same records. Times are timezone-aware.
    """

    source: str
    external_id: str
    kind: RecordKind
    title: str
    body: str = ""
    occurred_at: datetime | None = None
    ends_at: datetime | None = None
    thread_id: str | None = None
    participants: tuple[Participant, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """Something in a file that was not imported, and why (one line a person can act on)."""

    where: str
    reason: str


Parsed = Iterator[Record | Skipped]
"""What a parser yields, lazily, so a large mbox never sits in memory whole."""


class ParseError(Exception):
    """The whole file cannot be read as this format (the pipeline reports it as skipped)."""


def location(path: Path, detail: str = "") -> str:
    return f"{path}{f' ({detail})' if detail else ''}"
