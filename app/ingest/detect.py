"""Which importer reads a path: by what the path is and what its first bytes say, or by `--format`."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib import import_module
from pathlib import Path
from typing import Any

from aurora.app.ingest.records import Parsed, ParseError, Skipped

# Format name -> (module in aurora.app.ingest, function). Modules load on first use: an import of mail
# never pays for the calendar library.
PARSERS: dict[str, tuple[str, str]] = {
    "eml": ("email", "parse_eml"),
    "emlx": ("email", "parse_emlx"),
    "mbox": ("email", "parse_mbox"),
    "maildir": ("email", "parse_maildir"),
    "ics": ("calendar", "parse_ics"),
    "slack": ("slack", "parse_slack_export"),
    "vtt": ("transcripts", "parse_vtt"),
    "srt": ("transcripts", "parse_srt"),
    "transcript": ("transcripts", "parse_transcript_text"),
    "vcard": ("contacts", "parse_vcard"),
    "csv-contacts": ("contacts", "parse_contacts_csv"),
    "taskwarrior": ("taskwarrior", "parse_taskwarrior"),
}
FORMATS = sorted([*PARSERS, "aurora-export"])
"""Every value `aurora import --format` takes."""

_EXTENSIONS = {
    ".eml": "eml",
    ".emlx": "emlx",
    ".mbox": "mbox",
    ".mbx": "mbox",
    ".ics": "ics",
    ".ical": "ics",
    ".vtt": "vtt",
    ".srt": "srt",
    ".vcf": "vcard",
    ".vcard": "vcard",
}
_TASKWARRIOR_FILES = {"pending.data", "completed.data", "backlog.data"}
CALENDAR_PAST = timedelta(days=365)
CALENDAR_FUTURE = timedelta(days=365)
"""Recurring events expand from a year ago to a year ahead; single events are kept whatever their date."""


def _head(path: Path, size: int = 4096) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(size)
    except OSError:
        return b""


def detect(path: Path) -> str | None:
    """The format of `path`, or None when no importer recognises it."""
    if path.is_dir():
        if (path / "cur").is_dir() and (path / "new").is_dir():
            return "maildir"
        if (path / "channels.json").is_file() or (path / "users.json").is_file():
            return "slack"
        return None
    name = path.name.lower()
    if name in _TASKWARRIOR_FILES:
        return "taskwarrior"
    suffix = path.suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    head = _head(path)
    if suffix == ".zip" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = {n.rsplit("/", 1)[-1] for n in archive.namelist()}
        return "slack" if {"channels.json", "users.json"} & names else None
    if head.startswith(b"From "):
        return "mbox"
    if head.lstrip(b"\xef\xbb\xbf").startswith(b"BEGIN:VCALENDAR"):
        return "ics"
    if head.lstrip(b"\xef\xbb\xbf").startswith(b"WEBVTT"):
        return "vtt"
    if head.lstrip(b"\xef\xbb\xbf").upper().startswith(b"BEGIN:VCARD"):
        return "vcard"
    if suffix == ".json":
        # Aurora's own export; any other JSON gets the export reader's precise refusal.
        return "aurora-export"
    if suffix == ".csv" and _looks_like_contacts(head):
        return "csv-contacts"
    if suffix == ".txt" and head and b"\x00" not in head:
        return "transcript"
    return None


def _looks_like_contacts(head: bytes) -> bool:
    first = head.decode("utf-8", "replace").splitlines()[0].lower() if head else ""
    return ("name" in first) and ("mail" in first or "phone" in first)


def parser_for(fmt: str) -> Callable[..., Parsed]:
    module, function = PARSERS[fmt]
    parse: Callable[..., Parsed] = getattr(import_module(f"aurora.app.ingest.{module}"), function)
    return parse


def parse(path: Path, fmt: str, now: datetime | None = None) -> Parsed:
    """Records from `path` read as `fmt`; a file that is not that format comes out as one Skipped."""
    parse_fn = parser_for(fmt)
    kwargs: dict[str, Any] = {}
    if fmt == "ics":
        moment = now or datetime.now(UTC)
        kwargs = {"window_start": moment - CALENDAR_PAST, "window_end": moment + CALENDAR_FUTURE}
    try:
        yield from parse_fn(path, **kwargs)
    except ParseError as exc:
        yield Skipped(str(path), f"not readable as {fmt}: {exc}")
    except OSError as exc:
        yield Skipped(str(path), f"cannot read: {exc.strerror or exc}")


def walk(paths: list[Path]) -> Iterator[tuple[Path, str | None]]:
    """Each path with its format. A folder that is no format of its own (not a Maildir, not a Slack
    export) is walked, so a folder of mixed files imports whatever in it is importable."""
    for path in paths:
        yield from _walk_one(path)


def _walk_one(path: Path) -> Iterator[tuple[Path, str | None]]:
    fmt = detect(path)
    if fmt is not None or not path.is_dir():
        yield path, fmt
        return
    for child in sorted(path.iterdir()):
        if not child.name.startswith("."):
            yield from _walk_one(child)
