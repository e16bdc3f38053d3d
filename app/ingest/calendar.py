"""iCalendar files (.ics, RFC 5545) -> one event `Record` per event or per occurrence.

What a person gets, and the choices behind it:

* **Windowing.** A repeating event (RRULE or RDATE) is expanded with `recurring-ical-events` into its
  occurrences between `window_start` and `window_end` only (EXDATEs removed, RECURRENCE-ID overrides
  applied); an unbounded weekly meeting would otherwise be endless. A one-off event is imported whatever
  its date: a person's history matters.
* **Identity.** `external_id` is the UID for a one-off event, and `UID#<recurrence id>` for an occurrence,
  where the recurrence id is the occurrence's *original* start (RECURRENCE-ID), in UTC
  (`2016-10-31T13:00:00Z`) or as a date (`2012-08-14`) for all-day series. An occurrence that was moved
  keeps its id, so importing the file again after a reschedule updates it instead of duplicating it.
  Without a UID the id is `sha256:` plus a hash of the summary and the raw DTSTART.
* **Times.** `occurred_at` and `ends_at` are aware datetimes in UTC; `extra["timezone"]` names the zone
  the event was scheduled in. An all-day event (DATE values) starts at 00:00 UTC of its date and ends at
  00:00 UTC of its (exclusive) DTEND date, with `extra["all_day"] = True`: the date is the fact, not an
  instant, and 00:00 UTC keeps that date whatever zone reads it as a date. A floating time (no TZID) is
  read in the calendar's X-WR-TIMEZONE if it names a zone, else in UTC, with `extra["floating"] = True`.
* **Time zones.** A TZID is resolved to an IANA zone where one is known: an IANA name, a Windows name
  ("Eastern Standard Time", "W. Europe Standard Time", via the CLDR map icalendar ships), or a vendor
  path ("/mozilla.org/20050126_1/Europe/London"). A custom TZID that the file defines in its own
  VTIMEZONE ("GMT +0100 (Standard) / GMT +0200 (Daylight)") keeps the file's rules, which is what the
  sender's client showed. Only a TZID that is neither known nor defined falls back, with
  `extra["tz_fallback"]` = the original name: to its "(UTC-03:00) ..." offset if the name carries one,
  otherwise to the calendar's X-WR-TIMEZONE, otherwise to UTC.
* **Skipped, never raised.** Cancelled events (STATUS:CANCELLED, or METHOD:CANCEL), events without a
  readable start, older copies of the same UID, series whose repeat rule cannot be read, to-dos,
  journals and free/busy blocks each yield a `Skipped` with the reason. A damaged or truncated file is
  read component by component so that its complete events still come in. `ParseError` is raised only
  when the file is not iCalendar at all (empty, binary, another format, unreadable).
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import recurring_ical_events
from icalendar import Calendar, Component
from icalendar.error import GloballyUniqueTZIDGuessed
from icalendar.prop import vRecur
from icalendar.timezone.tzid import tzid_from_tzinfo
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from aurora.app.ingest.records import Parsed, ParseError, Participant, Record, Role, Skipped, location

__all__ = ["parse_ics"]

_WINDOWS_ZONES = {name.casefold(): iana for name, iana in WINDOWS_TO_OLSON.items()}
_OFFSET_IN_NAME = re.compile(r"^\W*(?:UTC|GMT)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)
_NOT_EVENTS = {
    "VTODO": "a to-do (VTODO), not an event",
    "VJOURNAL": "a journal entry (VJOURNAL), not an event",
    "VFREEBUSY": "free/busy blocks (VFREEBUSY) carry no event details",
    "VAVAILABILITY": "availability (VAVAILABILITY), not an event",
}
_TOP_LEVEL = {"VEVENT", "VTIMEZONE", *_NOT_EVENTS}
_RECURRENCE_PROPS = ("RRULE", "RDATE", "EXDATE")
_CONTENT_LINE = re.compile(r"^[A-Za-z0-9-]+[;:]")


def parse_ics(path: Path, window_start: datetime, window_end: datetime) -> Parsed:
    """Yield a `Record` per event (per occurrence in the window for repeating ones) or a `Skipped`.

    Naive window bounds are taken as UTC. Raises `ParseError` (lazily, on the first `next`) only when
    `path` is not an iCalendar file at all.
    """
    start, end = _aware(window_start), _aware(window_end)
    if end <= start:
        raise ValueError(f"window_end {window_end} is not after window_start {window_start}")
    text = _read(path)
    calendars, problems = _parse(text, path)
    yield from problems
    found = False
    for cal in calendars:
        for item in _calendar(cal, path, start, end):
            found = True
            yield item
    if not found and not problems:
        yield Skipped(location(path), "no events (VEVENT) in this calendar")


# --- reading ------------------------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ParseError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16", errors="replace")
    elif not raw.strip():
        raise ParseError(f"{path}: empty file, not an iCalendar file")
    elif b"\x00" in raw[:8192]:
        raise ParseError(f"{path}: binary data, not an iCalendar file")
    else:
        text = _decode(raw)
    text = text.lstrip("\ufeff")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if re.match(r"BEGIN\s*:\s*VCALENDAR\b", first, re.IGNORECASE):
        return text
    if re.match(r"BEGIN\s*:\s*VEVENT\b", first, re.IGNORECASE):  # a bare event some tools export
        return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{text}\r\nEND:VCALENDAR\r\n"
    raise ParseError(f"{path}: not an iCalendar file (it starts with {first[:40]!r}, not BEGIN:VCALENDAR)")


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _parse(text: str, path: Path) -> tuple[list[Component], list[Skipped]]:
    """The calendars in `text`; a damaged file is salvaged block by block (see `_salvage`)."""
    expected = len(re.findall(r"^BEGIN:VEVENT\s*$", text, re.IGNORECASE | re.MULTILINE))
    try:
        with _quiet():
            calendars: list[Component] = [*Calendar.from_ical(text, multiple=True)]
    except Exception:  # icalendar raises ValueError and others on a bad line anywhere in the file
        return _salvage(text, path)
    if sum(len(cal.walk("VEVENT")) for cal in calendars) < expected:
        return _salvage(text, path)  # truncated: icalendar silently drops unterminated components
    return calendars, []


def _salvage(text: str, path: Path) -> tuple[list[Component], list[Skipped]]:
    """Read a damaged calendar one top-level component at a time, so its complete events still count."""
    header: list[str] = []
    blocks: list[tuple[int, str, list[str]]] = []
    problems: list[Skipped] = []
    current: list[str] | None = None
    stack: list[str] = []
    began = 0
    for number, line in _unfolded(text):
        upper = line.strip().upper()
        name = upper.split(":", 1)[1].strip() if upper.startswith(("BEGIN:", "END:")) else ""
        if upper.startswith("BEGIN:") and name != "VCALENDAR":
            if current is not None and name in _TOP_LEVEL:
                problems.append(Skipped(location(path, f"line {began}"), _unterminated(stack[0])))
                current = None
            if current is None:
                current, stack, began = [], [], number
            current.append(line)
            stack.append(name)
        elif upper.startswith("END:"):
            if current is None:
                continue
            if name == "VCALENDAR":
                problems.append(Skipped(location(path, f"line {began}"), _unterminated(stack[0])))
                current = None
                continue
            current.append(line)
            if name in stack:
                del stack[stack.index(name) :]
            if not stack:
                blocks.append((began, current[0].split(":", 1)[1].strip().upper(), current))
                current = None
        elif upper.startswith("BEGIN:"):
            continue
        elif current is not None:
            current.append(line)
        elif _CONTENT_LINE.match(line):
            header.append(line)
    if current is not None:
        problems.append(
            Skipped(location(path, f"line {began}"), f"{_unterminated(stack[0])}: the file ends inside it")
        )
    zones = [lines for _, kind, lines in blocks if kind == "VTIMEZONE"]
    wrap = ["BEGIN:VCALENDAR", *header, *(line for lines in zones for line in lines)]
    others = [(began, kind, lines) for began, kind, lines in blocks if kind != "VTIMEZONE"]
    calendar = _from_lines([*wrap, *(line for _, _, lines in others for line in lines), "END:VCALENDAR"])
    if calendar is None:  # some block is unreadable: take them one by one
        calendar = _from_lines([*wrap, "END:VCALENDAR"]) or Calendar()
        for began, kind, lines in others:
            one = _from_lines([*wrap, *lines, "END:VCALENDAR"])
            if one is None:
                problems.append(Skipped(location(path, f"line {began}"), f"{kind} has an unreadable line"))
            else:
                calendar.subcomponents.extend(c for c in one.subcomponents if c.name != "VTIMEZONE")
    read = sum(1 for c in calendar.subcomponents if c.name != "VTIMEZONE")
    problems.insert(
        0,
        Skipped(
            location(path),
            f"damaged calendar, read component by component: {read} read, "
            f"{len(problems)} incomplete or unreadable (listed below)",
        ),
    )
    return [calendar], problems


def _unterminated(kind: str) -> str:
    return f"{kind} is incomplete (no END:{kind}); the file looks truncated or damaged"


def _unfolded(text: str) -> Iterator[tuple[int, str]]:
    """Logical lines with the number of the physical line each starts on (RFC 5545 3.1 unfolding)."""
    number, parts = 0, list[str]()
    for index, physical in enumerate(text.splitlines(), 1):
        if physical[:1] in (" ", "\t") and parts:
            parts.append(physical[1:])
            continue
        if parts:
            yield number, "".join(parts)
        number, parts = index, [physical]
    if parts:
        yield number, "".join(parts)


def _from_lines(lines: list[str]) -> Component | None:
    try:
        with _quiet():
            return Calendar.from_ical("\r\n".join(lines) + "\r\n")
    except Exception:
        return None


@contextmanager
def _quiet() -> Iterator[None]:
    """icalendar warns when it reads "/vendor/Europe/London" as Europe/London; so do we, on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
        yield


