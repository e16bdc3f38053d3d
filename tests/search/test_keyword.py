"""Keyword search on real SQLite files: what is written (by the services or an import) is found, with the
match highlighted; edits and deletes follow; filters narrow; no query, however hostile, raises."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from aurora.app.errors import InvalidInputError
from aurora.app.ingest.pipeline import Importer
from aurora.app.search import Hit, Indexer, keyword, keyword_search
from aurora.app.search.keyword import MAX_TOKENS, fts_query, loose_query, match_chunks, words
from aurora.app.workspace import Workspace


def _find(ws: Workspace, query: str, **filters: object) -> list[Hit]:
    Indexer(ws.store).drain_all()
    return keyword_search(ws.store, query, **filters)  # type: ignore[arg-type]


@pytest.fixture
def imported(workspace: Workspace, real_data: Path) -> Workspace:
    """Real mail (Apache Tika's test messages) and real calendars (icalendar's), imported."""
    Importer(workspace).run([real_data / "email" / "tika", real_data / "calendar" / "icalendar"])
    return workspace


def _item(ws: Workspace, title_like: str) -> str:
    rows = ws.store.query("SELECT id FROM items WHERE title LIKE ?", (title_like,))
    assert len(rows) == 1, title_like
    return str(rows[0][0])


def test_tasks_and_notes_are_found_with_the_match_highlighted(workspace: Workspace) -> None:
    task = workspace.tasks.add("Send the invoice to Dana", notes="Q3 numbers", tags=["sales"])
    note = workspace.notes.add("Dana's new desk phone is 4471")
    workspace.tasks.add("Water the plants")
    hits = _find(workspace, "invoice")
    assert [(h.kind, h.entity_id) for h in hits] == [("task", task.id)]
    assert hits[0].snippet == "Send the «invoice» to Dana\n\nQ3 numbers\n\n#sales"
    assert hits[0].title == "Send the invoice to Dana" and hits[0].source == "manual"
    assert {h.entity_id for h in _find(workspace, "dana")} == {task.id, note.id}
    assert [h.entity_id for h in _find(workspace, "#sales")] == [task.id]  # tags are words
    assert [h.title for h in _find(workspace, "desk phone")] == ["Dana's new desk phone is 4471"]


def test_typing_matches_the_last_word_as_a_prefix(workspace: Workspace) -> None:
    task = workspace.tasks.add("Quarterly invoice review")
    assert [h.entity_id for h in _find(workspace, "quarterly inv")] == [task.id]
    assert [h.entity_id for h in _find(workspace, "inv")] == [task.id]
    assert _find(workspace, "inv ") == []  # a space ends the word: "inv" is then whole
    assert fts_query("a b") == '"a" "b"'  # one letter is not worth a prefix scan


def test_a_question_with_extra_words_falls_back_to_any_word(workspace: Workspace) -> None:
    task = workspace.tasks.add("Renew passport")
    assert [h.entity_id for h in _find(workspace, "when must I renew my passport?")] == [task.id]


def test_an_edit_reindexes_and_a_delete_removes(workspace: Workspace) -> None:
    task = workspace.tasks.add("Book flights to Lisbon")
    assert [h.entity_id for h in _find(workspace, "lisbon")] == [task.id]
    workspace.tasks.update(task.id, title="Book trains to Porto")
    assert _find(workspace, "lisbon") == []
    assert [h.snippet for h in _find(workspace, "porto")] == ["Book trains to «Porto»"]
    workspace.tasks.delete(task.id)
    assert _find(workspace, "porto") == []
    assert workspace.store.query("SELECT count(*) FROM chunks WHERE entity_id = ?", (task.id,)) == [(0,)]
    workspace.tasks.undo()  # undeleting puts it back
    assert [h.entity_id for h in _find(workspace, "porto")] == [task.id]


def test_moving_a_task_queues_nothing_but_an_unchanged_chunk_keeps_its_id(workspace: Workspace) -> None:
    from aurora.schema import Quadrant

    task = workspace.tasks.add("Plan the offsite", tags=["team"])
    indexer = Indexer(workspace.store)
    indexer.drain_all()
    (chunk_id,) = workspace.store.query("SELECT id FROM chunks WHERE entity_id = ?", (task.id,))[0]
    with workspace.store.transaction() as tx:
        tx.execute("UPDATE chunks SET embedded_model = 'm' WHERE id = ?", (chunk_id,))
    workspace.tasks.move(task.id, Quadrant.DELEGATE)
    assert indexer.status().queued == 0
    workspace.tasks.update(task.id, urgent=True)  # a field search does not read
    assert indexer.status().queued == 0
    workspace.notes.add("unrelated")
    workspace.tasks.update(task.id, tags=["team", "q3"])
    indexer.drain_all()
    (chunk,) = workspace.store.query("SELECT id, embedded_model FROM chunks WHERE entity_id = ?", (task.id,))
    assert chunk == (chunk_id, None)  # same chunk, new text: to be embedded again
    assert indexer.status().unembedded == 2


def test_imported_mail_and_events_are_found(imported: Workspace) -> None:
    hits = _find(imported, "rfc822 parsed")
    assert [h.title for h in hits] == ["[jira] Commented: (TIKA-461) RFC822 messages not parsed"]
    assert "«RFC822»" in hits[0].snippet and "«parsed»" in hits[0].snippet
    assert hits[0].source == "emlx" and hits[0].occurred_at == "2010-09-06T09:25:34+00:00"
    # Accents are folded both ways: "reservation" finds "réservation", "facturé" finds "Facture".
    sixt = _find(imported, "reservation")
    assert [h.title for h in sixt] == ["Sixt : détails de votre réservation"]
    assert "«réservation»" in sixt[0].snippet
    assert _find(imported, "facturé")[0].title.startswith("Facture à regler")
    # The sender is searchable, and so is the person.
    kinds = {h.kind for h in _find(imported, "Julien Nioche")}
    assert kinds == {"item", "person"}
    # An event's location.
    assert {h.title for h in _find(imported, "happyville")} == {"Daily Sync"}


def test_filters_by_kind_source_person_and_date(imported: Workspace) -> None:
    ws = imported
    task = ws.tasks.add("Reply to Julien about TIKA-461")
    everything = {h.kind for h in _find(ws, "julien")}
    assert everything == {"task", "item", "person"}
    assert [h.entity_id for h in _find(ws, "julien", kinds=["task"])] == [task.id]
    assert {h.kind for h in _find(ws, "julien", kinds=["mail", "person"])} == {"item", "person"}
    assert _find(ws, "julien", kinds=["event"]) == []
    with pytest.raises(InvalidInputError, match="cannot search for kind 'mails'"):
        keyword_search(ws.store, "julien", kinds=["mails"])

    assert [(h.kind, h.source) for h in _find(ws, "julien", source="emlx")] == [("item", "emlx")]
    assert [h.entity_id for h in _find(ws, "julien", source="manual")] == [task.id]
    assert _find(ws, "julien", source="ics") == []
    assert {h.source for h in _find(ws, "test", source="ics", limit=50)} == {"ics"}

    (julien,) = ws.store.query("SELECT id FROM people WHERE name = 'Julien Nioche (JIRA)'")[0]
    jira = _item(ws, "[jira]%")
    assert [h.entity_id for h in _find(ws, "julien", person_id=julien)] == [jira]
    assert [h.entity_id for h in _find(ws, "messages", person_id=julien)] == [jira]
    assert _find(ws, "reservation", person_id=julien) == []
    (rembrand,) = ws.store.query("SELECT person_id FROM person_emails WHERE email = 'rembspam@xs4all.nl'")[0]
    assert [h.title for h in _find(ws, "meeting", person_id=rembrand)] == ["Test meeting from BB"]

    syncs = _find(ws, "daily sync", limit=1000)
    assert len(syncs) > 100
    in_march = _find(ws, "daily sync", since=date(2026, 3, 1), until=date(2026, 4, 1), limit=1000)
    assert len(in_march) == 22  # the weekdays of March 2026
    assert all("2026-03-01" <= (h.occurred_at or "") < "2026-04-01" for h in in_march)
    exact = datetime(2019, 6, 24, 6, 30, tzinfo=UTC)
    assert [h.title for h in _find(ws, "sixt", since=exact, until=exact.replace(minute=31))] == [
        "Sixt : détails de votre réservation"
    ]
    assert _find(ws, "sixt", until=exact) == []  # until is exclusive
    assert _find(ws, "julien", since=date(2030, 1, 1)) == []  # undated rows (people) drop out too


def test_one_hit_per_entity_ranked_by_bm25(workspace: Workspace) -> None:
    filler = " ".join(f"Sentence {i} is about the garden, the weather and the trip." for i in range(60))
    long_note = workspace.notes.add(f"{filler} Somewhere in here the budget comes up. {filler}")
    focused = workspace.tasks.add("Budget: review the budget")
    for title in ("Water the plants", "Call the garage", "Pack for the trip"):
        workspace.tasks.add(title)
    hits = _find(workspace, "budget")
    assert [h.entity_id for h in hits] == [focused.id, long_note.id]
    assert hits[0].score > hits[1].score > 0
    assert workspace.store.query("SELECT count(*) FROM chunks WHERE entity_id = ?", (long_note.id,))[0][0] > 1


HOSTILE = [
    '"',
    '""',
    '"unbalanced',
    "AND OR NOT",
    "NOT",
    "*",
    "**",
    "a*",
    "(((",
    ")",
    "title:foo",
    "text:invoice",
    "NEAR(a b)",
    "NEAR(invoice dana, 2)",
    "invoice AND",
    "^invoice",
    "-invoice",
    "+",
    "{text}: invoice",
    "invoice OR",
    "'; DROP TABLE chunks; --",
    "\x00",
    "\ud800",
    "😀",
    "😀 invoice 🎉",
    "",
    "   \n\t ",
    "\u01c5 \u00df \ufb01 \u00b2 \u216b \u0663 \u3007 \u0301",  # odd letters and digits
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_raise(workspace: Workspace, query: str) -> None:
    workspace.tasks.add("Send the invoice to Dana")
    hits = _find(workspace, query)
    assert isinstance(hits, list)
    if not words(query):
        assert hits == []


def test_a_huge_query_is_cut_and_every_character_is_safe(workspace: Workspace) -> None:
    task = workspace.tasks.add("Send the invoice to Dana")
    huge = "invoice " + 'lorem ipsum (dolor) "sit" amet* NEAR: ' * 3000
    assert len(huge) > 100_000
    assert len(words(huge)) == MAX_TOKENS
    assert [h.entity_id for h in _find(workspace, huge)] == [task.id]  # no page has all 64: any word
    assert [h.entity_id for h in _find(workspace, "invoice " + "😀" * 50_000)] == [task.id]
    # Every code point of the Basic Multilingual Plane, alone and among words, in a few queries.
    for start in range(0, 0x10000, 4096):
        chars = "".join(chr(c) for c in range(start, start + 4096))
        for at in range(0, len(chars), 64):
            piece = chars[at : at + 64]
            assert isinstance(keyword_search(workspace.store, piece), list)
            assert isinstance(keyword_search(workspace.store, "invoice " + " ".join(piece)), list)


def test_an_entity_with_many_matching_chunks_does_not_crowd_out_the_rest(workspace: Workspace) -> None:
    """Unfiltered searches rank the best chunks first; when those are all one entity's, every match is
    ranked, so the limit is still filled with distinct entities."""
    long_note = workspace.notes.add(
        " ".join(f"Garden bed {i} needs compost and garden care." for i in range(400))
    )
    task = workspace.tasks.add("Buy a garden hose and a long list of other things for the house")
    hits = _find(workspace, "garden", limit=2)
    assert (
        workspace.store.query("SELECT count(*) FROM chunks WHERE entity_id = ?", (long_note.id,))[0][0] > 16
    )
    assert {h.entity_id for h in hits} == {long_note.id, task.id}


def test_a_loose_query_keeps_the_rarer_topic_words(workspace: Workspace) -> None:
    for n in range(30):
        workspace.notes.add(f"Weekly meeting notes number {n}")
    workspace.notes.add("Meeting with the Valdobbiadene tax adviser")
    Indexer(workspace.store).drain_all()
    # Function words go; the topic words stay, the rarest first in the budget.
    assert loose_query(workspace.store, "what did the tax adviser say ") == '"tax" OR "adviser" OR "say"'
    assert loose_query(workspace.store, "the of and ") is None
    # A last word still being typed is a prefix, unless punctuation ended it.
    assert loose_query(workspace.store, "tax advi") == '"tax" OR "advi"*'
    assert loose_query(workspace.store, "tax advi.") == '"tax" OR "advi"'
    # Accents: counted as the tokenizer stores them.
    assert loose_query(workspace.store, "Valdobbiadène meeting ") is not None


def test_a_loose_query_stays_within_its_postings_budget(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(40):
        workspace.notes.add(f"Status report {n} for the board")
    workspace.notes.add("Status report on the zeppelin hangar")
    Indexer(workspace.store).drain_all()
    monkeypatch.setattr(keyword, "POSTINGS_BUDGET", 20)
    # "status", "report" and "board" are each in 40 or more chunks: only the rarest word is kept.
    assert loose_query(workspace.store, "status report zeppelin board ") == '"zeppelin"'
    # Every word common: the rarest still stays, so something is searched.
    assert loose_query(workspace.store, "board status ") in ('"board"', '"status"')
    # A half-typed word that begins too many chunks' words is searched whole.
    assert loose_query(workspace.store, "zeppelin sta") == '"zeppelin" OR "sta"'
    hits = match_chunks(workspace.store, '"zeppelin"', keyword.Filters(), 5)
    assert len(hits) == 1 and hits[0].snippet == ""  # undecorated: the caller adds snippets
    assert (
        "«zeppelin»" in keyword.snippets(workspace.store, '"zeppelin"', [hits[0].chunk_id])[hits[0].chunk_id]
    )
