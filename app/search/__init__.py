"""Search over everything Aurora keeps: keyword (FTS5, BM25) fused with vectors (`vectors`).

- `chunking`: what of each entity is searchable, cut into passages (pure).
- `indexer`: keeps the `chunks` table and its FTS5 index in step with the queue the triggers fill.
- `keyword`: safe FTS5 queries, filters, BM25-ranked hits with highlighted snippets.
- `hybrid`: the fusions (score, reciprocal rank) and `search`, where a vector ranker plugs in.

The names below load their module on first use, so importing `aurora.app.search.chunking` alone (as the
node does, to cut text exactly as the laptop does) does not load the laptop's SQLite store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aurora.app.lazy import lazy_getattr

if TYPE_CHECKING:
    from aurora.app.search.hybrid import VectorRanker, rrf, score_fusion, search
    from aurora.app.search.indexer import Indexer, IndexStatus
    from aurora.app.search.keyword import MARK_END, MARK_START, Filters, Hit, keyword_search

_HOME = {
    "VectorRanker": "hybrid",
    "rrf": "hybrid",
    "score_fusion": "hybrid",
    "search": "hybrid",
    "Indexer": "indexer",
    "IndexStatus": "indexer",
    "MARK_END": "keyword",
    "MARK_START": "keyword",
    "Filters": "keyword",
    "Hit": "keyword",
    "keyword_search": "keyword",
}


__getattr__ = lazy_getattr(__name__, _HOME, globals())


__all__ = [
    "MARK_END",
    "MARK_START",
    "Filters",
    "Hit",
    "IndexStatus",
    "Indexer",
    "VectorRanker",
    "keyword_search",
    "rrf",
    "score_fusion",
    "search",
]