# --- one calendar -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    path: Path
    default_zone: tzinfo
    default_zone_name: str
    calendar_name: str | None
    cancelled: bool
    window_start: datetime
    window_end: datetime


def _calendar(cal: Component, path: Path, start: datetime, end: datetime) -> Parsed:
    wr_zone = _text(cal.get("X-WR-TIMEZONE"))
    zone = _named_zone(wr_zone) if wr_zone else None
    context = _Context(
        path=path,
        default_zone=zone or UTC,
        default_zone_name=zone.key if zone else "UTC",
        calendar_name=_text(cal.get("X-WR-CALNAME")),
        cancelled=(_text(cal.get("METHOD")) or "").upper() == "CANCEL",
        window_start=start,
        window_end=end,
    )
    groups: dict[str, list[Component]] = {}
    for component in cal.subcomponents:
        if component.name in _NOT_EVENTS:
            uid = _text(component.get("UID"))
            where = location(path, f"{component.name} {uid}" if uid else component.name)
            yield Skipped(where, f"{_NOT_EVENTS[component.name]}; calendar import takes events only")
        elif component.name == "VEVENT":
            uid = _text(component.get("UID")) or _synthetic_uid(component)
            groups.setdefault(uid, []).append(component)
    for uid, components in groups.items():
        try:
            yield from _group(uid, components, context)
        except Exception as exc:  # a safety net: one odd event must not stop the rest of the file
            yield Skipped(location(path, f"event {uid}"), f"unreadable event ({type(exc).__name__}: {exc})")


