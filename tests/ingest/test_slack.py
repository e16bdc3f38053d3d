"""Slack workspace exports: the real sample export in shared data, a zip of it, and hand-made edge cases."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aurora.app.ingest.records import ParseError, Participant, Record, Skipped
from aurora.app.ingest.slack import parse_slack_export


def _parse(path: Path) -> tuple[list[Record], list[Skipped]]:
    out = list(parse_slack_export(path))
    return [i for i in out if isinstance(i, Record)], [i for i in out if isinstance(i, Skipped)]


@pytest.fixture(scope="module")
def export(real_data: Path) -> Path:
    path = real_data / "slack" / "export_sample"
    if not path.is_dir():
        pytest.skip(f"no Slack export at {path}")
    return path


@pytest.fixture(scope="module")
def real(export: Path) -> dict[str, Record]:
    records, skipped = _parse(export)
    assert skipped == []
    return {r.external_id: r for r in records}


def test_every_message_of_the_real_export_is_a_record(real: dict[str, Record]) -> None:
    per_channel = Counter(r.extra["channel"] for r in real.values())
    assert per_channel == {"enrique": 102, "traveling-sailor": 56}
    assert len(real) == 158  # ids are unique: channel id + ts
    for record in real.values():
        assert record.kind == "message" and record.source == "slack"
        assert record.occurred_at is not None and record.occurred_at.tzinfo is not None
        assert record.title.startswith(f"#{record.extra['channel']}: ")
        assert record.participants and record.participants[0].role == "author"
        assert record.thread_id == record.external_id  # this export has no threads


def test_mentions_render_as_names_and_the_author_is_named(real: dict[str, Record]) -> None:
    message = real["C0JGLMMNX:1452837352.000006"]
    assert (
        message.body
        == "@abilinski: Created an issue for a setup.py so that it can be installed to a standard place"
    )
    assert message.title.startswith("#enrique: @abilinski: Created an issue")
    assert message.participants == (Participant(name="Hamza Faran", role="author"),)
    assert message.occurred_at == datetime(2016, 1, 15, 5, 55, 52, 6, tzinfo=UTC)
    assert message.extra["channel_id"] == "C0JGLMMNX" and message.extra["subtype"] is None
    assert message.extra["bot"] is False and message.extra["system"] is False
    # Slack's escaped quotes and links come out as a person reads them.
    assert real["C0JGLMMNX:1452845924.000009"].body == 'Nope. Just "install" the executor.'
    assert "<" not in real["C0JGLMMNX:1452846025.000011"].body


def test_bot_and_system_messages_are_flagged_not_dropped(real: dict[str, Record]) -> None:
    bot = real["C0JGLMMNX:1454892394.000004"]  # a GitHub integration post with empty text and an attachment
    assert bot.extra["bot"] is True and bot.extra["subtype"] == "bot_message"
    assert "executor with simulated annealing rough draft" in bot.body
    assert bot.participants[0].name == "github"  # learnt from the "added an integration" notice
    join = real["C0JGLMMNX:1452837318.000003"]
    assert join.extra["system"] is True and join.extra["subtype"] == "channel_join"
    assert join.body == "@abilinski has joined the channel"
    flags = Counter((r.extra["bot"], r.extra["system"]) for r in real.values())
    assert flags[(True, False)] == 94 and flags[(False, True)] == 11 and flags[(False, False)] == 53


def test_reactions_and_files(real: dict[str, Record]) -> None:
    assert real["C0JGLMMNX:1459154014.000018"].extra["reactions"] == 1
    upload = real["C0JL6CGQ2:1459052866.000012"]
    assert upload.extra["files"] == ["100_cities.js"] and upload.extra["subtype"] == "file_share"
    assert "100 cities (https://mesos-magellan.slack.com/files/" in upload.body
    comment = next(r for r in real.values() if r.extra["subtype"] == "file_comment")
    assert comment.participants[0].name == "Hermione Granger"  # named only inside "comment"


def test_a_zip_of_the_export_gives_the_same_records(
    export: Path, real: dict[str, Record], tmp_path: Path
) -> None:
    archive = tmp_path / "Mesos Magellan Slack export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(export.rglob("*.json")):
            zf.write(file, f"mesos-magellan/{file.relative_to(export).as_posix()}")  # Slack wraps a folder
    records, skipped = _parse(archive)
    assert skipped == []
    assert {r.external_id: r for r in records} == real


def test_a_folder_wrapping_the_export_and_cut_day_files(export: Path, tmp_path: Path) -> None:
    """An unzipped export sits one folder down; every day file cut short is reported, never raised."""
    copy = shutil.copytree(export, tmp_path / "unzipped" / "Mesos Magellan Slack export")
    records, skipped = _parse(tmp_path / "unzipped")
    assert len(records) == 158 and skipped == []
    days = sorted(copy.glob("*/*.json"))
    for day in days:
        day.write_bytes(day.read_bytes()[: day.stat().st_size * 2 // 3])
    records, skipped = _parse(copy)
    assert records == [] and len(skipped) == len(days) == 17
    assert all("is not valid JSON" in s.reason for s in skipped)


def test_web_api_responses_are_not_an_export(real_data: Path) -> None:
    folder = real_data / "slack" / "web_api_python-slack-sdk"
    if not folder.is_dir():
        pytest.skip("no recorded Web API responses")
    with pytest.raises(ParseError, match="not a Slack export"):
        list(parse_slack_export(folder))


# Hand-made exports ----------------------------------------------------------------------------------------


def _write(folder: Path, files: dict[str, Any]) -> Path:
    for name, content in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return folder


USERS = [
    {
        "id": "U1",
        "name": "dana",
        "real_name": "Dana Scully",
        "profile": {"display_name": "dana.s", "real_name": "Dana Scully", "email": "dana@example.org"},
    },
    {
        "id": "U2",
        "name": "fox",
        "real_name": "Fox Mulder",
        "profile": {"display_name": "", "email": "fox@x.org"},
    },
    {"id": "B9", "name": "deploybot", "is_bot": True, "profile": {"real_name": "Deploy Bot"}},
]
CHANNELS = [{"id": "C1", "name": "general"}, {"id": "C2", "name": "x-files"}]
THREAD = [
    {
        "type": "message",
        "user": "U1",
        "text": "Budget review?\nDetails below",
        "ts": "1700000000.000100",
        "thread_ts": "1700000000.000100",
        "reply_count": 1,
        "reactions": [
            {"name": "+1", "users": ["U2"], "count": 2},
            {"name": "eyes", "users": ["U1"], "count": 1},
        ],
    },
    {
        "type": "message",
        "user": "U2",
        "text": "<@U1> yes, see <#C2|x-files> &amp; <https://example.org|the doc>",
        "ts": "1700000060.000200",
        "thread_ts": "1700000000.000100",
        "parent_user_id": "U1",
    },
    {
        "type": "message",
        "user": "U3",
        "text": "<!here> lunch",
        "ts": "1700000120.000300",
        "user_profile": {"real_name": "Walter Skinner", "display_name": "ws"},
    },
    {
        "type": "message",
        "subtype": "channel_topic",
        "user": "U1",
        "text": "set the topic",
        "ts": "1700000130.0",
    },
    {"type": "message", "user": "B9", "bot_id": "BX", "text": "deployed v2", "ts": "1700000140.000400"},
    {
        "type": "message",
        "subtype": "message_deleted",
        "ts": "1700000150.000500",
        "deleted_ts": "1700000120.000300",
    },
    {
        "type": "message",
        "user": "U1",
        "text": "",
        "ts": "1700000160.000600",
        "files": [{"id": "F1", "name": "budget.xlsx"}, {"id": "F2", "title": "notes"}],
    },
    {"type": "message", "user": "U1", "text": "no ts here"},
    "not a message",
]


def test_threads_mentions_channel_links_and_emails(tmp_path: Path) -> None:
    export = _write(
        tmp_path / "export",
        {
            "users.json": USERS,
            "channels.json": CHANNELS,
            "general/2023-11-14.json": THREAD,
        },
    )
    records, skipped = _parse(export)
    by_ts = {r.external_id.split(":", 1)[1]: r for r in records}
    parent, reply = by_ts["1700000000.000100"], by_ts["1700000060.000200"]
    assert parent.thread_id == reply.thread_id == "C1:1700000000.000100" == parent.external_id
    assert parent.title == "#general: Budget review?" and parent.extra["reactions"] == 3
    assert parent.participants == (Participant(name="Dana Scully", email="dana@example.org", role="author"),)
    assert reply.body == "@dana.s yes, see #x-files & the doc (https://example.org)"
    assert reply.participants[0].email == "fox@x.org"
    assert by_ts["1700000120.000300"].body == "@here lunch"
    assert by_ts["1700000120.000300"].participants[0].name == "Walter Skinner"  # from user_profile
    assert by_ts["1700000130.0"].extra["system"] is True
    assert by_ts["1700000140.000400"].extra["bot"] is True
    assert by_ts["1700000160.000600"].extra["files"] == ["budget.xlsx", "notes"]
    assert by_ts["1700000160.000600"].body == "Shared budget.xlsx, notes"
    reasons = [s.reason for s in skipped]
    assert any("message_deleted" in r for r in reasons)
    assert any("without a timestamp" in r for r in reasons)
    assert any("not a message object" in r for r in reasons)
    assert all("general/2023-11-14.json message" in s.where for s in skipped)


def test_dms_are_named_after_their_members(tmp_path: Path) -> None:
    export = _write(
        tmp_path / "export",
        {
            "users.json": USERS,
            "channels.json": [],
            "dms.json": [{"id": "D1", "members": ["U1", "U2"]}],
            "D1/2023-11-14.json": [
                {"type": "message", "user": "U2", "text": "hi", "ts": "1700000000.000001"}
            ],
        },
    )
    records, _ = _parse(export)
    assert [r.title for r in records] == ["#DM dana.s, Fox Mulder: hi"]
    assert records[0].external_id == "D1:1700000000.000001"


def test_a_missing_users_json_is_reported_and_messages_still_import(tmp_path: Path) -> None:
    export = _write(tmp_path / "export", {"channels.json": CHANNELS, "general/2023-11-14.json": THREAD[:2]})
    records, skipped = _parse(export)
    assert len(records) == 2
    assert skipped[0].reason.startswith("users.json is missing")
    assert records[0].participants[0].name == "U1"
    assert records[1].body.startswith("@U1 yes")


def test_broken_files_are_skipped_with_their_reason(tmp_path: Path) -> None:
    export = _write(
        tmp_path / "export",
        {
            "users.json": '[{"id": "U1", ',  # cut short
            "channels.json": CHANNELS,
            "general/2023-11-14.json": THREAD[:1],
            "general/2023-11-15.json": '[{"type": "message", "text": "cut',
            "general/2023-11-16.json": {"not": "a list"},
            "general/2023-11-17.json": "",
            "x-files/2023-11-14.json": b"\x89PNG\r\n\x1a\n\x00\x00".decode("latin-1"),
            "stray/2023-11-14.json": THREAD[:1],
        },
    )
    records, skipped = _parse(export)
    assert [r.external_id for r in records] == ["C1:1700000000.000100", "stray:1700000000.000100"]
    reasons = {s.where.split("(", 1)[1].rstrip(")"): s.reason for s in skipped}
    assert reasons["users.json"].startswith("users.json is not valid JSON")
    assert "is not valid JSON" in reasons["general/2023-11-15.json"]
    assert "not imported" in reasons["general/2023-11-15.json"]
    assert reasons["general/2023-11-16.json"] == "general/2023-11-16.json is not a list of messages"
    assert reasons["general/2023-11-17.json"].endswith("is empty: that day's messages were not imported")
    assert "x-files/2023-11-14.json" in reasons
    assert "imported with the folder name" in reasons["stray"]


@pytest.mark.parametrize(
    ("name", "content"),
    [("empty.zip", b""), ("binary.zip", bytes(range(256)) * 4), ("export.json", b"[]")],
)
def test_what_is_not_an_export_is_a_parse_error(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ParseError, match="not a Slack export"):
        list(parse_slack_export(path))


def test_an_empty_folder_or_a_zip_without_listings_is_a_parse_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParseError, match=r"no channels\.json or users\.json"):
        list(parse_slack_export(tmp_path / "empty"))
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ParseError, match=r"no channels\.json or users\.json"):
        list(parse_slack_export(archive))
    with pytest.raises(ParseError, match="no such file"):
        list(parse_slack_export(tmp_path / "missing.zip"))


def test_a_truncated_zip_is_a_parse_error(export: Path, tmp_path: Path) -> None:
    whole = Path(shutil.make_archive(str(tmp_path / "whole"), "zip", export))
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ParseError):
        list(parse_slack_export(cut))
