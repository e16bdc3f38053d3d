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
    store: Store,
    query: str,
    flt: Filters,
    limit: int = 20,
    *,
    any_word_fallback: bool = True,
    decorate: bool = True,
) -> list[Hit]:
    """`keyword_search` with its filters already made. Every word must match; with `any_word_fallback`,
    a query that matches nothing so is tried again matching any of its words. Without `decorate`, the
    hits carry no snippet and no title (a caller that keeps only a few of them adds those itself)."""
    limit = min(limit, MAX_LIMIT)
    match = fts_query(query)
    if match is None or limit <= 0:
        return []
    found = _ranked(store, match, flt, limit)
    if not found and any_word_fallback and len(words(query)) > 1:
        match = fts_query(query, any_word=True) or match
        found = _ranked(store, match, flt, limit)
    return _hits(store, match, found, decorate=decorate)


def match_chunks(store: Store, match: str, flt: Filters, limit: int) -> list[Hit]:
    """Hits for an FTS5 query already made safe (`fts_query`, `loose_query`), best first; no snippets or
    titles (`snippets`, `titles`)."""
    return _hits(store, match, _ranked(store, match, flt, min(limit, MAX_LIMIT)), decorate=False)


def _hits(store: Store, match: str, found: list[tuple[Any, ...]], *, decorate: bool) -> list[Hit]:
    if not found:
        return []
    snips = snippets(store, match, [int(r[0]) for r in found]) if decorate else {}
    named = _titles(store, [(str(r[1]), str(r[2])) for r in found]) if decorate else {}
    return [
        Hit(
            kind=str(kind),
            entity_id=str(entity_id),
            chunk_id=int(chunk_id),
            score=-float(rank),
            snippet=snips.get(int(chunk_id), ""),
            title=named.get((str(kind), str(entity_id)), ""),
            occurred_at=occurred_at,
            source=src,
        )
        for chunk_id, kind, entity_id, occurred_at, src, rank in found
    ]


def snippets(store: Store, match: str, chunk_ids: Sequence[int]) -> dict[int, str]:
    """Each chunk's best passage for `match`, the matched words marked. One lookup per chunk: FTS5 seeks
    a `rowid =` constraint, while `rowid IN (...)` made it evaluate the whole match (15 ms at 100,000
    chunks for a common word, against 0.2 ms a chunk)."""
    out: dict[int, str] = {}
    sql = (
        f"SELECT snippet(chunks_fts, 0, ?, ?, ?, {SNIPPET_TOKENS}) FROM chunks_fts "
        "WHERE chunks_fts MATCH ? AND rowid = ?"
    )
    for chunk_id in dict.fromkeys(chunk_ids):
        rows = store.query(sql, (MARK_START, MARK_END, ELLIPSIS, match, chunk_id))
        if rows and rows[0][0]:
            out[chunk_id] = str(rows[0][0])
    return out


STOPWORDS = frozenset(
    "a an and are as at be but by can could did do does for from had has have how i if in into is it its "
    "me my of on or our so that the their them there they this to was we were what when where which who "
    "why will with would you your about any some than then".split()
)
"""Function words a loose query leaves out: in a question they carry no topic, and they match most chunks."""
LOOSE_TERMS = 8
"""A loose query keeps at most this many of the query's words: the rarest."""
POSTINGS_BUDGET = 2_500
"""A loose query keeps the rarest words while the chunks holding them add up to at most this many (the
rarest word always stays). Ranking an any-word query scores every chunk that holds any of its words (about
1 µs each), and a word that many chunks hold adds little to BM25: at 100,000 chunks, all the topic words
of a question took 13.7 ms (p95), a budget of 5,000 7 ms, of 2,500 6.4 ms (`tests/bench/search_speed.py`).
A half-typed last word counts the chunks of every word it begins. A workspace of a few thousand chunks
rarely reaches the budget."""


def _fold(word: str) -> str:
    """A word as the `unicode61 remove_diacritics 2` tokenizer indexes it: lower case, no accents."""
    return "".join(c for c in unicodedata.normalize("NFD", word.casefold()) if not unicodedata.combining(c))


def _prefix_postings(store: Store, prefix: str) -> int:
    """How many chunks hold the words beginning with `prefix` (counted with repeats; at least, where it
    begins more than a few hundred words, more than the budget)."""
    rows = store.query(
        "SELECT doc FROM chunks_vocab WHERE term >= ? AND term < ? LIMIT 500", (prefix, prefix + "\U0010ffff")
    )
    return POSTINGS_BUDGET + 1 if len(rows) >= 500 else sum(int(r[0]) for r in rows)


def loose_query(store: Store, text: str) -> str | None:
    """An FTS5 query matching any of the topic words of `text` (function words dropped, then the rarest
    kept: `LOOSE_TERMS`, `POSTINGS_BUDGET`), BM25 ranking the chunks that hold more and rarer of them
    first: how a question in a person's own words is matched. None when no word is left."""
    tokens = words(text)
    typing = bool(tokens) and _WORD.fullmatch(text[-1:]) is not None and len(tokens[-1]) >= MIN_PREFIX
    partial = tokens[-1].casefold() if typing else None
    if partial is not None and _prefix_postings(store, _fold(partial)) > POSTINGS_BUDGET:
        partial = None  # a short prefix of a common start ("th") would match half the index: whole word
    terms = list(dict.fromkeys(t.casefold() for t in tokens if t.casefold() not in STOPWORDS))
    if partial is not None and partial not in terms:
        terms.append(partial)  # a half-typed word is kept even when it looks like a function word
    whole = [t for t in terms if t != partial]
    if whole:
        folded = {t: _fold(t) for t in whole}  # as the tokenizer stores them: "térmico" is "termico"
        marks = _marks(list(folded.values()))
        counts = dict(
            store.query(f"SELECT term, doc FROM chunks_vocab WHERE term IN ({marks})", [*folded.values()])
        )
        keep: set[str] = set()
        postings = 0
        rarest = sorted(whole, key=lambda t: counts.get(folded[t], 0))
        for term in rarest[: LOOSE_TERMS - (partial is not None)]:
            postings += int(counts.get(folded[term], 0))
            if keep and postings > POSTINGS_BUDGET:
                break
            keep.add(term)
        terms = [t for t in terms if t in keep or t == partial]
    if not terms:
        return None
    return " OR ".join(f'"{t}"*' if t == partial else f'"{t}"' for t in terms)


CANDIDATES_PER_HIT = 8
"""The best `limit * CANDIDATES_PER_HIT` chunks are ranked first (FTS5 serves `ORDER BY rank LIMIT`
without sorting every match); only where they hold too few entities that pass the filters is every match
ranked. (40 with filters cost 14 ms against 7 ms at 100,000 chunks, p95, for a filter that half the
chunks pass; a filter few pass takes the second way either way.)"""


def _ranked(store: Store, match: str, flt: Filters, limit: int) -> list[tuple[Any, ...]]:
    # First only the best-ranked chunks (FTS5 serves `ORDER BY rank LIMIT` without sorting every match),
    # filtered as they come. That is exact when it yields `limit` entities (any chunk beyond the cap ranks
    # below all of them) or when the cap held every match; otherwise every match is ranked.
    cap = limit * CANDIDATES_PER_HIT
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
