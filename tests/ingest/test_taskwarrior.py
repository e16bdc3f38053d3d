"""Taskwarrior 2.x: the real data folders in shared data, and hand-made files with what they lack (due dates,
escapes, annotations, waiting and recurring tasks, `task export` JSON)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aurora.app.ingest.records import Parsed, ParseError, Record, Skipped
from aurora.app.ingest.taskwarrior import parse_taskwarrior


def _split(items: Parsed) -> tuple[list[Record], list[Skipped]]:
    out = list(items)
    return [i for i in out if isinstance(i, Record)], [i for i in out if isinstance(i, Skipped)]


@pytest.fixture(scope="module")
def tasks_dir(real_data: Path) -> Path:
    path = real_data / "tasks"
    if not path.is_dir():
        pytest.skip(f"no Taskwarrior data at {path}")
    return path


def test_every_real_task_file_reads_without_error(tasks_dir: Path) -> None:
    for file in sorted(tasks_dir.rglob("*.data")):
        if file.name == "undo.data":
            with pytest.raises(ParseError, match="undo log, not a task list"):
                list(parse_taskwarrior(file))
            continue
        records, skipped = _split(parse_taskwarrior(file))
        assert records and skipped == [], file
        for record in records:
            assert record.kind == "task" and record.source == "taskwarrior"
            assert record.occurred_at is not None and record.occurred_at.tzinfo is not None
            assert record.extra["status"] in {"pending", "completed", "deleted"}


def test_the_syncall_folder(tasks_dir: Path) -> None:
    records, skipped = _split(parse_taskwarrior(tasks_dir / "taskwarrior_syncall"))
    assert skipped == []
    by_title = {r.title: r for r in records}
    assert list(by_title) == ["Task 1", "Task 2", "Task 3", "Task 4", "Spam", "Spam spam", "Spam spam spam"]
    task1 = by_title["Task 1"]
    assert task1.external_id == "633f273c-7da4-4b11-a3fe-5fa51b2eadaa"
    assert task1.occurred_at == datetime(2019, 8, 24, 17, 58, 53, tzinfo=UTC)
    assert task1.extra["tags"] == ["remindme"] and task1.extra["priority"] == "H"
    assert (
        task1.extra["status"] == "pending" and task1.extra["due"] is None and task1.extra["project"] is None
    )
    assert by_title["Task 2"].extra["priority"] == "L" and by_title["Spam"].extra["tags"] == []
    done = by_title["Spam spam spam"]
    assert done.extra["status"] == "completed" and done.extra["end"] == "2019-08-24T18:00:52+00:00"
    deleted = by_title["Spam spam"]
    assert deleted.extra["status"] == "deleted"  # imported: the pipeline decides


def test_backlog_keeps_each_tasks_last_change(tasks_dir: Path) -> None:
    folder = tasks_dir / "taskwarrior_syncall"
    from_backlog, _ = _split(parse_taskwarrior(folder / "backlog.data"))
    from_data, _ = _split(parse_taskwarrior(folder))
    # 23 journal lines, 7 tasks; renamed "urgency" -> "Task" -> "Task 1" and ends as the data files say.
    assert len(from_backlog) == 7
    assert {r.external_id: (r.title, r.extra) for r in from_backlog} == {
        r.external_id: (r.title, r.extra) for r in from_data
    }


def test_the_go_taskwarrior_folder(tasks_dir: Path) -> None:
    records, _ = _split(parse_taskwarrior(tasks_dir / "taskwarrior_go-taskwarrior"))
    assert [(r.title, r.extra["project"], r.extra["status"]) for r in records] == [
        ("Write tests", "go-taskwarrior", "pending"),
        ("Add hooks for hugo integration", "go-taskwarrior", "pending"),
        ("Test Hugo and taskwarrior integration", "personal", "completed"),
    ]
    assert records[2].extra["end"] == "2018-01-02T12:43:38+00:00"


def test_real_files_cut_anywhere_skip_only_the_cut_line(tasks_dir: Path, tmp_path: Path) -> None:
    for file in sorted(tasks_dir.rglob("*.data")):
        if file.name == "undo.data":
            continue
        data = file.read_bytes()
        whole = len(list(parse_taskwarrior(file)))
        for size in range(0, len(data), max(1, len(data) // 20)):
            cut = tmp_path / file.name
            cut.write_bytes(data[:size])
            records, skipped = _split(parse_taskwarrior(cut))
            assert len(skipped) <= 1 and len(records) <= whole
            assert all("line" in s.where for s in skipped)


PENDING = (
    '[annotation_1709563600:"Left a voicemail\\nretry &open;Tue&close;" '
    'description:"Call Dana re: \\"budget\\" '
    '&open;Q3&close; \\/ forecast" due:"1709650800" entry:"1709560000" modified:"1709560000" priority:"H" '
    'project:"work.finance" status:"pending" tags:"call,finance" '
    'uuid:"5A1F6A2E-6C55-4F2B-9C1E-1D2A3B4C5D6E"]\n'
    '[description:"Renew passport" entry:"1709560000" status:"waiting" wait:"1710061200" '
    'uuid:"7c0f7a59-4b0e-4a8e-9c8e-5d8c0b8a1f11"]\n'
    '[description:"Water the plants" due:"1709746200" entry:"1709560000" mask:"--" recur:"weekly" '
    'status:"recurring" uuid:"0e8d1a7b-2f66-4b1a-9a43-3c1f0c9d8e77"]\n'
    '[description:"Old format quote &dquot;here&dquot;" entry:"1709560000" status:"pending" '
    'uuid:"c1c2c3c4-d1d2-e1e2-f1f2-a1a2a3a4a5a6"]\n'
    "\n"
    '[description:"no uuid" entry:"1709560000" status:"pending"]\n'
    '[description:"unterminated entry:"1709560000"]\n'
    "this is not a task\n"
    '[description:"cut short" entry:"17095'
)


def test_due_dates_tags_escapes_and_annotations(tmp_path: Path) -> None:
    path = tmp_path / "pending.data"
    path.write_text(PENDING, encoding="utf-8")
    records, skipped = _split(parse_taskwarrior(path))
    call, passport, plants, quote = records
    assert call.title == 'Call Dana re: "budget" [Q3] / forecast'
    assert call.external_id == "5a1f6a2e-6c55-4f2b-9c1e-1d2a3b4c5d6e"
    assert call.extra["due"] == "2024-03-05T15:00:00+00:00"
    assert call.extra["tags"] == ["call", "finance"] and call.extra["project"] == "work.finance"
    assert call.occurred_at == datetime(2024, 3, 4, 13, 46, 40, tzinfo=UTC)
    assert call.body == "2024-03-04: Left a voicemail\nretry [Tue]"
    assert passport.extra["status"] == "waiting" and passport.extra["wait"] == "2024-03-10T09:00:00+00:00"
    assert plants.extra["status"] == "recurring" and plants.extra["recur"] == "weekly"
    assert plants.extra["due"] == "2024-03-06T17:30:00+00:00"
    assert quote.title == 'Old format quote "here"'
    assert [(s.where.rsplit("(", 1)[1], s.reason) for s in skipped] == [
        ("line 6)", "a task without a uuid: left out"),
        ("line 7)", 'line 7 is not a Taskwarrior task line ([name:"value" ...])'),
        ("line 8)", "line 8 is not a Taskwarrior task ('this is not a task')"),
        ("line 9)", 'line 9 is not a Taskwarrior task (\'[description:"cut short" entry:"17095\')'),
    ]


EXPORT = """[
{"id":1,"description":"Send the board deck","due":"20240305T150000Z","entry":"20240304T134640Z",
 "modified":"20240304T134640Z","status":"pending","tags":["board"],"project":"work","priority":"M",
 "uuid":"11111111-2222-4333-8444-555555555555","urgency":9.1,
 "annotations":[{"entry":"20240304T144640Z","description":"draft in Drive"}],
 "depends":["22222222-2222-4333-8444-555555555555"]},
{"id":0,"description":"Book flights","end":"20240306T100000Z","entry":"20240301T080000Z",
 "modified":"20240306T100000Z","status":"completed","uuid":"22222222-2222-4333-8444-555555555555"}
]
"""


def test_task_export_json(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(EXPORT, encoding="utf-8")
    records, skipped = _split(parse_taskwarrior(path))
    deck, flights = records
    assert skipped == []
    assert deck.extra["due"] == "2024-03-05T15:00:00+00:00" and deck.extra["tags"] == ["board"]
    assert deck.extra["depends"] == ["22222222-2222-4333-8444-555555555555"]
    assert deck.body == "2024-03-04: draft in Drive"
    assert flights.extra["status"] == "completed" and flights.extra["end"] == "2024-03-06T10:00:00+00:00"
    # Older `task export` wrote one object per line with trailing commas.
    lines = tmp_path / "old-export.json"
    lines.write_text(
        '{"description":"A","entry":"20240301T080000Z","status":"pending","uuid":"aaaaaaaa-0000-4000-8000-000000000001"},\n'
        '{"description":"B","entry":"20240301T080000Z","status":"pending","uuid":"aaaaaaaa-0000-4000-8000-000000000002"}\n'
        '{"description":"C", "entry":\n',
        encoding="utf-8",
    )
    records, skipped = _split(parse_taskwarrior(lines))
    assert [r.title for r in records] == ["A", "B"]
    assert len(skipped) == 1 and "line 3 is not valid JSON" in skipped[0].reason


def test_a_cut_export_array_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(EXPORT[: len(EXPORT) // 2], encoding="utf-8")
    with pytest.raises(ParseError, match=r"not valid JSON .*was it cut short"):
        list(parse_taskwarrior(path))


def test_empty_binary_and_foreign_files(tmp_path: Path) -> None:
    empty = tmp_path / "pending.data"
    empty.write_bytes(b"")
    assert list(parse_taskwarrior(empty)) == []  # no tasks is a real state
    binary = tmp_path / "completed.data"
    binary.write_bytes(b"SQLite format 3\x00" + bytes(100))
    with pytest.raises(ParseError, match="binary data"):
        list(parse_taskwarrior(binary))
    # In a folder, one unreadable file is reported and the other still imports.
    empty.write_text(PENDING.split("\n", 1)[0] + "\n", encoding="utf-8")
    records, skipped = _split(parse_taskwarrior(tmp_path))
    assert [r.title for r in records] == ['Call Dana re: "budget" [Q3] / forecast']
    assert len(skipped) == 1 and "completed.data" in skipped[0].where and "binary" in skipped[0].reason
    (tmp_path / "other").mkdir()
    with pytest.raises(ParseError, match="not a Taskwarrior data folder"):
        list(parse_taskwarrior(tmp_path / "other"))
    with pytest.raises(ParseError, match="cannot be read"):
        list(parse_taskwarrior(tmp_path / "missing.data"))
