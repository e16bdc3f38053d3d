"""Meeting transcripts: WebVTT (.vtt), SubRip (.srt) and plain-text transcripts (.txt, YouTube .sbv).

A transcript is ONE `Record` (kind "transcript"): its body has one line per utterance,
"[00:01:02] Dana Scully: text" (the time and the speaker only where the file has them). Speakers come from
WebVTT voice tags (`<v Dana Scully>`), from "Name: " prefixes (Zoom, Teams, Otter exports) or are absent
(subtitles). Styling tags (<i>, <b>, <c.class>, karaoke timestamps) are stripped; YouTube's rolling
auto-captions, which repeat the previous line at the start of each cue, are de-duplicated.

The external id is "sha256:" plus the hash of the rendered body, so renaming or re-saving the file (another
encoding, CRLF, a BOM) does not import the meeting twice.

`occurred_at` is set only where the file says when: a "Date:" header, a Zoom cloud-recording name
(GMT20240305-150012_Recording...) or a date in the file name ("2024-03-05 Standup.vtt"). A date or time
without a zone is read in this computer's time zone, as the person who named the file meant it.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aurora.app.ingest.records import (
    Parsed,
    ParseError,
    Participant,
    Record,
    Skipped,
    location,
    read_text,
)

_TIME = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})(?:[.,](\d{1,3}))?")
_TIMING = re.compile(r"^\s*([\d:.,]+)\s*-->\s*([\d:.,]+)(?:[ \t].*)?$")
_TAG = re.compile(r"<[^<>]*>")
_VOICE = re.compile(r"<v(?:\.[\w.\-]+)*[ \t]+([^<>]+)>")
_ASS_TAG = re.compile(r"\{\\[^{}]*\}")
_NAME = r"[^\W\d_][\w.'\u2019\-]*(?:[ \t]+[^\W\d_][\w.'\u2019\-]*){0,3}(?:[ \t]\d{1,3})?"
"""A speaker's name: up to four words starting with a letter, maybe a number ("Speaker 2")."""
_SPEAKER = re.compile(rf"^(?:>>\s*)?(?P<name>{_NAME}):[ \t]+(?P<text>\S.*)$")
_NOT_SPEAKERS = frozenset(
    {
        "note",
        "notes",
        "nb",
        "ps",
        "warning",
        "caution",
        "tip",
        "example",
        "edit",
        "update",
        "important",
        "summary",
        "agenda",
        "http",
        "https",
        "re",
        "fwd",
    }
)
"""Labels that end in a colon but are not people."""
_METADATA = re.compile(
    r"^(?P<key>title|meeting|topic|date|time|start time|recorded|recorded on|created|duration|participants|"
    r"attendees|speakers|location|subject|kind|language)[ \t]*:[ \t]*(?P<value>.*)$",
    re.IGNORECASE,
)
_DATE_KEYS = frozenset({"date", "recorded", "recorded on", "created", "start time"})
_ZOOM_NAME = re.compile(r"GMT(\d{8})-(\d{6})")
_NAME_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T_\-]?(\d{2})[:.\-h]?(\d{2}))?")
_TITLE_SUFFIX = re.compile(r"\.(?:transcript|captions?|subtitles?|[a-z]{2}(?:[-_][A-Za-z]{2,4})?)$")


@dataclass
class _Segment:
    start: float | None
    end: float | None
    speaker: str
    text: str


# Reading ----------------------------------------------------------------------------------------------------


def _read_text(path: Path, what: str) -> str:
    """The file as text with LF line ends; ParseError for an empty or binary file."""
    return read_text(path, f"a {what}").replace("\r\n", "\n").replace("\r", "\n")


def _seconds(stamp: str) -> float | None:
    match = _TIME.fullmatch(stamp.strip())
    if not match:
        return None
    hours, minutes, seconds, fraction = match.groups()
    if int(seconds) >= 60 or (hours is not None and int(minutes) >= 60):
        return None
    value = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    return value + (int(fraction.ljust(3, "0")) / 1000 if fraction else 0.0)


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _clean(line: str) -> str:
    return " ".join(html.unescape(_ASS_TAG.sub("", _TAG.sub("", line))).split())


def _split_speaker(line: str) -> tuple[str, str]:
    """("Dana", "text") for "Dana: text", ("", line) when the line has no speaker label."""
    match = _SPEAKER.match(line)
    if match and match.group("name").casefold() not in _NOT_SPEAKERS:
        return match.group("name"), match.group("text")
    return "", line


# Cues (WebVTT and SubRip) -----------------------------------------------------------------------------------


