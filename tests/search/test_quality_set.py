"""The labelled search-quality set (`queries.json`): well formed, every label names a document the real data
holds, the queries are paraphrases rather than copies, and keyword search answers enough of them (a floor
that catches a broken index, not a quality goal: `tests/bench/search_quality.py` measures quality)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aurora.app.ingest.pipeline import Importer
from aurora.app.workspace import Workspace
from tests.bench import search_quality as sq

KIND_HINTS = {"mail", "event", "message", "transcript", "task"}
COPY_RUN = 5
"""A query holding this many consecutive words of one of its documents is a copy, not a paraphrase."""
KEYWORD_FLOOR = 0.4
LABEL_SHAPES = ({"source", "external_id", "grade"}, {"source", "series", "grade"}, {"task_external", "grade"})
_WORD = re.compile(r"[^\W_]+")


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return sq.load()


@pytest.fixture
def imported(workspace: Workspace, real_data: Path, data: dict[str, Any]) -> Workspace:
    Importer(workspace).run([real_data / p for p in data["imports"]])
    workspace.search.drain_all()
    return workspace


def test_the_file_is_well_formed(data: dict[str, Any]) -> None:
    assert data["version"] == 1 and data["data"] == "shared/data/real"
    queries = data["queries"]
    assert len(queries) >= 40
    assert len({q["id"] for q in queries}) == len(queries)
    assert len({q["text"].lower() for q in queries}) == len(queries)
    for q in queries:
        assert set(q) == {"id", "text", "kind_hint", "relevant"}, q["id"]
        assert q["text"].strip() and q["kind_hint"] in KIND_HINTS, q["id"]
        assert any(r["grade"] == 2 for r in q["relevant"]), f"{q['id']} has no answer (grade 2)"
        keys = [sq.doc_key(r) for r in q["relevant"]]
        assert len(set(keys)) == len(keys), f"{q['id']} labels a document twice"
        for r in q["relevant"]:
            assert r["grade"] in (1, 2), q["id"]
            assert set(r) in LABEL_SHAPES, q["id"]
    assert {q["kind_hint"] for q in queries} == KIND_HINTS
    assert json.loads(sq.QUERIES.read_text(encoding="utf-8")) == data


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _runs(words: list[str]) -> Iterator[tuple[str, ...]]:
    return (tuple(words[i : i + COPY_RUN]) for i in range(len(words) - COPY_RUN + 1))


def _texts(ws: Workspace, label: dict[str, Any]) -> list[str]:
    """The title and body (a task: title and notes) of each document a label names."""
    if "task_external" in label:
        sql, args = "SELECT title, notes FROM tasks WHERE id = ?", [sq.task_id(label["task_external"])]
    elif "series" in label:
        sql = "SELECT title, body FROM items WHERE source = ? AND external_id LIKE ? ESCAPE '\\'"
        escaped = label["series"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args = [label["source"], escaped + "#%"]
    else:
        sql = "SELECT title, body FROM items WHERE source = ? AND external_id = ?"
        args = [label["source"], label["external_id"]]
    return [f"{title}\n{body}" for title, body in ws.store.query(sql, args)]


def test_labels_resolve_and_queries_are_paraphrases(imported: Workspace, data: dict[str, Any]) -> None:
    judge = sq.Judge(imported.store, data)
    assert judge.missing(data) == []
    copies: list[str] = []
    for q in data["queries"]:
        asked = set(_runs(_words(q["text"])))
        for label in q["relevant"]:
            texts = _texts(imported, label)
            assert texts, f"{q['id']}: {sq.doc_key(label)} is not in the import"
            for text in texts[:1]:  # a series' occurrences share their text
                shared = asked & set(_runs(_words(text)))
                if shared:
                    copies.append(f"{q['id']} copies {' '.join(sorted(shared)[0])!r} of {sq.doc_key(label)}")
    assert copies == []


def test_keyword_search_answers_enough_queries(imported: Workspace, data: dict[str, Any]) -> None:
    judge = sq.Judge(imported.store, data)
    rank = sq.keyword_ranker(imported.store)
    answered = [
        q["id"]
        for q in data["queries"]
        if sq.answered([judge.doc(h.key) for h in rank(q["text"])], sq.grades(q))
    ]
    share = len(answered) / len(data["queries"])
    assert share >= KEYWORD_FLOOR, f"keyword search answers only {share:.0%} of the queries in its top 10"
