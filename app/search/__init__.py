"""Search over everything Aurora keeps: keyword (FTS5, BM25) fused with vectors (`vectors`).

- `chunking`: what of each entity is searchable, cut into passages (pure).
- `indexer`: keeps the `chunks` table and its FTS5 index in step with the queue the triggers fill.
- `keyword`: safe FTS5 queries, filters, BM25-ranked hits with highlighted snippets.
- `hybrid`: the fusions (score, reciprocal rank) and `search`, where a vector ranker plugs in.
"""

from aurora.app.search.hybrid import VectorRanker, rrf, score_fusion, search
from aurora.app.search.indexer import Indexer, IndexStatus
from aurora.app.search.keyword import MARK_END, MARK_START, Filters, Hit, keyword_search

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
