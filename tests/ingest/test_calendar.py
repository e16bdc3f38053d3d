"""The .ics importer against the real calendars in shared/data/real/calendar, plus the cases those files
lack (EXDATE, a moved occurrence, floating times) and damaged input."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aurora.app.ingest.calendar import parse_ics
from aurora.app.ingest.records import ParseError, Participant, Record, Skipped

WIDE = (datetime(2010, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture
def calendars(real_data: Path) -> Path:
    return real_data / "calendar" / "icalendar"


def parse(path: Path, start: datetime = WIDE[0], end: datetime = WIDE[1]) -> list[Record | Skipped]:
    return list(parse_ics(path, start, end))


def records(path: Path, start: datetime = WIDE[0], end: datetime = WIDE[1]) -> list[Record]:
    return [item for item in parse(path, start, end) if isinstance(item, Record)]


def only(path: Path) -> Record:
    found = records(path)
    assert len(found) == 1, found
    return found[0]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def write(tmp_path: Path, text: str, name: str = "cal.ics") -> Path:
    path = tmp_path / name
    path.write_text(text.replace("\n", "\r\n"), encoding="utf-8")
    return path


# --- every real file ----------------------------------------------------------------------------------


def test_every_real_calendar_yields_records_or_reasons(calendars: Path) -> None:
    files = sorted(calendars.rglob("*.ics"))
    assert len(files) >= 14
    total = 0
    for path in files:
        items = parse(path)
        assert items, f"{path.name}: nothing yielded, not even a reason"
        for item in items:
            if isinstance(item, Skipped):
                assert item.reason.strip() and str(path) in item.where
                continue
            total += 1
            assert (item.source, item.kind) == ("ics", "event")
            assert item.external_id and item.title
            assert item.occurred_at is not None and item.occurred_at.utcoffset() is not None
            assert item.ends_at is None or item.ends_at >= item.occurred_at
            assert isinstance(item.extra["all_day"], bool)
        ids = [i.external_id for i in items if isinstance(i, Record)]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate external ids"
        assert ids == [i.external_id for i in parse(path) if isinstance(i, Record)], "ids not stable"
    assert total > 50


def test_files_without_events_say_why(calendars: Path) -> None:
    (freebusy,) = parse(calendars / "davmail_freebusy-periods.ics")
    assert isinstance(freebusy, Skipped) and "VFREEBUSY" in freebusy.reason
    (nothing,) = parse(calendars / "ical4j_empty-rdate.ics")
    assert isinstance(nothing, Skipped) and "no events" in nothing.reason


# --- recurrence ---------------------------------------------------------------------------------------


def test_weekly_series_is_expanded_in_the_window_across_a_dst_change(calendars: Path) -> None:
    # Google: "Daily Sync", 14:00 Europe/Zurich, RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR, no end.
    window = (utc(2016, 10, 24), utc(2016, 11, 7))
    found = records(calendars / "google_x-location.ics", *window)
    assert [r.occurred_at for r in found] == [
        utc(2016, 10, 28, 12),  # Friday, still summer time (UTC+2)
        utc(2016, 10, 31, 13),  # Monday after the change: 14:00 local is now 13:00 UTC
        utc(2016, 11, 1, 13),
        utc(2016, 11, 2, 13),
        utc(2016, 11, 3, 13),
        utc(2016, 11, 4, 13),
    ]
    first = found[0]
    assert first.title == "Daily Sync"
    assert first.ends_at == utc(2016, 10, 28, 12, 30)
    assert first.external_id == "BFE33ADD-5553-48B5-B5A5-F9DA5CA4C393#2016-10-28T12:00:00Z"
    assert first.extra["recurrence_id"] == "2016-10-28T12:00:00Z"
    assert first.extra["calendar_name"] == "ITC"
    assert first.extra["timezone"] == "Europe/Zurich"
    assert first.body == "Some Description\n\nLocation: Roadstar 16, 12764 Happyville, Denmark"
    assert first.extra["location"] == "Roadstar 16\n12764 Happyville\nDenmark"


def test_exchange_rrule_with_spaces_is_repaired_and_ends_at_until(calendars: Path) -> None:
    # Exchange CDO writes BYDAY=MO, TU, WE, TH, FR (spaces), no UID, and a custom VTIMEZONE name.
    found = records(calendars / "exchange-cdo_missing-event.ics", utc(2015, 1, 1), utc(2016, 1, 1))
    days = [r.occurred_at.date().isoformat() for r in found if r.occurred_at]
    assert days[0] == "2015-07-03" and days[-1] == "2015-07-22" and len(days) == 14
    assert all(r.occurred_at and r.occurred_at.weekday() < 5 for r in found)
    assert {r.occurred_at.time() for r in found if r.occurred_at} == {utc(2015, 7, 3, 8).time()}  # 10:00 +02
    assert all(r.external_id.startswith("sha256:") and r.extra["uid"] is None for r in found)
    assert len({r.external_id for r in found}) == 14


def test_orphan_this_and_future_override_expands_its_rdate_periods(calendars: Path) -> None:
    # khal: RECURRENCE-ID;RANGE=THISANDFUTURE without its series, RDATE;VALUE=PERIOD weekly to July 31.
    found = records(calendars / "khal_rdate-period-tzid.ics", utc(2018, 1, 1), utc(2019, 1, 1))
    assert len(found) == 19
    assert found[0].occurred_at == utc(2018, 3, 27, 13)  # 08:00 America/Chicago (CDT)
    assert found[0].ends_at == utc(2018, 3, 27, 14)
    assert found[-1].occurred_at == utc(2018, 7, 31, 13)
    assert found[0].participants == (Participant(name="XYZ", email="xyz@xyz.com", role="attendee"),)


def test_recurring_events_outside_the_window_are_not_imported_but_single_ones_are(calendars: Path) -> None:
    window = (utc(2030, 1, 1), utc(2030, 1, 8))
    assert len(records(calendars / "google_x-location.ics", *window)) == 5  # endless: only this week
    assert records(calendars / "exchange-cdo_missing-event.ics", *window) == []  # ended in 2015
    assert only(calendars / "sixt-rental_reservation.ics").occurred_at == utc(2019, 6, 24, 6, 30)


SERIES = """BEGIN:VCALENDAR
VERSION:2.0
X-WR-CALNAME:Team
BEGIN:VEVENT
UID:weekly-1
SUMMARY:Weekly review
DTSTART;TZID=Europe/Berlin:20240101T100000
DTEND;TZID=Europe/Berlin:20240101T110000
RRULE:FREQ=WEEKLY;COUNT=5
EXDATE;TZID=Europe/Berlin:20240108T100000
ORGANIZER;CN=Ana Lima:mailto:Ana@Example.com
ATTENDEE;CN="Bo Chen";PARTSTAT=ACCEPTED:MAILTO:bo@example.com
END:VEVENT
BEGIN:VEVENT
UID:weekly-1
RECURRENCE-ID;TZID=Europe/Berlin:20240115T100000
SUMMARY:Weekly review (moved)
DTSTART;TZID=Europe/Berlin:20240115T143000
DTEND;TZID=Europe/Berlin:20240115T153000
END:VEVENT
BEGIN:VEVENT
UID:weekly-1
RECURRENCE-ID;TZID=Europe/Berlin:20240122T100000
SUMMARY:Weekly review
STATUS:CANCELLED
DTSTART;TZID=Europe/Berlin:20240122T100000
END:VEVENT
END:VCALENDAR
"""


def test_exdate_override_and_cancelled_occurrence(tmp_path: Path) -> None:
    items = parse(write(tmp_path, SERIES), utc(2024, 1, 1), utc(2024, 3, 1))
    found = [i for i in items if isinstance(i, Record)]
    assert [r.occurred_at for r in found] == [
        utc(2024, 1, 1, 9),
        utc(2024, 1, 15, 13, 30),
        utc(2024, 1, 29, 9),
    ]
    assert utc(2024, 1, 8, 9) not in [r.occurred_at for r in found]  # EXDATE
    moved = found[1]
    assert moved.title == "Weekly review (moved)" and moved.ends_at == utc(2024, 1, 15, 14, 30)
    assert moved.external_id == "weekly-1#2024-01-15T09:00:00Z"  # the original slot: stable across moves
    assert moved.extra["recurrence_id"] == "2024-01-15T09:00:00Z"
    cancelled = [i for i in items if isinstance(i, Skipped)]
    assert len(cancelled) == 1 and "CANCELLED" in cancelled[0].reason and "2024-01-22" in cancelled[0].where
    assert found[0].participants == (
        Participant(name="Ana Lima", email="ana@example.com", role="organizer"),
        Participant(name="Bo Chen", email="bo@example.com", role="attendee"),
    )


# --- times and zones ----------------------------------------------------------------------------------


def test_all_day_event(calendars: Path) -> None:
    event = only(calendars / "blackberry-bis_property-params.ics")
    assert event.extra["all_day"] is True
    assert event.occurred_at == utc(2012, 8, 14) and event.ends_at == utc(2012, 8, 15)
    assert event.external_id == "XRIMCAL-628059586-522954492-9750559"


@pytest.mark.parametrize(
    ("name", "at", "zone"),
    [
        ("exchange2010_unquoted-tzid.ics", utc(2024, 10, 28, 21), "America/New_York"),  # Eastern, EDT
        ("exchange2010_timezone-same-start.ics", utc(2017, 2, 24, 20), "America/Los_Angeles"),  # PST
    ],
)
def test_windows_time_zone_names_land_on_the_right_instant(
    calendars: Path, name: str, at: datetime, zone: str
) -> None:
    event = only(calendars / name)
    assert event.occurred_at == at and event.extra["timezone"] == zone
    assert "tz_fallback" not in event.extra


def test_custom_vtimezone_keeps_the_files_own_rules(calendars: Path) -> None:
    event = only(calendars / "non-ascii-tzid.ics")  # TZID "(UTC-03:00) Brasília", no UID, no SUMMARY
    assert event.occurred_at == utc(2017, 5, 11, 16, 30) and event.ends_at == utc(2017, 5, 11, 17)
    assert event.extra["timezone"] == "(UTC-03:00) Brasília"
    assert event.title == "(no title)" and event.external_id.startswith("sha256:")


def test_zones_from_real_clients(calendars: Path) -> None:
    android = only(calendars / "etar-android_alarm.ics")  # DTSTART in Europe/London, DTEND in UTC
    assert android.occurred_at == utc(2024, 10, 5, 12) and android.ends_at == utc(2024, 10, 5, 13)
    thunderbird = only(calendars / "thunderbird_alarm-snoozed.ics")  # a 90-block VTIMEZONE
    assert (
        thunderbird.occurred_at == utc(2024, 10, 23, 14) and thunderbird.extra["timezone"] == "Europe/London"
    )
    google = only(calendars / "google_alarm.ics")
    assert (
        google.occurred_at == utc(2024, 10, 4, 18, 15) and google.extra["calendar_name"] == "Nicco Kunzmann"
    )


def test_floating_and_unknown_zones(tmp_path: Path) -> None:
    text = """BEGIN:VCALENDAR