def _group(uid: str, components: list[Component], context: _Context) -> Parsed:
    """All VEVENTs sharing a UID: a one-off event, or a series with its overrides."""
    masters = [c for c in components if "RECURRENCE-ID" not in c]
    overrides = [c for c in components if "RECURRENCE-ID" in c]
    masters.sort(key=_freshness, reverse=True)
    for older in masters[1:]:
        yield Skipped(
            location(context.path, f"event {uid}"),
            f"older copy of the same event (SEQUENCE {_sequence(older)}); the newest one is imported",
        )
    master = masters[0] if masters else None
    if master is not None and _repeats(master):
        yield from _series(uid, master, overrides, context)
        return
    if master is not None:
        yield _one(master, uid, context, occurrence=False)
    for override in overrides:  # a changed occurrence whose series is not in this file
        if _repeats(override):  # e.g. RANGE=THISANDFUTURE with its own RDATEs: it is the series now
            del override["RECURRENCE-ID"]
            yield from _series(uid, override, [], context)
        else:
            yield _one(override, uid, context, occurrence=True)


def _series(uid: str, master: Component, overrides: list[Component], context: _Context) -> Parsed:
    where = location(context.path, f"event {uid}")
    problem = _repair_recurrence(master)
    if problem:
        yield Skipped(
            where, f"repeating event {_title(master)!r}: {problem}; none of its occurrences imported"
        )
        return
    if _start(master) is None:
        yield Skipped(where, _no_start(master))
        return
    series = Calendar()
    if context.default_zone_name != "UTC":
        series.add("X-WR-TIMEZONE", context.default_zone_name)
    series.add("PRODID", "-//aurora//ics import//EN")
    series.add("VERSION", "2.0")
    series.subcomponents.extend([master, *overrides])
    try:
        with _quiet():
            query = recurring_ical_events.of(series)
            occurrences = list(query.between(context.window_start, context.window_end))
    except Exception as exc:
        yield Skipped(
            where,
            f"repeating event {_title(master)!r} could not be expanded ({type(exc).__name__}: {exc}); "
            "none of its occurrences imported",
        )
        return
    for occurrence in occurrences:
        yield _one(occurrence, uid, context, occurrence=True, source=master)


