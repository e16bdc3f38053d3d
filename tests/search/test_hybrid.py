"""Reciprocal rank fusion, and the seam where a vector ranker plugs in."""

from __future__ import annotations

import pytest

from aurora.app.search import Filters, Hit, Indexer, rrf, search
from aurora.app.workspace import Workspace


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = dict(rrf([["a", "b", "c"], ["b", "d"]], k=60))
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["d"] == pytest.approx(1 / 62)
    assert [key for key, _ in rrf([["a", "b", "c"], ["b", "d"]])] == ["b", "a", "d", "c"]


def test_rrf_edge_cases() -> None:
    assert rrf([]) == []
    assert rrf([[], []]) == []
    assert rrf([["x", "x", "y"]], k=0) == [("x", 1.0), ("y", 0.5)]  # a repeat counts once, at its best
    assert [k for k, _ in rrf([["a", "b"], ["b", "a"]])] == ["a", "b"]  # a tie keeps first-met order
    with pytest.raises(ValueError):
        rrf([["a"]], k=-1)


def test_without_a_vector_ranker_search_is_keyword_search(workspace: Workspace) -> None:
    task = workspace.tasks.add("Renew the passport before the trip")
    hits = search(workspace.store, "passport")  # indexes what is queued first
    assert [h.entity_id for h in hits] == [task.id]
    assert "«passport»" in hits[0].snippet


def test_a_vector_ranker_is_fused_with_keyword_hits(workspace: Workspace) -> None:
    passport = workspace.tasks.add("Renew the passport before the trip")
    visa = workspace.notes.add("Travel documents: visa appointment on Tuesday")
    Indexer(workspace.store).drain_all()
    asked: list[tuple[str, Filters, int]] = []

    def ranker(query: str, flt: Filters, n: int) -> list[Hit]:
        asked.append((query, flt, n))
        chunk = workspace.store.query("SELECT id, text FROM chunks WHERE entity_id = ?", (visa.id,))[0]
        return [Hit("note", visa.id, chunk[0], 0.9, chunk[1], "", None, None)]

    hits = search(workspace.store, "passport", vector_ranker=ranker, kinds=["task", "note"], limit=5)
    assert {h.entity_id for h in hits} == {passport.id, visa.id}
    assert asked and asked[0][1].kinds == ("task", "note") and asked[0][2] >= 5
    by_id = {h.entity_id: h for h in hits}
    assert "«passport»" in by_id[passport.id].snippet  # the keyword hit keeps its highlighting
    assert by_id[visa.id].title.startswith("Travel documents")
    assert by_id[passport.id].score == pytest.approx(1 / 61)
