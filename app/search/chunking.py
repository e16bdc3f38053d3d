"""What of each entity is searchable, and how it is cut into chunks (pure: no database here).

A chunk is a passage of about `SIZE` characters, cut at a paragraph, then sentence, then word boundary,
and beginning with up to `OVERLAP` characters of the end of the chunk before it, so a phrase that
straddles a cut is still found whole in one of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SIZE = 800
OVERLAP = 100

SEARCHED_COLUMNS: dict[str, tuple[str, ...]] = {
    "task": ("title", "notes", "tags", "source", "created_at", "deleted"),
    "note": ("body", "tags", "created_at", "deleted"),
    "item": ("kind", "source", "title", "body", "occurred_at", "participants", "extra", "deleted"),
    "person": ("name", "emails", "org", "job_title", "notes", "deleted"),
}
"""The columns the indexer reads, per entity kind. The `AFTER UPDATE OF` triggers of migration 0003 name
exactly these (a test checks): a change to any other column never re-indexes."""

TABLES = {"task": "tasks", "note": "notes", "item": "items", "person": "people"}
"""The searchable entity kinds and their tables."""

_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile("(?<=[.!?\u2026\u3002\uff01\uff1f])[\"')\\]\u00bb\u201d\u2019]*\\s+")
"""Where a sentence ends: its stop (any script's), closing quotes or brackets, then space."""
_SPACE = re.compile(r"[ \t\r\f\v]+")
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Document:
    """An entity's searchable text, and the columns the filters use."""

    text: str
    occurred_at: str | None
    source: str | None


def _json_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return value if isinstance(value, list) else []


def _json_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _tags(value: Any) -> str:
    return " ".join(f"#{t}" for t in _json_list(value) if isinstance(t, str) and t)


def _lines(*parts: str) -> str:
    return "\n\n".join(p.strip() for p in parts if p and p.strip())


def document(kind: str, row: Mapping[str, Any]) -> Document | None:
    """The searchable text of one row (`SEARCHED_COLUMNS[kind]`, as stored); None for a deleted row."""
    if row.get("deleted"):
        return None
    if kind == "task":
        text = _lines(str(row.get("title") or ""), str(row.get("notes") or ""), _tags(row.get("tags")))
        return Document(text, row.get("created_at") or None, row.get("source") or None)
    if kind == "note":
        text = _lines(str(row.get("body") or ""), _tags(row.get("tags")))
        return Document(text, row.get("created_at") or None, None)
    if kind == "item":
        return Document(_item_text(row), row.get("occurred_at") or None, row.get("source") or None)
    if kind == "person":
        emails = " ".join(str(e) for e in _json_list(row.get("emails")))
        org = " · ".join(str(x) for x in (row.get("job_title"), row.get("org")) if x)
        text = _lines(str(row.get("name") or ""), emails, org, str(row.get("notes") or ""))
        return Document(text, None, None)
    raise ValueError(f"{kind} is not searchable")


def when_line(occurred_at: Any, extra: Mapping[str, Any]) -> str:
    """The day an item happened, in words ("When: Saturday 22 February 2022"): people recall mail and
    meetings by when they were ("the hire car in June 2019"), and neither BM25 nor the embedding model
    can match that against an ISO timestamp. It ends the text (on the labelled set, nDCG@10 of vectors
    alone: 0.780 there, 0.759 right after the title, 0.762 without it). The day is the local one (the
    machine's time zone), except for an all-day event, stored as midnight UTC of its date, whose date is
    the fact."""
    if not occurred_at:
        return ""
    try:
        at = datetime.fromisoformat(str(occurred_at))
    except ValueError:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    day = at.astimezone(UTC) if extra.get("all_day") else at.astimezone()
    return f"When: {day:%A} {day.day} {day:%B %Y}"


def _item_text(row: Mapping[str, Any]) -> str:
    title = str(row.get("title") or "")
    body = str(row.get("body") or "")
    when = when_line(row.get("occurred_at"), _json_dict(row.get("extra")))
    if row.get("kind") == "mail":
        senders = [
            " ".join(x for x in (str(p.get("name") or ""), f"<{p['email']}>" if p.get("email") else "") if x)
            for p in _json_list(row.get("participants"))
            if isinstance(p, dict) and p.get("role") == "from"
        ]
        sender = f"From: {', '.join(senders)}" if senders else ""
        return _lines(title, sender, body, when)
    if row.get("kind") == "event":
        # The calendar importer already ends the body with "Location: ..."; an older row may not.
        location = str(_json_dict(row.get("extra")).get("location") or "")
        said = set(_WORD.findall(body.lower()))
        missing = location and not set(_WORD.findall(location.lower())) <= said
        where = (
            "Location: " + ", ".join(x.strip() for x in location.splitlines() if x.strip()) if missing else ""
        )
        return _lines(title, where, body, when)
    return _lines(title, body, when)


# Cutting -----------------------------------------------------------------------------------------------


def chunk_text(text: str, size: int = SIZE, overlap: int = OVERLAP) -> list[str]:
    """`text` cut into passages of at most `size` characters, each (but the first) starting with up to
    `overlap` characters from the end of the one before. Empty text makes no chunks."""
    if overlap >= size // 2:
        raise ValueError("overlap must be less than half the chunk size")
    text = "\n\n".join(_SPACE.sub(" ", p).strip() for p in _PARAGRAPH.split(text.strip()))
    text = text.strip()
    if not text:
        return []
    if len(text) <= size:
        return [text]
    chunks: list[str] = []
    current = ""
    for sep, piece in _pieces(text, size - overlap - 2):
        if current and len(current) + len(sep) + len(piece) > size:
            chunks.append(current)
            tail = _tail(current, overlap)
            current = f"{tail} {piece}" if tail else piece
        else:
            current = f"{current}{sep}{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks


def _pieces(text: str, most: int) -> Iterator[tuple[str, str]]:
    """(separator before it, piece): paragraphs, cut into sentences, words, or characters where one is
    longer than `most`."""
    for p, paragraph in enumerate(text.split("\n\n")):
        sep = "\n\n" if p else ""
        if len(paragraph) <= most:
            yield sep, paragraph
            continue
        for s, sentence in enumerate(_SENTENCE_END.split(paragraph)):
            if not sentence:
                continue
            sep = sep if s == 0 else " "
            for w, part in enumerate(_split_long(sentence, most)):
                yield (sep if w == 0 else " "), part
            sep = " "


def _split_long(sentence: str, most: int) -> Iterator[str]:
    """A sentence in parts of at most `most` characters, cut at spaces (or anywhere, in a long word)."""
    while len(sentence) > most:
        cut = sentence.rfind(" ", 0, most + 1)
        if cut <= 0:
            yield sentence[:most]
            sentence = sentence[most:]
        else:
            yield sentence[:cut]
            sentence = sentence[cut + 1 :]
    if sentence:
        yield sentence


def _tail(chunk: str, overlap: int) -> str:
    """The end of `chunk`, at most `overlap` characters: from a sentence start if one is in reach, else
    from a word start."""
    if overlap <= 0:
        return ""
    tail = chunk[-overlap:]
    if len(chunk) <= overlap:
        return tail
    for match in _SENTENCE_END.finditer(tail):
        rest = tail[match.end() :]
        if len(rest) >= overlap // 4:
            return rest.strip()
        break
    if chunk[-overlap - 1].isspace():
        return tail.strip()
    space = tail.find(" ")
    return tail[space + 1 :].strip() if space >= 0 else ""


def chunks(kind: str, row: Mapping[str, Any], size: int = SIZE, overlap: int = OVERLAP) -> list[str]:
    """The chunks one row is indexed as (none for a deleted or empty row)."""
    doc = document(kind, row)
    return chunk_text(doc.text, size, overlap) if doc else []
