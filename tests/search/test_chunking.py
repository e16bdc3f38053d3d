"""Chunking is pure: an entity's searchable text, cut into overlapping passages at natural boundaries."""

from __future__ import annotations

import itertools
import json
import re
import time

import pytest

from aurora.app.search import chunking
from aurora.app.search.chunking import OVERLAP, SIZE, chunk_text, document
from aurora.app.workspace import Workspace


def _sentences(n: int) -> str:
    return " ".join(f"Sentence number {i} talks about topic {i * 7} at some length." for i in range(n))


def test_short_text_is_one_chunk_and_empty_text_none() -> None:
    assert chunk_text("  Call Dana\n\n about the   invoice ") == ["Call Dana\n\nabout the invoice"]
    assert chunk_text("") == []
    assert chunk_text(" \n\n \t") == []


def test_long_text_is_cut_at_sentences_with_overlap() -> None:
    text = _sentences(60)
    parts = chunk_text(text)
    assert len(parts) > 3
    assert all(len(p) <= SIZE for p in parts)
    assert all(len(p) > SIZE / 2 for p in parts[:-1])  # packed, not one sentence each
    for before, after in itertools.pairwise(parts):
        assert after.startswith("Sentence"), "each chunk starts at a sentence"
        head = after[: after.index(".") + 1]
        assert head in before[-OVERLAP - 1 :], "the next chunk starts with the end of the one before"
    # Nothing is lost: every sentence is whole in at least one chunk.
    for sentence in re.findall(r"Sentence number \d+ [^.]*\.", text):
        assert any(sentence in p for p in parts)


def test_paragraphs_are_kept_together_when_they_fit() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 60 for i in range(8)]
    parts = chunk_text("\n\n".join(paragraphs))
    assert all(len(p) <= SIZE for p in parts)
    for p in parts[1:]:
        assert "Paragraph" in p


def test_a_word_longer_than_a_chunk_is_cut_anywhere() -> None:
    parts = chunk_text("x" * 3000)
    assert all(len(p) <= SIZE for p in parts)
    assert sum(len(p) for p in parts) >= 3000


def test_an_overlap_too_large_is_refused() -> None:
    with pytest.raises(ValueError):
        chunk_text("a", size=100, overlap=60)


def test_what_each_kind_makes_searchable() -> None:
    task = document("task", {"title": "Call Dana", "notes": "re invoice", "tags": '["sales"]',
                             "source": "manual", "created_at": "2026-01-01T00:00:00+00:00"})  # fmt: skip
    assert task is not None and task.text == "Call Dana\n\nre invoice\n\n#sales" and task.source == "manual"
    participants = [{"name": "Ann Lee", "email": "ann@x.org", "role": "from"},
                    {"name": "Bob", "email": "bob@x.org", "role": "to"}]  # fmt: skip
    mail = document("item", {"kind": "mail", "title": "Q3 report", "body": "numbers attached",
                             "participants": json.dumps(participants), "source": "mbox"})  # fmt: skip
    assert mail is not None and mail.text == "Q3 report\n\nFrom: Ann Lee <ann@x.org>\n\nnumbers attached"
    event = document("item", {"kind": "event", "title": "Offsite", "body": "Agenda",
                              "extra": '{"location": "Lisbon\\nPortugal"}'})  # fmt: skip
    assert event is not None and event.text == "Offsite\n\nLocation: Lisbon, Portugal\n\nAgenda"
    already = document("item", {"kind": "event", "title": "Offsite", "body": "Location: Lisbon, Portugal",
                                "extra": '{"location": "Lisbon\\nPortugal"}'})  # fmt: skip
    assert already is not None and already.text.count("Lisbon") == 1
    person = document("person", {"name": "Ann Lee", "emails": '["ann@x.org"]', "org": "Acme",
                                 "job_title": "CFO", "notes": "likes tea"})  # fmt: skip
    assert person is not None and person.text == "Ann Lee\n\nann@x.org\n\nCFO · Acme\n\nlikes tea"
    assert document("note", {"body": "gone", "deleted": 1}) is None


def test_the_update_triggers_watch_exactly_the_columns_chunking_reads(workspace: Workspace) -> None:
    """A column chunking reads but the trigger ignores would leave the index stale; the reverse would
    re-index for nothing (moving a task around the matrix)."""
    for kind, table in chunking.TABLES.items():
        (sql,) = workspace.store.query(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (f"{table}_search_update",)
        )[0]
        watched = re.search(r"UPDATE OF (.*?) ON", sql, re.S)
        assert watched is not None
        assert {c.strip() for c in watched[1].split(",")} == set(chunking.SEARCHED_COLUMNS[kind])


def test_items_end_with_the_day_they_happened_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    mail = document("item", {"kind": "mail", "title": "Hire car", "body": "Pick-up at Geneva airport",
                             "occurred_at": "2019-06-14T23:30:00+00:00"})  # fmt: skip
    assert mail is not None and mail.text.endswith("\n\nWhen: Friday 14 June 2019")
    # The local day: in New York, 23:30 UTC is still the afternoon of the 14th; in Tokyo, the 15th.
    assert chunking.when_line("2019-06-14T23:30:00+00:00", {}) == "When: Friday 14 June 2019"
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert chunking.when_line("2019-06-14T23:30:00+00:00", {}) == "When: Saturday 15 June 2019"
        # An all-day event is stored as midnight UTC of its date, and that date is the fact anywhere.
        assert chunking.when_line("2022-02-22T00:00:00+00:00", {"all_day": True}) == (
            "When: Tuesday 22 February 2022"
        )
    finally:
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()
    assert chunking.when_line(None, {}) == "" and chunking.when_line("not a date", {}) == ""
    task = document("task", {"title": "Call Dana", "created_at": "2026-01-01T00:00:00+00:00"})
    assert task is not None and "When" not in task.text  # tasks and notes: not by when they were typed
