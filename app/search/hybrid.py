"""One search over keyword and vector results, fused.

The vector half is a seam: `search` takes a `vector_ranker`, any callable that, given the query text, the
filters and how many it wants, returns its `Hit`s best first (one per entity, `Hit.score` the cosine of its
nearest chunk, `Hit.snippet` that chunk's text, as it has no highlighting). Its candidates should be the
chunks `Filters.where` admits, the same SQL the keyword half uses, so both sides filter alike. A ranker
that also has `similarity` (`aurora.app.search.vectors.VectorRanker`) tells how near the keyword half's
candidates are to the query. Without a ranker, `search` is keyword search (`keyword.search_chunks`).

Two fusions, measured on the labelled set (`tests/search/queries.json`, `tests/bench/search_quality.py`):

- `"score"` (the default): each candidate entity (the union of both halves' best `CANDIDATES`) scores
  the cosine of its nearest chunk plus `KEYWORD_BONUS * s / s_best`, s its BM25 score and s_best the best
  keyword hit's. Relative, because BM25's scale depends on the corpus (in a workspace of ten tasks every
  word is common and scores near zero). A question in a person's own words shares few words with its
  answer, so the vector side leads and keywords break near-ties; a name, a number or a rare word the model
  does not know lifts its documents by up to `KEYWORD_BONUS` of cosine.
- `"rrf"`: reciprocal rank fusion (Cormack et al., 2009), the textbook method. Ranks throw away how sure each
  side is: a keyword ranking of loose matches counts as much as a confident vector ranking, and on the
  labelled set it scored below vectors alone (the README's quality table has both).

The keyword half here is one loose query (`keyword.loose_query`: any of the rarer topic words), as
questions rarely contain every word of their answer; keyword search alone still asks for all words first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Literal, Protocol, runtime_checkable

from aurora.app.search.indexer import Indexer
from aurora.app.search.keyword import (
    Filters,
    Hit,
    loose_query,
    match_chunks,
    search_chunks,
    snippets,
    titles,
)
from aurora.app.store import Store

RRF_K = 60
"""The usual constant of reciprocal rank fusion (Cormack et al., 2009): damps the top ranks' lead."""
KEYWORD_BONUS = 0.1
"""Chosen on the labelled set: nDCG@10 0.797, 0.812, 0.818, 0.796 for bonuses 0.05, 0.08, 0.1, 0.15
(vectors alone 0.780). Cosines of the top ten results of a question typically span 0.2 to 0.3."""
CANDIDATES = 50
"""How many each ranker is asked for before fusing (at least the limit)."""
FRESH_LIMIT = 200
"""Entities indexed before a search, so what was just written is found (the rest: the background)."""

Fusion = Literal["score", "rrf"]
VectorRanker = Callable[[str, Filters, int], list[Hit]]
Key = tuple[str, str]


@runtime_checkable
class Similarity(Protocol):
    def similarity(self, query: str, keys: Sequence[Key]) -> dict[Key, float]: ...


