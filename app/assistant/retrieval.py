"""Retrieval: the few items a question is answered from, found by the workspace's (hybrid) search.

`retrieve` searches the question's topic words (function words like "what" and "the" dropped: they would
match everything) within the personality's memory scope, reads each hit whole, and keeps an excerpt of at
most `EXCERPT_CHARS` characters around the first matched word, so a long mail thread gives the model its
relevant part. Each source is scanned by the gatekeeper as it is made (`Source.flagged`).

Search returns imported items as kind "item"; the item's kind (mail, event, message, transcript) is told
by its import source (`ITEM_KIND_BY_ORIGIN`), "item" where the source is unknown, which is treated as
untrusted like every imported kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aurora.app.assistant.injection import scan
from aurora.app.assistant.personalities import MemoryKind
from aurora.app.assistant.sources import Source
from aurora.app.search.keyword import MARK_END, MARK_START, STOPWORDS, words

if TYPE_CHECKING:
    from aurora.app.search.service import SearchService

EXCERPT_CHARS = 1_200
DEFAULT_LIMIT = 8

SCOPE_KINDS: dict[MemoryKind, str] = {
    "tasks": "task", "notes": "note", "mail": "mail", "events": "event", "messages": "message",
    "transcripts": "transcript", "people": "person",
}  # fmt: skip
"""Memory scope names (personality files) -> the search's kinds."""

ITEM_KIND_BY_ORIGIN = {
    "mbox": "mail", "maildir": "mail", "eml": "mail", "emlx": "mail", "gmail": "mail",
    "ics": "event", "gcal": "event", "google-calendar": "event",
    "slack": "message", "vtt": "transcript", "srt": "transcript", "transcript": "transcript",
    "fireflies": "transcript",
}  # fmt: skip
_MARKED = re.compile(re.escape(MARK_START) + "(.+?)" + re.escape(MARK_END))


def search_terms(question: str) -> str:
    """The words of `question` worth searching for: its topic words, in order, without function words."""
    kept = [w for w in words(question) if w.casefold() not in STOPWORDS]
    return " ".join(dict.fromkeys(kept))


def excerpt(body: str, snippet: str, limit: int = EXCERPT_CHARS) -> str:
    """At most `limit` characters of `body`, starting a little before the first word the snippet marks
    (the start of `body` when none is found), cut at spaces, with "…" where text was left out."""
    body = body.strip()
    if len(body) <= limit:
        return body
    folded = body.casefold()
    found = [folded.find(w.casefold()) for w in _MARKED.findall(snippet)]
    hit = min((p for p in found if p >= 0), default=0)
    start = max(0, hit - limit // 4)
    if start:
        space = body.find(" ", start)
        start = space + 1 if 0 <= space < hit else start
    room = limit - (1 if start else 0) - 1
    end = min(len(body), start + room)
    if end < len(body):
        space = body.rfind(" ", start, end)
        end = space if space > start + room // 2 else end
    text = body[start:end].strip()
    return ("…" if start else "") + text + ("…" if end < len(body) else "")


def retrieve(
    search: SearchService,
    question: str,
    scope: Iterable[MemoryKind],
    limit: int = DEFAULT_LIMIT,
    *,
    excerpt_chars: int = EXCERPT_CHARS,
) -> list[Source]:
    """The best `limit` sources for `question` among the kinds in `scope`, best first, as S1, S2..."""
    kinds = list(dict.fromkeys(SCOPE_KINDS[s] for s in scope))
    query = search_terms(question)
    if not query or not kinds or limit <= 0:
        return []
    # A scope of every kind needs no kind filter, and the item-kind filter costs a subquery in each half of
    # the hybrid search (about 36 ms of a chat turn at 100,000 chunks).
    wanted = None if set(kinds) >= set(SCOPE_KINDS.values()) else kinds
    sources: list[Source] = []
    # The trailing space: a question is not being typed, so its last word matches whole, as the others do.
    for hit in search.query(query + " ", kinds=wanted, limit=limit):
        doc = search.read(hit.kind, hit.entity_id)
        body = "\n".join(x for x in (doc.meta, doc.body) if x.strip())
        text = excerpt(body, hit.snippet, excerpt_chars)
        if not text and not doc.title:
            continue
        kind = hit.kind if hit.kind != "item" else ITEM_KIND_BY_ORIGIN.get(hit.source or "", "item")
        title = hit.title or doc.title
        flagged = tuple(f.rule for f in scan(f"{title}\n{text}"))
        sources.append(
            Source(
                id=f"S{len(sources) + 1}",
                kind=kind,
                entity_id=hit.entity_id,
                title=title,
                when=hit.occurred_at,
                text=text,
                origin=hit.source,
                flagged=flagged,
            )
        )
    return sources
