"""Keyword search: the person's words as a safe FTS5 query, ranked by BM25, one hit per entity.

Whatever is typed, the FTS5 query is built here, never passed through: the text is cut into word tokens
(letters and digits, as the `unicode61` tokenizer sees them) and each one is quoted, so FTS5's own syntax
(`"`, `*`, `(`, `:`, `^`, `NEAR`, `AND`, `OR`, `NOT`) is only ever searched for as words, and a query can
never raise. All the words must match; when none does, any of them may (ranked by BM25, so entities with
more of them come first). The last word matches as a prefix while it is still being typed (the text does
not end with a space), so results follow the typing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from itertools import islice
from typing import Any

from aurora.app.errors import InvalidInputError
from aurora.app.search.chunking import TABLES
from aurora.app.store import Store

MARK_START = "«"
MARK_END = "»"
"""What snippets put around each matched word (a screen turns them into its own highlighting)."""
ELLIPSIS = "…"
SNIPPET_TOKENS = 24
MAX_TOKENS = 64
"""Words of a query beyond this are ignored (a pasted page is not a query)."""
MIN_PREFIX = 2
"""A last word shorter than this matches whole: a one-letter prefix would match most of the index."""
MAX_LIMIT = 1000

ITEM_KINDS = frozenset({"mail", "event", "message", "transcript"})
"""Kinds of item that `kinds` may name besides the entity kinds (task, note, item, person)."""

_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Hit:
    kind: str
    """task, note, item or person."""
    entity_id: str
    chunk_id: int
    """The best-matching chunk of the entity."""
    score: float
    """Higher is better. Keyword hits: BM25 (negated, as FTS5 ranks lower-is-better); fused: RRF."""
    snippet: str
    """The chunk's best passage, each matched word between MARK_START and MARK_END."""
    title: str
    occurred_at: str | None
    """ISO-8601 in UTC (tasks and notes: when made; items: when they happened; people: None)."""
    source: str | None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.entity_id}"


