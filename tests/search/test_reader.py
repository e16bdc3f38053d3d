"""The reader a search result opens: a person shows who they are and their latest interactions."""

from __future__ import annotations

from pathlib import Path

from aurora.app.ingest.pipeline import Importer
from aurora.app.workspace import Workspace


def test_a_person_reads_with_their_latest_interactions(workspace: Workspace, real_data: Path) -> None:
    Importer(workspace).run([real_data / "email" / "mbox"])
    person_id, name = workspace.store.query(
        "SELECT p.id, p.name FROM people AS p JOIN interactions AS x ON x.person_id = p.id "
        "GROUP BY p.id ORDER BY count(*) DESC, p.id LIMIT 1"
    )[0]
    (latest,) = workspace.store.query(
        "SELECT i.title FROM interactions AS x JOIN items AS i ON i.id = x.item_id "
        "WHERE x.person_id = ? ORDER BY x.occurred_at DESC LIMIT 1",
        (person_id,),
    )[0]
    doc = workspace.search.read("person", person_id)
    assert doc.title == name
    assert "@" in doc.meta  # the person's address
    lines = doc.body.split("Recent interactions:\n", 1)[1].splitlines()
    assert lines[0].endswith(str(latest)) and "mail" in lines[0]


def test_a_person_with_no_interactions_says_so(workspace: Workspace, tmp_path: Path) -> None:
    card = tmp_path / "dana.vcf"
    card.write_text(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Dana Scully\r\nEMAIL:dana@example.org\r\nORG:FBI\r\nEND:VCARD\r\n",
        encoding="utf-8",
    )
    Importer(workspace).run([card])
    (person_id,) = workspace.store.query("SELECT id FROM people WHERE name = 'Dana Scully'")[0]
    doc = workspace.search.read("person", str(person_id))
    assert doc.title == "Dana Scully" and "dana@example.org" in doc.meta and "FBI" in doc.meta
    assert doc.body == "No interactions recorded yet."


def test_a_task_from_a_result_follows_up_a_mail_and_is_due_at_a_coming_event(
    workspace: Workspace, tmp_path: Path
) -> None:
    ics = tmp_path / "cal.ics"
    ics.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n"
        "BEGIN:VEVENT\r\nUID:board-1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20991201T140000Z\r\n"
        "DTEND:20991201T150000Z\r\nSUMMARY:Board meeting\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:old-1\r\nDTSTAMP:20200101T000000Z\r\nDTSTART:20200301T090000Z\r\n"
        "DTEND:20200301T100000Z\r\nSUMMARY:Old board review\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        encoding="utf-8",
    )
    Importer(workspace).run([ics])
    hits = {h.title: h for h in workspace.search.query("board")}
    coming = workspace.task_from_result(hits["Board meeting"])
    assert coming.title == "Board meeting" and coming.source == "search:event"
    assert coming.due is not None and (coming.due.year, coming.due.month, coming.due.hour) == (2099, 12, 14)
    past = workspace.task_from_result(hits["Old board review"])
    assert past.due is None  # an event already over gives no due date
    assert "«" not in past.notes and past.notes.startswith("From event ")
    note = workspace.notes.add("Ask Ravi about the «boiler» quote")
    (hit,) = [h for h in workspace.search.query("Ravi") if h.entity_id == note.id]
    assert workspace.task_from_result(hit).title.startswith("Ask Ravi")
