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


def read_text(path: Path, what: str) -> str:
    """A text file whatever its encoding: UTF-16 by its BOM, else UTF-8, else Windows-1252 (what older
    Windows tools write); the BOM removed. ParseError for an unreadable, binary or empty file. `what`
    names the expected content for the message ("a contacts CSV")."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParseError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ParseError(f"{path}: starts like UTF-16 text but is not ({exc.reason})") from exc
    else:
        if b"\x00" in data[:8192]:
            raise ParseError(f"{path}: binary data, not {what}")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ParseError(f"{path}: empty file, no {what.removeprefix('a ').removeprefix('an ')} in it")
    return text