def _one(
    event: Component, uid: str, context: _Context, *, occurrence: bool, source: Component | None = None
) -> Record | Skipped:
    """One event or occurrence. `source` is the series' master for an expanded occurrence."""
    source = source if source is not None else event
    naive, tzid = _source_zone(source)
    start_value = _start(event)
    if start_value is None:
        return Skipped(location(context.path, f"event {uid}"), _no_start(event))
    start = _place(start_value, naive, tzid, context)
    recurrence_id = None
    if occurrence:
        rid_value = _date_value(event.get("RECURRENCE-ID")) or start_value
        recurrence_id = _stamp(_place(rid_value, naive, tzid, context))
    where = location(context.path, f"event {uid}" + (f" at {recurrence_id}" if recurrence_id else ""))
    status = (_text(event.get("STATUS")) or "").upper() or None
    if status == "CANCELLED" or context.cancelled:
        why = "STATUS:CANCELLED" if status == "CANCELLED" else "METHOD:CANCEL"
        return Skipped(where, f"cancelled ({why}): {_title(event)!r} not imported")
    end_value = _end(event, start_value)
    end = _place(end_value, naive, tzid, context) if end_value is not None else None
    ends_at = end.at if end is not None and end.at >= start.at else None
    loc = _text(event.get("LOCATION"))
    extra: dict[str, Any] = {
        "uid": uid if _text(source.get("UID")) else None,
        "location": loc,
        "status": status,
        "all_day": start.all_day,
        "calendar_name": context.calendar_name,
        "timezone": start.zone,
    }
    if recurrence_id is not None:
        extra["recurrence_id"] = recurrence_id
    if start.floating:
        extra["floating"] = True
    if start.fallback:
        extra["tz_fallback"] = start.fallback
    return Record(
        source="ics",
        external_id=f"{uid}#{recurrence_id}" if recurrence_id else uid,
        kind="event",
        title=_title(event),
        body=_body(_text(event.get("DESCRIPTION")), loc),
        occurred_at=start.at,
        ends_at=ends_at,
        participants=_participants(event),
        extra=extra,
    )


# --- times and zones ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _When:
    at: datetime
    zone: str | None
    all_day: bool = False
    floating: bool = False
    fallback: str | None = None