VERSION:2.0
{header}BEGIN:VEVENT
UID:floating
SUMMARY:Dentist
DTSTART:20240305T090000
END:VEVENT
BEGIN:VEVENT
UID:mars
SUMMARY:Olympus
DTSTART;TZID=Mars/Olympus:20240305T090000
END:VEVENT
BEGIN:VEVENT
UID:windows
SUMMARY:Windows name, no VTIMEZONE
DTSTART;TZID=W. Europe Standard Time:20240305T090000
END:VEVENT
BEGIN:VEVENT
UID:display-name
SUMMARY:Outlook display name
DTSTART;TZID="(UTC+05:30) Chennai, Kolkata":20240305T090000
END:VEVENT
END:VCALENDAR
"""
    plain = {r.external_id: r for r in records(write(tmp_path, text.format(header=""), "a.ics"))}
    assert plain["floating"].occurred_at == utc(2024, 3, 5, 9) and plain["floating"].extra["floating"] is True
    assert plain["mars"].occurred_at == utc(2024, 3, 5, 9)
    assert plain["mars"].extra["tz_fallback"] == "Mars/Olympus"
    assert plain["display-name"].occurred_at == utc(2024, 3, 5, 3, 30)
    assert plain["windows"].occurred_at == utc(2024, 3, 5, 8)
    assert plain["windows"].extra["timezone"] == "Europe/Berlin"
    zoned = {
        r.external_id: r
        for r in records(write(tmp_path, text.format(header="X-WR-TIMEZONE:America/New_York\n"), "b.ics"))
    }
    assert zoned["floating"].occurred_at == utc(2024, 3, 5, 14) and zoned["floating"].extra["floating"]
    assert zoned["mars"].occurred_at == utc(2024, 3, 5, 14) and zoned["mars"].extra["tz_fallback"]


# --- text and people ----------------------------------------------------------------------------------


def test_attendees_with_names_and_emails(calendars: Path) -> None:
    event = only(calendars / "blackberry-bis_property-params.ics")
    assert event.participants == (
        Participant(name="", email="rembrand@daxlab.com", role="organizer"),
        Participant(name="RembrandXS", email="rembrand@xs4all.nl", role="attendee"),
        Participant(name="RembrandDX", email="rembrand@daxlab.com", role="attendee"),
        Participant(name="RembrandSB", email="rembspam@xs4all.nl", role="attendee"),
    )


def test_non_ascii_text_location_and_quirky_escapes(calendars: Path) -> None:
    sixt = only(calendars / "sixt-rental_reservation.ics")
    assert sixt.title == "Sixt : détails de votre réservation"
    assert sixt.body.startswith("Votre véhicule avec le numéro de réservation")
    assert sixt.body.endswith(
        "Location: Sixt Genève Aéroport secteur France, AP de Genève Cointrin Sect(F), "
        "01210 Ferney-Voltaire, FR"
    )
    assert sixt.extra["status"] == "CONFIRMED"
    podio = only(calendars / "podio_export.ics")
    assert podio.title == 'Termin 4353 und"so"'
    assert podio.body == 'Toller Termin fürmal zu"gucken"und so\n\nLocation: online'
    assert podio.extra["calendar_name"] == "view52593586"


# --- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"   \r\n\r\n", "empty file"),
        (b"Dear team,\nthe meeting is on Monday.\n", "not an iCalendar file"),
        (b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ana\r\nEND:VCARD\r\n", "not an iCalendar file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary"),
    ],
)
def test_not_icalendar_raises_parse_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.ics"
    path.write_bytes(content)
    with pytest.raises(ParseError, match=message):
        parse(path)


def test_missing_file_raises_parse_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="cannot be read"):
        parse(tmp_path / "gone.ics")


def test_truncated_file_keeps_complete_events_and_says_what_was_cut(calendars: Path, tmp_path: Path) -> None:
    raw = (calendars / "sixt-rental_reservation.ics").read_bytes()
    cut = tmp_path / "cut.ics"
    cut.write_bytes(raw[: raw.index(b"LOCATION:")])  # ends inside the VEVENT
    items = parse(cut)
    assert not [i for i in items if isinstance(i, Record)]
    reasons = " | ".join(i.reason for i in items if isinstance(i, Skipped))
    assert "truncated" in reasons and "VEVENT" in reasons and "VFREEBUSY" in reasons

    two = SERIES.replace("END:VCALENDAR\n", "") + "BEGIN:VEVENT\nUID:cut-off\nSUMMARY:Half an ev"
    items = parse(write(tmp_path, two), utc(2024, 1, 1), utc(2024, 3, 1))
    assert len([i for i in items if isinstance(i, Record)]) == 3  # the complete series still comes in
    assert any(isinstance(i, Skipped) and "ends inside" in i.reason for i in items)


def test_unreadable_start_and_broken_lines_are_skipped_not_raised(tmp_path: Path) -> None:
    text = """BEGIN:VCALENDAR