def rrf(
    rankings: list[list[str]], k: int = RRF_K, weights: list[float] | None = None
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: each key scores the sum of 1 / (k + rank) over the rankings it is in
    (rank from 1, among the ranking's distinct keys: a repeat counts once, at its first place).
    Best first; ties keep the order in which keys were first met."""
    if k < 0:
        raise ValueError("k must not be negative")
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        distinct = dict.fromkeys(ranking)  # a key met again (another chunk of it) keeps its first rank
        for rank, key in enumerate(distinct, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    order = {key: n for n, key in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def score_fusion(
    keyword_hits: Sequence[Hit], vector_hits: Sequence[Hit], cosines: dict[str, float]
) -> list[tuple[str, float]]:
    """Cosine plus a relative BM25 bonus (see the module's docstring), best first. `cosines` holds
    the cosine of keyword candidates the vector half did not return; one with none (not embedded yet)
    is taken to be as near as the farthest vector candidate, so a fresh item is still found by its words.
    """
    near = dict(cosines)
    for hit in vector_hits:
        near.setdefault(hit.key, hit.score)
    floor = min((h.score for h in vector_hits), default=0.0)
    best = max((h.score for h in keyword_hits), default=0.0)
    bonus: dict[str, float] = {}
    for hit in keyword_hits:
        share = max(0.0, hit.score) / best if best > 0 else 1.0  # scores all ~0: every match counts alike
        bonus.setdefault(hit.key, KEYWORD_BONUS * share)
    keys = dict.fromkeys([*(h.key for h in vector_hits), *(h.key for h in keyword_hits)])
    scored = [(key, near.get(key, floor) + bonus.get(key, 0.0)) for key in keys]
    order = {key: n for n, key in enumerate(keys)}
    return sorted(scored, key=lambda kv: (-kv[1], order[kv[0]]))


def search(
    store: Store,
    query: str,
    *,
    kinds: Iterable[str] | None = None,
    source: str | None = None,
    person_id: str | None = None,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    limit: int = 20,
    vector_ranker: VectorRanker | None = None,
    fresh: bool = True,
    fusion: Fusion = "score",
) -> list[Hit]:
    """The best `limit` entities for `query`. With `fresh`, up to FRESH_LIMIT queued entities are
    indexed first (a write; skip it where the caller keeps the index drained itself)."""
    flt = Filters.make(kinds=kinds, source=source, person_id=person_id, since=since, until=until)
    if fresh:
        Indexer(store).drain(FRESH_LIMIT)
    if vector_ranker is None:
        return search_chunks(store, query, flt, limit)
    if limit <= 0 or not query.strip():
        return []
    wanted = max(limit, CANDIDATES)
    match = loose_query(store, query)
    keyword_hits = match_chunks(store, match, flt, wanted) if match else []
    vector_hits = vector_ranker(query, flt, wanted)
    if fusion == "rrf":
        fused = rrf([[h.key for h in keyword_hits], [h.key for h in vector_hits]])
    else:
        seen = {h.key for h in vector_hits}
        unseen = [(h.kind, h.entity_id) for h in keyword_hits if h.key not in seen]
        cosines: dict[str, float] = {}
        if unseen and isinstance(vector_ranker, Similarity):
            cosines = {f"{k}:{i}": s for (k, i), s in vector_ranker.similarity(query, unseen).items()}
        fused = score_fusion(keyword_hits, vector_hits, cosines)
    return _decorated(store, match, fused[:limit], keyword_hits, vector_hits)


def _decorated(
    store: Store,
    match: str | None,
    fused: list[tuple[str, float]],
    keyword_hits: Sequence[Hit],
    vector_hits: Sequence[Hit],
) -> list[Hit]:
    """The fused hits with their fused scores, titles, and snippets: a keyword hit's best chunk with its
    matched words marked (looked up for these few only), else the vector hit's chunk text."""
    by_key: dict[str, Hit] = {}
    for hit in [*keyword_hits, *vector_hits]:
        by_key.setdefault(hit.key, hit)  # a keyword hit, where there is one, gets the highlighted snippet
    chosen = [by_key[key] for key, _ in fused]
    keyword_keys = {h.key for h in keyword_hits}
    marked = snippets(store, match, [h.chunk_id for h in chosen if h.key in keyword_keys]) if match else {}
    vector_text = {h.key: h.snippet for h in vector_hits}
    named = titles(store, [(h.kind, h.entity_id) for h in chosen if not h.title])
    return [
        replace(
            hit,
            score=score,
            snippet=marked.get(hit.chunk_id) or hit.snippet or vector_text.get(hit.key, ""),
            title=hit.title or named.get((hit.kind, hit.entity_id), ""),
        )
        for hit, (_, score) in zip(chosen, fused, strict=True)
    ]
