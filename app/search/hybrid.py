"""One search over keyword and (later) vector results, fused by reciprocal rank.

The vector half is a seam: `search` takes a `vector_ranker`, any callable that, given the query text, the
filters and how many it wants, returns its `Hit`s best first (one per entity; `Hit.snippet` being the
matched chunk's text, as it has no highlighting). Its candidates should be the chunks `Filters.where`
admits, the same SQL the keyword half uses, so both sides filter alike. Without a ranker, `search` is
keyword search.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, datetime

from aurora.app.search.indexer import Indexer
from aurora.app.search.keyword import Filters, Hit, search_chunks, titles, words
from aurora.app.store import Store

RRF_K = 60
LOOSE_KEYWORD_WEIGHT = 0.1
"""Weight of an any-word keyword match in the fusion (an all-words match weighs 1, like vectors)."""
STOPWORDS = frozenset(
    "a an and are as at be but by can could did do does for from had has have how i if in into is it its "
    "me my of on or our so that the their them there they this to was we were what when where which who "
    "why will with would you your about any some than then".split()
)
"""The usual constant of reciprocal rank fusion (Cormack et al., 2009): damps the top ranks' lead."""
CANDIDATES = 50
"""How many each ranker is asked for before fusing (at least the limit)."""
FRESH_LIMIT = 200
"""Entities indexed before a search, so what was just written is found (the rest: the background)."""

VectorRanker = Callable[[str, Filters, int], list[Hit]]


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
) -> list[Hit]:
    """The best `limit` entities for `query`. With `fresh`, up to FRESH_LIMIT queued entities are
    indexed first (a write; skip it where the caller keeps the index drained itself)."""
    flt = Filters.make(kinds=kinds, source=source, person_id=person_id, since=since, until=until)
    if fresh:
        Indexer(store).drain(FRESH_LIMIT)
    if vector_ranker is None:
        return search_chunks(store, query, flt, limit)
    wanted = max(limit, CANDIDATES)
    # Keyword hits count fully when every word of the query matched. A question in a person's own words
    # rarely does; then the any-word match (function words dropped) is only weak evidence beside meaning.
    keyword_hits = search_chunks(store, query, flt, wanted, any_word_fallback=False)
    keyword_weight = 1.0
    if not keyword_hits:
        content = " ".join(w for w in words(query) if w.casefold() not in STOPWORDS)
        keyword_hits = search_chunks(store, content, flt, wanted) if content else []
        keyword_weight = LOOSE_KEYWORD_WEIGHT
    vector_hits = vector_ranker(query, flt, wanted) if query.strip() else []
    by_key: dict[str, Hit] = {}
    for hit in [*keyword_hits, *vector_hits]:
        by_key.setdefault(hit.key, hit)  # a keyword hit, where there is one, has the highlighted snippet
    fused = rrf([[h.key for h in keyword_hits], [h.key for h in vector_hits]], weights=[keyword_weight, 1.0])[
        : max(0, limit)
    ]
    untitled = [(by_key[key].kind, by_key[key].entity_id) for key, _ in fused if not by_key[key].title]
    named = titles(store, untitled) if untitled else {}
    return [
        replace(
            by_key[key],
            score=score,
            title=by_key[key].title or named.get((by_key[key].kind, by_key[key].entity_id), ""),
        )
        for key, score in fused
    ]