def _place(value: date, naive: bool, tzid: str | None, context: _Context) -> _When:
    """`value` as an aware UTC instant, with how its zone was decided (see the module docstring).

    `naive` and `tzid` describe the source DTSTART: recurring-ical-events localizes floating times into
    X-WR-TIMEZONE itself, so an occurrence no longer shows that it was floating.
    """
    if not isinstance(value, datetime):
        return _When(datetime(value.year, value.month, value.day, tzinfo=UTC), zone=None, all_day=True)
    localized = isinstance(value.tzinfo, ZoneInfo) and value.tzinfo.key == context.default_zone_name
    if value.tzinfo is None or value.utcoffset() is None or (naive and localized):
        wall = value.replace(tzinfo=None)
        if not tzid:
            zone: tzinfo = context.default_zone
            return _When(_utc(wall, zone), zone=context.default_zone_name, floating=True)
        named = _named_zone(tzid)
        if named is not None:
            return _When(_utc(wall, named), zone=named.key)
        fixed = _offset_zone(tzid)
        zone = fixed or context.default_zone
        name = str(fixed) if fixed else context.default_zone_name
        return _When(_utc(wall, zone), zone=name, fallback=tzid)
    tz = value.tzinfo
    if isinstance(tz, ZoneInfo):
        return _When(value.astimezone(UTC), zone=tz.key)
    if isinstance(tz, timezone):
        return _When(value.astimezone(UTC), zone="UTC" if value.utcoffset() == timedelta(0) else str(tz))
    defined = tzid_from_tzinfo(tz) or tzid  # a VTIMEZONE from the file, or another library's zone
    named = _named_zone(defined) if defined else None
    if named is not None:  # "Pacific Standard Time": IANA knows the zone's history, the file one rule
        return _When(_utc(value.replace(tzinfo=None), named), zone=named.key)
    return _When(value.astimezone(UTC), zone=defined)  # a custom VTIMEZONE: the file's own rules


def _utc(wall: datetime, zone: tzinfo) -> datetime:
    return wall.replace(tzinfo=zone).astimezone(UTC)


@lru_cache(maxsize=256)
def _named_zone(name: str) -> ZoneInfo | None:
    """The IANA zone a TZID means: an IANA name, a Windows name, or a vendor-prefixed IANA path."""
    cleaned = name.strip().strip('"').strip()
    bare = cleaned.strip("/")
    candidates = [bare]
    for key in (cleaned.casefold(), re.sub(r"\s+\d+$", "", cleaned).casefold()):  # "... Time 1"
        if key in _WINDOWS_ZONES:
            candidates.append(_WINDOWS_ZONES[key])
    parts = bare.split("/")
    candidates.extend("/".join(parts[i:]) for i in range(1, len(parts)))
    for candidate in candidates:
        if not candidate or not re.fullmatch(r"[A-Za-z0-9_+\-/]+", candidate):
            continue
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            continue
    return None


def _offset_zone(name: str) -> timezone | None:
    """The fixed offset a zone name such as "(UTC-03:00) Brasilia" starts with, if any."""
    match = _OFFSET_IN_NAME.match(name)
    if match is None:
        return None
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    if hours > 14 or minutes >= 60:
        return None
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if sign == "-" else offset)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _stamp(when: _When) -> str:
    return when.at.date().isoformat() if when.all_day else when.at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _dt(prop: Any) -> object:
    """A property's decoded value, or None when absent, unreadable (vBroken) or repeated."""
    if prop is None or isinstance(prop, (str, list)):
        return None
    try:
        return prop.dt
    except Exception:  # icalendar raises its own error for a property it could not parse
        return None


def _date_value(prop: Any) -> date | None:
    value = _dt(prop)
    return value if isinstance(value, date) else None


def _start(event: Component) -> date | None:
    return _date_value(event.get("DTSTART"))


def _no_start(event: Component) -> str:
    raw = event.get("DTSTART")
    shown = f" ({_text(raw)!r} is not a date or time)" if raw is not None else ""
    return f"event {_title(event)!r} has no readable start time (DTSTART){shown}"


def _end(event: Component, start: date) -> date | None:
    end = _date_value(event.get("DTEND"))
    if end is not None:
        return end
    duration = _dt(event.get("DURATION"))
    if isinstance(duration, timedelta):
        return start + duration
    if not isinstance(start, datetime):
        return start + timedelta(days=1)  # RFC 5545 3.6.1: an all-day event without end lasts the day
    return None


def _source_zone(event: Component) -> tuple[bool, str | None]:
    """Whether the DTSTART was naive (floating or an unknown TZID), and its TZID parameter."""
    prop = event.get("DTSTART")
    value = _dt(prop)
    params = getattr(prop, "params", None)
    tzid = params.get("TZID") if params is not None else None
    naive = isinstance(value, datetime) and value.tzinfo is None
    return naive, str(tzid) if tzid else None