def _cue_blocks(lines: list[str], first: int) -> list[tuple[int, str, list[str]]]:
    """(line number, timing line, text lines) per cue, from line index `first` on.

    Tolerates what real files do: no blank line between cues, an SRT counter glued to the previous cue's
    text, NOTE/STYLE/REGION blocks, and blank lines inside a cue's text.
    """
    timings = [i for i in range(first, len(lines)) if _TIMING.match(lines[i])]
    blocks: list[tuple[int, str, list[str]]] = []
    for n, start in enumerate(timings):
        stop = timings[n + 1] if n + 1 < len(timings) else len(lines)
        chunks: list[list[str]] = [[]]
        for line in lines[start + 1 : stop]:
            if line.strip():
                chunks[-1].append(line)
            elif chunks[-1]:
                chunks.append([])
        chunks = [c for c in chunks if c]
        if stop < len(lines) and chunks:
            # The line just before the next timing is that cue's identifier when it stands alone after a blank
            # line, or when it is a bare SRT counter.
            last = chunks[-1]
            if len(chunks) > 1 or last[-1].strip().isdigit():
                last.pop()
                chunks = [c for c in chunks if c]
        text: list[str] = []
        for index, chunk in enumerate(chunks):
            if index and chunk[0].lstrip().startswith(("NOTE", "STYLE", "REGION")):
                continue
            text.extend(chunk)
        blocks.append((start + 1, lines[start], text))
    return blocks


def _parse_cues(path: Path, text: str, source: str, what: str) -> Parsed:
    lines = text.split("\n")
    metadata: dict[str, str] = {}
    first = 0
    if source == "vtt":
        if lines and lines[0].startswith("WEBVTT"):
            # The header runs to the first blank line: "Kind: captions", "Language: en", sometimes a date.
            first = 1
            while first < len(lines) and lines[first].strip():
                match = _METADATA.match(lines[first].strip())
                if match:
                    metadata.setdefault(match.group("key").casefold(), match.group("value").strip())
                first += 1
        elif not any(_TIMING.match(line) for line in lines):
            raise ParseError(f"{path}: not WebVTT (no WEBVTT header and no cue timings)")
    blocks = _cue_blocks(lines, first)
    if not blocks:
        raise ParseError(f"{path}: no cues in this {what} (no 'HH:MM:SS.mmm --> HH:MM:SS.mmm' timing lines)")

    segments: list[_Segment] = []
    cues = 0
    previous: list[str] = []
    for number, timing, raw in blocks:
        match = _TIMING.match(timing)
        assert match is not None
        start, end = _seconds(match.group(1)), _seconds(match.group(2))
        if start is None or end is None:
            yield Skipped(
                location(path, f"line {number}"),
                f"cue timing {timing.strip()!r} is not a valid time: this cue was left out",
            )
            continue
        end = max(end, start)
        # Each line: its voice (a <v Name> tag applies to the rest of the cue) and its cleaned text.
        voiced: list[tuple[str, str]] = []
        voice = ""
        for line in raw:
            found = _VOICE.search(line)
            if found:
                voice = " ".join(found.group(1).split())
            cleaned = _clean(line)
            if cleaned:
                voiced.append((voice, cleaned))
        if not voiced:
            continue
        cues += 1
        texts = [t for _, t in voiced]
        if texts == previous and segments:
            segments[-1].end = max(segments[-1].end or end, end)  # a rolling caption shown again
            continue
        overlap = _overlap(previous, texts)
        current = voiced[overlap:]
        previous = texts
        for voice_name, line in current:
            speaker, said = (voice_name, line) if voice_name else _split_speaker(line)
            last = segments[-1] if segments else None
            if last is not None and last.start == start and last.speaker == speaker:
                last.text = f"{last.text} {said}"
            else:
                segments.append(_Segment(start, end, speaker, said))
    if not segments:
        raise ParseError(f"{path}: every cue in this {what} is empty")
    yield _record(path, source, segments, cues, metadata)


def _overlap(previous: list[str], current: list[str]) -> int:
    """How many leading lines of `current` repeat the end of `previous` (YouTube's rolling captions)."""
    for size in range(min(len(previous), len(current) - 1), 0, -1):
        if previous[-size:] == current[:size]:
            return size
    return 0


def parse_vtt(path: Path) -> Parsed:
    """One transcript `Record` from a WebVTT file; `Skipped` for cues whose timing cannot be read."""
    yield from _parse_cues(path, _read_text(path, "WebVTT transcript"), "vtt", "WebVTT file")


def parse_srt(path: Path) -> Parsed:
    """One transcript `Record` from a SubRip (.srt) file; `Skipped` for cues whose timing cannot be read."""
    yield from _parse_cues(path, _read_text(path, "SubRip transcript"), "srt", "SubRip file")


# Plain text -------------------------------------------------------------------------------------------------

_T = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
_TIME_ONLY = re.compile(rf"^[\[(]?(?P<start>{_T})(?:\s*(?:-->|,|-|\u2013)\s*(?P<end>{_T}))?[\])]?$")
_TIME_FIRST = re.compile(
    rf"^[\[(](?P<start>{_T})[\])]\s*[-\u2013\u2014:]?\s*(?P<rest>.*)$|^(?P<bare>{_T})\s+(?P<brest>\S.*)$"
)
_NAME_TIME = re.compile(rf"^(?P<name>{_NAME})[ \t]*[\[(]?(?P<start>{_T})[\])]?:?$")