VERSION:2.0
BEGIN:VEVENT
UID:bad-start
SUMMARY:No start
DTSTART:next tuesday
END:VEVENT
BEGIN:VEVENT
UID:bad-rule
SUMMARY:Bad rule
DTSTART:20240101T100000Z
RRULE:FREQ=SOMETIMES;BYDAY=XX
END:VEVENT
BEGIN:VEVENT
UID:fine
SUMMARY:Fine
DTSTART:20240101T100000Z
END:VEVENT
BEGIN:VTODO
UID:todo
SUMMARY:Buy milk
END:VTODO
END:VCALENDAR
"""
    items = parse(write(tmp_path, text))
    assert [i.external_id for i in items if isinstance(i, Record)] == ["fine"]
    reasons = {i.where.rsplit(" ", 1)[-1].rstrip(")"): i.reason for i in items if isinstance(i, Skipped)}
    assert "no readable start" in reasons["bad-start"] and "'next tuesday'" in reasons["bad-start"]
    assert "RRULE" in reasons["bad-rule"]
    assert "VTODO" in reasons["todo"]


def test_older_copies_of_an_event_give_way_to_the_newest(tmp_path: Path) -> None:
    text = """BEGIN:VCALENDAR
VERSION:2.0
BEGIN:VEVENT
UID:update
SEQUENCE:1
SUMMARY:Lunch
DTSTART:20240101T120000Z
END:VEVENT
BEGIN:VEVENT
UID:update
SEQUENCE:2
SUMMARY:Lunch (later)
DTSTART:20240101T130000Z
END:VEVENT
END:VCALENDAR
"""
    items = parse(write(tmp_path, text))
    (record,) = [i for i in items if isinstance(i, Record)]
    assert record.title == "Lunch (later)" and record.occurred_at == utc(2024, 1, 1, 13)
    assert any(isinstance(i, Skipped) and "older copy" in i.reason for i in items)


def test_vendor_prefixed_tzid_and_legacy_encodings(tmp_path: Path) -> None:
    title = "Caf\xe9 \u2013 Stand-up"  # an e-acute and an en dash: both exist in cp1252
    text = (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:lightning\r\nSUMMARY:{title}\r\n"
        "DTSTART;TZID=/mozilla.org/20050126_1/Europe/London:20240601T100000\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    for encoding in ("utf-8", "cp1252", "utf-16"):
        path = tmp_path / f"{encoding}.ics"
        path.write_bytes(text.encode(encoding))
        event = only(path)
        assert event.title == title and event.occurred_at == utc(2024, 6, 1, 9)
        assert event.extra["timezone"] == "Europe/London"
