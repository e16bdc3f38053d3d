"""`aurora import` end to end: detection, idempotency, people, a kill half-way, bad paths."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import apsw
import pytest

from aurora.app.errors import ImportFormatError
from aurora.app.ingest.pipeline import Importer
from aurora.app.workspace import Workspace
from aurora.schema import Quadrant

AURORA = Path(sys.executable).parent / "aurora"


def write_mbox(path: Path, count: int, start: datetime = datetime(2026, 9, 1, tzinfo=UTC)) -> None:
    """`count` messages between four people, every third a reply, as one mbox file."""
    people = [("Dana Ruiz", "dana@example.com"), ("Sam Lee", "sam@example.org"),
              ("Priya Nair", "priya@example.net"), ("Maya Chen", "maya@example.com")]  # fmt: skip
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            sender = people[i % 4]
            recipient = people[(i + 1) % 4]
            msg = EmailMessage()
            msg["From"] = f"{sender[0]} <{sender[1]}>"
            msg["To"] = f"{recipient[0]} <{recipient[1]}>"
            msg["Subject"] = f"Budget review {i // 3}"
            msg["Date"] = format_datetime(start + timedelta(hours=i))
            msg["Message-ID"] = f"<m{i}@example.com>"
            if i % 3:
                msg["In-Reply-To"] = f"<m{i - i % 3}@example.com>"
                msg["References"] = f"<m{i - i % 3}@example.com>"
            msg.set_content(f"Message {i}: numbers for the Q{i % 4 + 1} budget are attached.\n")
            text = msg.as_string()
            out.write(f"From {sender[1]} Mon Sep  1 00:00:00 2026\n")
            out.write(text.replace("\nFrom ", "\n>From "))
            out.write("\n\n")


def count(ws: Workspace, table: str) -> int:
    return int(ws.store.query(f"SELECT count(*) FROM {table} WHERE deleted = 0")[0][0])


def test_import_is_idempotent_and_finds_people(workspace: Workspace, tmp_path: Path) -> None:
    mbox = tmp_path / "mail.mbox"
    write_mbox(mbox, 30)
    workspace.settings.me_emails.append("maya@example.com")
    [report] = Importer(workspace).run([mbox])
    assert (report.format, report.new, report.skipped) == ("mbox", 30, [])
    assert count(workspace, "items") == 30
    assert count(workspace, "people") == 3  # one per address, however many mails; not me
    ops = len(workspace.store.operations())
    [again] = Importer(workspace).run([mbox])
    assert (again.new, again.updated, again.unchanged) == (0, 0, 30)
    assert len(workspace.store.operations()) == ops  # not one operation more
    dana = workspace.store.query("SELECT id FROM people WHERE name = 'Dana Ruiz'")[0][0]
    kinds = workspace.store.query("SELECT kind, count(*) FROM interactions WHERE person_id = ? GROUP BY kind",
                                  (dana,))  # fmt: skip
    # Dana wrote to Sam (not an interaction with me), and Maya (me) wrote to Dana: mail out.
    assert dict(kinds) == {"mail_in": 8, "mail_out": 7}


def test_replies_share_a_thread(workspace: Workspace, tmp_path: Path) -> None:
    mbox = tmp_path / "mail.mbox"
    write_mbox(mbox, 6)
    Importer(workspace).run([mbox])
    threads = workspace.store.query("SELECT thread_id, count(*) FROM items GROUP BY thread_id ORDER BY 1")
    assert [n for _, n in threads] == [3, 3]


def test_a_mixed_folder_imports_what_it_can_and_says_why_not_the_rest(
    workspace: Workspace, tmp_path: Path, real_data: Path
) -> None:
    folder = tmp_path / "mixed"
    (folder / "deeper").mkdir(parents=True)
    shutil.copy(real_data / "email" / "tika" / "testRFC822-CC-BCC.eml", folder)
    shutil.copy(real_data / "email" / "mbox" / "tika_testMBOX_complex.mbox", folder / "deeper")
    shutil.copy(real_data / "calendar" / "icalendar" / "google_x-location.ics", folder)
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(200))
    (folder / "empty.eml").write_bytes(b"")
    reports = Importer(workspace).run([folder])
    formats = {Path(r.path).name: r.format for r in reports}
    assert formats["testRFC822-CC-BCC.eml"] == "eml"
    assert formats["tika_testMBOX_complex.mbox"] == "mbox"
    assert formats["google_x-location.ics"] == "ics"
    assert formats["photo.jpg"] == "unknown"
    skipped = [s for r in reports for s in r.skipped]
    assert any("photo.jpg" in s.where for s in skipped)
    assert all(s.reason for s in skipped)
    assert count(workspace, "items") >= 3


def test_a_path_that_is_no_known_format_is_refused_in_one_line(workspace: Workspace, tmp_path: Path) -> None:
    odd = tmp_path / "notes.bin"
    odd.write_bytes(os.urandom(64))
    with pytest.raises(ImportFormatError, match=r"not a format Aurora imports.*--format"):
        Importer(workspace).run([odd])
    with pytest.raises(ImportFormatError, match="does not exist"):
        Importer(workspace).run([tmp_path / "nope.mbox"])
    with pytest.raises(ImportFormatError, match="unknown format"):
        Importer(workspace).run([odd], fmt="pdf")
    assert workspace.store.operations() == []


def test_taskwarrior_tasks_land_on_the_matrix_and_keep_local_moves(
    workspace: Workspace, real_data: Path
) -> None:
    pending = real_data / "tasks" / "taskwarrior_syncall" / "pending.data"
    [report] = Importer(workspace).run([pending])
    assert report.format == "taskwarrior" and report.new > 0
    tasks = workspace.tasks.list_all()
    assert tasks and all(t.source == "taskwarrior" for t in tasks)
    assert any(t.tags for t in tasks)
    moved = workspace.tasks.move(tasks[0].id, Quadrant.DO_FIRST)
    [again] = Importer(workspace).run([pending])
    assert again.new == again.updated == 0
    assert workspace.tasks.get(moved.id).quadrant is Quadrant.DO_FIRST


def test_an_import_killed_half_way_resumes_without_duplicates(tmp_path: Path) -> None:
    mbox = tmp_path / "big.mbox"
    write_mbox(mbox, 3000)
    db = tmp_path / "kill.db"
    env = {**os.environ, "AURORA_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([str(AURORA), "-w", str(db), "import", str(mbox)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    committed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if db.exists():
            try:
                conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
                committed = int(conn.execute("SELECT count(*) FROM items").fetchone()[0])
                conn.close()
            except apsw.Error:
                continue
            if committed >= 400:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the import finished before it could be killed"
    assert 0 < committed < 3000
    again = subprocess.run([str(AURORA), "-w", str(db), "import", "--json", str(mbox)], env=env,
                           capture_output=True, text=True, check=True)  # fmt: skip
    [report] = json.loads(again.stdout)
    assert report["new"] + report["unchanged"] == 3000
    conn = apsw.Connection(str(db))
    assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 3000
    assert (
        conn.execute("SELECT count(DISTINCT entity_id) FROM ops WHERE entity = 'item'").fetchone()[0] == 3000
    )
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_contacts_fill_in_people_and_report_what_changed(workspace: Workspace, tmp_path: Path) -> None:
    card = tmp_path / "dana.vcf"
    vcard = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Dana Ruiz\r\nEMAIL:dana@example.com\r\n"
        "TEL:{tel}\r\nORG:Ruiz Co\r\nEND:VCARD\r\n"
    )
    card.write_text(vcard.format(tel="+1 512 555 0100"))
    [first] = Importer(workspace).run([card])
    [again] = Importer(workspace).run([card])
    card.write_text(vcard.format(tel="+1 512 555 0199"))
    [changed] = Importer(workspace).run([card])
    assert (first.new, again.unchanged, changed.updated) == (1, 1, 1)
    [dana] = workspace.people.ranked()
    assert (dana.name, dana.emails, dana.org) == ("Dana Ruiz", ["dana@example.com"], "Ruiz Co")