def _text_seconds(stamp: str) -> float | None:
    """'1:02' is minutes and seconds, '0:01:02' hours too (YouTube and Otter write the short form)."""
    parts = stamp.replace(",", ".").split(":")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        return None
    if len(numbers) == 2:
        minutes, seconds = numbers
        return minutes * 60 + seconds if seconds < 60 else None
    hours, minutes, seconds = numbers
    return hours * 3600 + minutes * 60 + seconds if minutes < 60 and seconds < 60 else None


def parse_transcript_text(path: Path) -> Parsed:
    """One transcript `Record` from a plain-text transcript.

    Understands lines like "[00:01:02] Dana: text", "00:01:02 Dana: text", Otter/Teams blocks (a "Dana
    Scully  0:04" line, then what was said), time-only lines (YouTube's copied transcripts, .sbv
    "0:00:01.000,0:00:03.500" cues) and "Dana: text" lines; other lines are text of the current speaker.
    """
    text = _read_text(path, "transcript")
    metadata: dict[str, str] = {}
    segments: list[_Segment] = []
    speaker = ""
    pending_time: tuple[float | None, float | None] = (None, None)
    open_segment = False  # whether the next plain line continues the last segment (no blank line between)
    in_prelude = True
    cues = 0
    for raw in text.split("\n"):
        line = _clean(raw)
        if not line:
            open_segment = False
            continue
        if in_prelude:
            meta = _METADATA.match(line)
            if meta:
                metadata.setdefault(meta.group("key").casefold(), meta.group("value").strip())
                continue
            in_prelude = False
        only = _TIME_ONLY.match(line)
        if only:
            end = only.group("end")
            pending_time = (_text_seconds(only.group("start")), _text_seconds(end) if end else None)
            open_segment = False
            continue
        header = _NAME_TIME.match(line)
        if header and header.group("name").casefold() not in _NOT_SPEAKERS:
            speaker = header.group("name")
            pending_time = (_text_seconds(header.group("start")), None)
            open_segment = False
            continue
        start, end = pending_time
        first = _TIME_FIRST.match(line)
        if first:
            stamp = first.group("start") or first.group("bare")
            start, end = _text_seconds(stamp), None
            line = first.group("rest") if first.group("start") else first.group("brest")
            open_segment = False
        name, said = _split_speaker(line)
        if name:
            speaker = name
            open_segment = False
        if open_segment and segments and not name:
            segments[-1].text = f"{segments[-1].text} {said}"
            continue
        segments.append(_Segment(start, end, speaker, said))
        cues += 1
        pending_time = (None, None)
        open_segment = True
    if not segments:
        raise ParseError(f"{path}: no transcript text in this file")
    yield _record(path, "transcript", segments, cues, metadata)


# The record -------------------------------------------------------------------------------------------------


def _record(path: Path, source: str, segments: list[_Segment], cues: int, metadata: dict[str, str]) -> Record:
    body_lines: list[str] = []
    speakers: list[str] = []
    for segment in segments:
        prefix = f"[{_clock(segment.start)}] " if segment.start is not None else ""
        who = f"{segment.speaker}: " if segment.speaker else ""
        body_lines.append(f"{prefix}{who}{segment.text}")
        if segment.speaker and segment.speaker not in speakers:
            speakers.append(segment.speaker)
    body = "\n".join(body_lines)
    starts = [s.start for s in segments if s.start is not None]
    ends = [max(s.end if s.end is not None else s.start, s.start) for s in segments if s.start is not None]
    duration = round(max(ends) - min(starts), 3) if starts else None
    return Record(
        source=source,
        external_id="sha256:" + hashlib.sha256(body.encode("utf-8")).hexdigest(),
        kind="transcript",
        title=_title(path),
        body=body,
        occurred_at=_when(path, metadata),
        participants=tuple(Participant(name=s, role="speaker") for s in speakers),
        extra={"speakers": speakers, "duration_s": duration, "cues": cues},
    )


def _title(path: Path) -> str:
    stem = path.stem
    while True:
        shorter = _TITLE_SUFFIX.sub("", stem)
        if shorter == stem or not shorter:
            break
        stem = shorter
    stem = _ZOOM_NAME.sub("", stem).replace("_", " ")
    return " ".join(stem.split()).strip(" -.") or "Transcript"


def _when(path: Path, metadata: dict[str, str]) -> datetime | None:
    for key in _DATE_KEYS:
        value = metadata.get(key)
        if value:
            moment = _parse_datetime(value)
            if moment is not None:
                return moment
    zoom = _ZOOM_NAME.search(path.stem)
    if zoom:
        try:
            return datetime.strptime(zoom.group(1) + zoom.group(2), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            pass
    named = _NAME_DATE.search(path.stem)
    if named:
        year, month, day, hour, minute = named.groups()
        try:
            naive = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0))
        except ValueError:
            return None
        return naive.astimezone()
    return None


def _parse_datetime(value: str) -> datetime | None:
    candidate = value.strip().replace("Z", "+00:00") if value.strip().endswith("Z") else value.strip()
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        match = _NAME_DATE.search(value)
        if not match:
            return None
        year, month, day, hour, minute = match.groups()
        try:
            moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0))
        except ValueError:
            return None
    return moment if moment.tzinfo is not None else moment.astimezone()
