"""The fusions (score and reciprocal rank), and the seam where a vector ranker plugs in."""

from __future__ import annotations

import pytest

from aurora.app.search import Filters, Hit, Indexer, rrf, score_fusion, search
from aurora.app.search.hybrid import KEYWORD_BONUS
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
    # The keyword match, with no vector of its own, is taken to be as near as the farthest vector hit
    # (0.9) and gets the whole keyword bonus as the best keyword hit: it comes first.
    assert [h.entity_id for h in hits] == [passport.id, visa.id]
    assert by_id[passport.id].score == pytest.approx(0.9 + KEYWORD_BONUS)


def _hit(key: str, score: float) -> Hit:
    kind, entity_id = key.split(":")
    return Hit(kind, entity_id, 1, score, "", "", None, None)


def test_score_fusion_adds_a_relative_keyword_bonus_to_the_cosine() -> None:
    vector = [_hit("note:a", 0.60), _hit("note:b", 0.55), _hit("note:c", 0.30)]
    keyword = [_hit("note:b", 12.0), _hit("note:d", 6.0)]
    fused = dict(score_fusion(keyword, vector, {"note:d": 0.58}))
    assert fused["note:b"] == pytest.approx(0.55 + KEYWORD_BONUS)  # the best keyword hit: the whole bonus
    assert fused["note:d"] == pytest.approx(0.58 + KEYWORD_BONUS / 2)  # its own cosine, half the BM25
    assert fused["note:a"] == pytest.approx(0.60) and fused["note:c"] == pytest.approx(0.30)
    assert [k for k, _ in score_fusion(keyword, vector, {"note:d": 0.58})][:2] == ["note:b", "note:d"]


def test_score_fusion_edge_cases() -> None:
    assert score_fusion([], [], {}) == []
    # Keywords alone (no vectors yet): BM25 order, scores relative to the best.
    alone = score_fusion([_hit("task:x", 4.0), _hit("task:y", 2.0)], [], {})
    assert alone == [("task:x", pytest.approx(KEYWORD_BONUS)), ("task:y", pytest.approx(KEYWORD_BONUS / 2))]
    # A keyword candidate with no vector is put at the farthest vector hit's cosine.
    floor = dict(score_fusion([_hit("task:x", 1.0)], [_hit("note:a", 0.7), _hit("note:b", 0.4)], {}))
    assert floor["task:x"] == pytest.approx(0.4 + KEYWORD_BONUS)
    # BM25 scores all about zero (a tiny workspace): every match counts alike.
    tiny = dict(score_fusion([_hit("task:x", 0.0)], [_hit("note:a", 0.5)], {}))
    assert tiny["task:x"] == pytest.approx(0.5 + KEYWORD_BONUS)