@dataclass(frozen=True)
class Filters:
    """Which chunks a search may return; shared by the keyword and vector rankers (`where`)."""

    kinds: tuple[str, ...] = ()
    """Entity kinds and item kinds (`ITEM_KINDS`); empty: all."""
    source: str | None = None
    person_id: str | None = None
    """Only items this person took part in (the `interactions` table)."""
    since: str | None = None
    """Inclusive, ISO-8601 UTC."""
    until: str | None = None
    """Exclusive, ISO-8601 UTC."""

    @classmethod
    def make(
        cls,
        *,
        kinds: Iterable[str] | None = None,
        source: str | None = None,
        person_id: str | None = None,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
    ) -> Filters:
        wanted = tuple(dict.fromkeys(k.strip().lower() for k in kinds or ()))
        unknown = [k for k in wanted if k not in TABLES and k not in ITEM_KINDS]
        if unknown:
            known = ", ".join([*TABLES, *sorted(ITEM_KINDS)])
            raise InvalidInputError(f"cannot search for kind '{unknown[0]}'; use one of {known}")
        return cls(wanted, source or None, person_id or None, _stamp(since), _stamp(until))

    def where(self, alias: str = "c") -> tuple[str, list[Any]]:
        """An SQL condition over `chunks AS {alias}`, and its parameters."""
        where: list[str] = []
        params: list[Any] = []
        if self.kinds:
            entity_kinds = [k for k in self.kinds if k in TABLES]
            item_kinds = [k for k in self.kinds if k in ITEM_KINDS]
            either: list[str] = []
            if entity_kinds:
                either.append(f"{alias}.kind IN ({_marks(entity_kinds)})")
                params += entity_kinds
            if item_kinds:
                either.append(
                    f"({alias}.kind = 'item' AND {alias}.entity_id IN "
                    f"(SELECT id FROM items WHERE kind IN ({_marks(item_kinds)})))"
                )
                params += item_kinds
            where.append(f"({' OR '.join(either)})")
        if self.source is not None:
            where.append(f"{alias}.source = ?")
            params.append(self.source)
        if self.person_id is not None:
            where.append(
                f"{alias}.kind = 'item' AND {alias}.entity_id IN "
                "(SELECT item_id FROM interactions WHERE person_id = ? AND deleted = 0)"
            )
            params.append(self.person_id)
        if self.since is not None:
            where.append(f"{alias}.occurred_at >= ?")
            params.append(self.since)
        if self.until is not None:
            where.append(f"{alias}.occurred_at < ?")
            params.append(self.until)
        return (" AND ".join(where) or "1"), params


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def _stamp(value: datetime | date | None) -> str | None:
    """A bound as the text stored in `occurred_at` (UTC ISO-8601); a date or naive time is local."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if value.tzinfo is None:
        value = value.astimezone()
    return value.astimezone(UTC).isoformat()


def words(text: str) -> list[str]:
    """The first MAX_TOKENS words of `text` (letters and digits; everything else separates words)."""
    return list(islice((m[0] for m in _WORD.finditer(unicodedata.normalize("NFC", text))), MAX_TOKENS))


def fts_query(text: str, *, any_word: bool = False) -> str | None:
    """A safe FTS5 query for what the person typed, or None when it holds no word to search for."""
    tokens = words(text)
    if not tokens:
        return None
    quoted = [f'"{t}"' for t in tokens]  # tokens are letters and digits only: nothing to escape
    typing = not text[-1:].isspace()
    if typing and len(tokens[-1]) >= MIN_PREFIX and len(tokens) < MAX_TOKENS:
        quoted[-1] += "*"
    return (" OR " if any_word else " ").join(quoted)


def keyword_search(
    store: Store,
    query: str,
    *,
    kinds: Iterable[str] | None = None,
    source: str | None = None,
    person_id: str | None = None,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    limit: int = 20,
) -> list[Hit]:
    """The best `limit` entities for `query`, best first, one hit each (its best chunk)."""
    flt = Filters.make(kinds=kinds, source=source, person_id=person_id, since=since, until=until)
    return search_chunks(store, query, flt, limit)


def search_chunks(
    store: Store, query: str, flt: Filters, limit: int = 20, *, any_word_fallback: bool = True
) -> list[Hit]:
    """`keyword_search` with its filters already made. Every word must match; with `any_word_fallback`,
    a query that matches nothing so is tried again matching any of its words."""
    limit = min(limit, MAX_LIMIT)
    match = fts_query(query)
    if match is None or limit <= 0:
        return []
    found = _ranked(store, match, flt, limit)
    if not found and any_word_fallback and len(words(query)) > 1:
        match = fts_query(query, any_word=True) or match
        found = _ranked(store, match, flt, limit)
    if not found:
        return []
    snippets = dict(
        store.query(
            f"SELECT rowid, snippet(chunks_fts, 0, ?, ?, ?, {SNIPPET_TOKENS}) FROM chunks_fts "
            f"WHERE chunks_fts MATCH ? AND rowid IN ({_marks(found)})",
            [MARK_START, MARK_END, ELLIPSIS, match, *(r[0] for r in found)],
        )
    )
    titles = _titles(store, [(str(r[1]), str(r[2])) for r in found])
    return [
        Hit(
            kind=str(kind),
            entity_id=str(entity_id),
            chunk_id=int(chunk_id),
            score=-float(rank),
            snippet=str(snippets.get(chunk_id) or ""),
            title=titles.get((str(kind), str(entity_id)), ""),
            occurred_at=occurred_at,
            source=src,
        )
        for chunk_id, kind, entity_id, occurred_at, src, rank in found
    ]


CANDIDATES_PER_HIT = 8
FILTERED_CANDIDATES_PER_HIT = 40
"""With filters, more candidates: many of the best-ranked chunks may be filtered out."""
"""Unfiltered, the best `limit * CANDIDATES_PER_HIT` chunks are ranked first (FTS5 serves `ORDER BY rank
LIMIT` without sorting every match); only where they hold too few entities is every match ranked."""


def _ranked(store: Store, match: str, flt: Filters, limit: int) -> list[tuple[Any, ...]]:
    # First only the best-ranked chunks (FTS5 serves `ORDER BY rank LIMIT` without sorting every match),
    # filtered as they come. That is exact when it yields `limit` entities (any chunk beyond the cap ranks
    # below all of them) or when the cap held every match; otherwise every match is ranked.
    cap = limit * (CANDIDATES_PER_HIT if flt == Filters() else FILTERED_CANDIDATES_PER_HIT)
    where, params = flt.where("c")
    rows = store.query(
        "SELECT c.id, c.kind, c.entity_id, c.occurred_at, c.source, m.rank, "
        f"       CASE WHEN {where} THEN 1 ELSE 0 END "
        "FROM (SELECT rowid AS chunk_id, rank FROM chunks_fts WHERE chunks_fts MATCH ? "
        "      ORDER BY rank LIMIT ?) AS m JOIN chunks AS c ON c.id = m.chunk_id ORDER BY m.rank, c.id",
        [*params, match, cap],
    )
    best: dict[tuple[str, str], tuple[Any, ...]] = {}
    for row in rows:
        if row[6]:
            best.setdefault((row[1], row[2]), row[:6])
    if len(best) >= limit or len(rows) < cap:
        return list(best.values())[:limit]
    where, params = flt.where("c")
    return store.query(
        "WITH matched AS (SELECT rowid AS chunk_id, bm25(chunks_fts) AS rank FROM chunks_fts "
        "                 WHERE chunks_fts MATCH ?), "
        "best AS (SELECT c.id, c.kind, c.entity_id, c.occurred_at, c.source, m.rank, "
        "                row_number() OVER (PARTITION BY c.kind, c.entity_id ORDER BY m.rank, c.ord) AS n "
        f"        FROM matched AS m JOIN chunks AS c ON c.id = m.chunk_id WHERE {where}) "
        "SELECT id, kind, entity_id, occurred_at, source, rank FROM best WHERE n = 1 "
        "ORDER BY rank, id LIMIT ?",
        [match, *params, limit],
    )


_TITLE_SQL = {
    "task": "SELECT id, title FROM tasks",
    "note": "SELECT id, body FROM notes",
    "item": "SELECT id, title FROM items",
    "person": "SELECT id, name FROM people",
}


def titles(store: Store, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """What a result list shows as each entity's title (a note's first line)."""
    return _titles(store, list(keys))


def _titles(store: Store, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for kind, sql in _TITLE_SQL.items():
        ids = [entity_id for k, entity_id in keys if k == kind]
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            for entity_id, text in store.query(f"{sql} WHERE id IN ({_marks(part)})", part):
                title = str(text or "").strip()
                if kind == "note":
                    title = title.split("\n", 1)[0][:80]
                out[(kind, str(entity_id))] = title
    return out
