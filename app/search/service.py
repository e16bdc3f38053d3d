"""What the UI and the CLI call to search: one object per workspace, over the keyword index (and the
vector index once it is attached, `attach_vectors`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from aurora.app.errors import InvalidInputError
from aurora.app.people import name_key, normalise_email
from aurora.app.search import hybrid
from aurora.app.search.indexer import Indexer, IndexStatus
from aurora.app.search.keyword import Hit
from aurora.app.store import Store

if TYPE_CHECKING:  # numpy and torch load only when vectors are switched on, never at start-up
    from aurora.app.search.embed_worker import EmbedWorker

MAX_QUERY_CHARS = 100_000


@dataclass(frozen=True)
class Document:
    """What the reader shows for one search result."""

    title: str
    meta: str
    body: str


_INTERACTION_WORDS = {"mail_in": "mail from them", "mail_out": "mail to them", "meeting": "meeting",
                      "message": "message", "transcript": "in a recorded meeting"}  # fmt: skip


class SearchService:
    def __init__(self, store: Store, embedding_model: str = "all-MiniLM-L6-v2") -> None:
        self._store = store
        self.indexer = Indexer(store)
        self.embedding_model = embedding_model
        self._vector_ranker: hybrid.VectorRanker | None = None
        self._worker: EmbedWorker | None = None
        self._vectors_lock = threading.Lock()

    def enable_vectors(self) -> None:
        """Load the embedding model and the vector index (seconds: torch and the model), then search with
        vectors too. Call it off the UI thread. Raises EmbedModelError (one line) if the model cannot load."""
        from aurora.app.embed.model import Embedder
        from aurora.app.search.embed_worker import EmbedWorker
        from aurora.app.search.vectors import VectorIndex, vector_ranker

        with self._vectors_lock:
            if self._worker is not None:
                return
            embedder = Embedder(self.embedding_model)
            embedder.load()
            index = VectorIndex(self._store, embedder.name, embedder.dim)
            index.load()
            self._worker = EmbedWorker(self._store, embedder, index)
            self._vector_ranker = vector_ranker(index, embedder)

    @property
    def vectors_enabled(self) -> bool:
        return self._worker is not None

    def embed_some(self, batch: int = 64) -> int:
        """Embed up to `batch` chunks still waiting for vectors; 0 when none are (or vectors are off)."""
        return self._worker.run_once(batch) if self._worker is not None else 0

    def embed_progress(self) -> tuple[int, int]:
        """(chunks embedded with the current model, all chunks)."""
        rows = self._store.query(
            "SELECT (SELECT count(*) FROM chunks WHERE embedded_model = ?), (SELECT count(*) FROM chunks)",
            (self.embedding_model,),
        )
        return int(rows[0][0]), int(rows[0][1])

    def attach_vectors(self, ranker: hybrid.VectorRanker | None) -> None:
        """Use vectors too (hybrid search); None goes back to keywords only."""
        self._vector_ranker = ranker

    def query(
        self,
        text: str,
        *,
        kinds: Iterable[str] | None = None,
        source: str | None = None,
        person: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 20,
    ) -> list[Hit]:
        """Hits for `text`; an empty query finds nothing, and any text at all is safe to pass."""
        person_id = self.person_id(person) if person else None
        return hybrid.search(
            self._store, text[:MAX_QUERY_CHARS], kinds=list(kinds) if kinds else None, source=source,
            person_id=person_id, since=since, until=until, limit=limit, vector_ranker=self._vector_ranker,
        )  # fmt: skip

    def person_id(self, who: str) -> str:
        """A person by e-mail address, by exact name, or by a unique part of a name."""
        email = normalise_email(who)
        if email:
            rows = self._store.query("SELECT person_id FROM person_emails WHERE email = ?", (email,))
            if rows:
                return str(rows[0][0])
            raise InvalidInputError(f"no person with the address {email}; see the people screen (p)")
        wanted = name_key(who)
        people = [(str(i), name_key(str(n))) for i, n in self._store.query(
            "SELECT id, name FROM people WHERE deleted = 0")]  # fmt: skip
        exact = [i for i, n in people if n == wanted]
        partial = [i for i, n in people if wanted and wanted in n]
        found = exact or partial
        if len(found) == 1:
            return found[0]
        if not found:
            raise InvalidInputError(f"nobody called '{who}'; try an e-mail address")
        raise InvalidInputError(f"'{who}' names {len(found)} people; give more of the name or an address")

    def read(self, kind: str, entity_id: str) -> Document:
        """The whole of a task, note, person or imported item, for reading."""
        if kind == "task":
            rows = self._store.query("SELECT title, due, tags, notes FROM tasks WHERE id = ?", (entity_id,))
            if rows:
                title, due, tags, notes = rows[0]
                meta = " ".join([f"due {due[:16].replace('T', ' ')}" if due else "",
                                 *("#" + t for t in json.loads(tags))]).strip()  # fmt: skip
                return Document(str(title), meta, str(notes))
        elif kind == "note":
            rows = self._store.query("SELECT body, tags FROM notes WHERE id = ?", (entity_id,))
            if rows:
                body, tags = rows[0]
                lines = str(body).splitlines() or [""]
                return Document(lines[0], " ".join("#" + t for t in json.loads(tags)), str(body))
        elif kind == "person":
            rows = self._store.query("SELECT name, emails, org, job_title, notes FROM people WHERE id = ?",
                                     (entity_id,))  # fmt: skip
            if rows:
                name, emails, org, job, notes = rows[0]
                meta = " · ".join(
                    x for x in (", ".join(json.loads(emails)), str(job or ""), str(org or "")) if x
                )
                return Document(str(name), meta, self._person_body(entity_id, str(notes or "")))
        else:
            rows = self._store.query(
                "SELECT title, body, occurred_at, source, participants FROM items WHERE id = ?", (entity_id,)
            )
            if rows:
                title, body, when, source, participants = rows[0]
                people = ", ".join(f"{p.get('name') or p.get('email')} ({p.get('role')})"
                                   for p in json.loads(participants)[:20])  # fmt: skip
                meta = " · ".join(
                    x for x in (str(source), str(when or "")[:16].replace("T", " "), people) if x
                )
                return Document(str(title), meta, str(body))
        return Document("(gone)", "", "This was deleted since the search ran.")

    def _person_body(self, person_id: str, notes: str, limit: int = 15) -> str:
        """A person's notes, then their latest interactions, newest first (when, what, and the item)."""
        rows = self._store.query(
            "SELECT x.kind, x.occurred_at, i.title FROM interactions AS x "
            "LEFT JOIN items AS i ON i.id = x.item_id "
            "WHERE x.person_id = ? AND x.deleted = 0 ORDER BY x.occurred_at DESC LIMIT ?",
            (person_id, limit),
        )
        lines = [
            f"{str(when or '')[:10]}  {_INTERACTION_WORDS.get(str(kind), str(kind))}: {title or '(untitled)'}"
            for kind, when, title in rows
        ]
        recent = "Recent interactions:\n" + "\n".join(lines) if lines else "No interactions recorded yet."
        return "\n\n".join(x for x in (notes.strip(), recent) if x)

    def drain(self, limit: int = 500) -> int:
        """Index what was written since (keywords); returns how many entities."""
        return self.indexer.drain(limit)

    def drain_all(self) -> int:
        return self.indexer.drain_all()

    def status(self) -> IndexStatus:
        return self.indexer.status()

    def rebuild(self) -> int:
        return self.indexer.rebuild()