# --- recurrence ---------------------------------------------------------------------------------------


def _repeats(event: Component) -> bool:
    return any(name in event for name in ("RRULE", "RDATE"))


def _repair_recurrence(event: Component) -> str | None:
    """Fix what real clients get wrong in RRULE (Exchange CDO writes "BYDAY=MO, TU"); else say why not."""
    broken = {name for name, _ in event.errors if name in (*_RECURRENCE_PROPS, "DTSTART", "RECURRENCE-ID")}
    for name in sorted(broken):
        raw = event.get(name)
        if name == "RRULE" and not isinstance(raw, list):
            cleaned = re.sub(r"\s+", "", _text(raw) or "")
            try:
                event["RRULE"] = vRecur.from_ical(cleaned)
            except Exception:
                return f"its repeat rule RRULE:{_text(raw)} cannot be read"
            event.errors[:] = [error for error in event.errors if error[0] != "RRULE"]
            continue
        if name == "DTSTART":
            continue  # reported as a missing start
        return f"its {name} value {_text(raw)!r} cannot be read"
    return None


def _sequence(event: Component) -> int:
    try:
        return int(str(event.get("SEQUENCE", 0)))
    except ValueError:
        return 0


def _freshness(event: Component) -> tuple[int, str]:
    stamp = _date_value(event.get("LAST-MODIFIED")) or _date_value(event.get("DTSTAMP"))
    return _sequence(event), stamp.isoformat() if stamp is not None else ""


def _synthetic_uid(event: Component) -> str:
    raw = event.get("DTSTART")
    start = raw.to_ical().decode("utf-8", "replace") if hasattr(raw, "to_ical") else ""
    params = getattr(raw, "params", None)
    tzid = str(params.get("TZID", "")) if params is not None else ""
    seed = f"{_text(event.get('SUMMARY')) or ''}\n{tzid}\n{start}"
    return "sha256:" + hashlib.sha256(seed.encode("utf-8")).hexdigest()


# --- text and people ----------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A property as plain text (a repeated property: the first one), None when absent or blank."""
    if value is None:
        return None
    if isinstance(value, list):
        return _text(value[0]) if value else None
    if isinstance(value, str):  # vText, vCalAddress, vBroken: str() is the unescaped text
        text = str(value)
    elif isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    elif hasattr(value, "to_ical"):
        ical = value.to_ical()
        text = ical.decode("utf-8", "replace") if isinstance(ical, bytes) else str(ical)
    else:
        text = str(value)
    text = text.strip()
    return text or None


def _title(event: Component) -> str:
    summary = event.get("SUMMARY")
    text = str(summary[0] if isinstance(summary, list) and summary else summary or "").strip()
    return " ".join(text.split()) or "(no title)"


def _body(description: str | None, loc: str | None) -> str:
    parts = []
    if description:  # some exporters (Podio) escape quotes as \", which RFC 5545 does not define
        parts.append(description.replace("\r\n", "\n").replace('\\"', '"').strip())
    if loc:
        parts.append("Location: " + ", ".join(line.strip() for line in loc.splitlines() if line.strip()))
    return "\n\n".join(parts)


def _participants(event: Component) -> tuple[Participant, ...]:
    people: list[Participant] = []
    roles: tuple[tuple[str, Role], ...] = (("ORGANIZER", "organizer"), ("ATTENDEE", "attendee"))
    for name, role in roles:
        values = event.get(name)
        for value in values if isinstance(values, list) else [values] if values is not None else []:
            person = _person(value, role)
            if person is not None and person not in people:
                people.append(person)
    return tuple(people)


def _person(value: Any, role: Role) -> Participant | None:
    address = str(value).strip()
    if address.lower().startswith("mailto:"):
        address = address[len("mailto:") :]
    email = address.strip().lower() if "@" in address and " " not in address.strip() else ""
    params = getattr(value, "params", None)
    name = str(params.get("CN", "")) if params is not None else ""
    name = name.strip().strip('"').strip()
    if not name and not email:
        return None
    return Participant(name=name, email=email, role=role)
