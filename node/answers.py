"""The node answers questions that laptops queued: `ask` actions, carried out and written back as operations.

A laptop asked with no model in reach saves the question, a `waiting` answer and a queued `ask` action
(`aurora.app.conversations.ConversationService.queue`); all three reach the node's replica state with the
next push. `AnswerProcessor.run_once`, run by the scheduler every `actions_every_s` (a minute by default):

1. **Finds** queued `ask` actions in `entities` (index `entities_queued_actions`), the oldest first, and
   **claims** each in `action_claims` (migration 0006) with a lease: one short autocommit statement, so no
   row lock is held while the model runs and a push never waits for one. Two node processes on one
   database never answer the same action; a killed one's lease runs out and the action is claimed again.
2. **Retrieves** the sources on the node, within the personality's memory scope: the question is embedded
   with the same model as the laptop's (`chunk_vectors`, filled by `aurora.node.embed_jobs`, nearest by
   pgvector's `<=>`), and matched by PostgreSQL full-text search over the same searchable text (bounded by
   a statement timeout: there is no text index on the node, and vectors alone still answer); both ranks are
   fused (reciprocal rank). Each hit becomes a `Source` as the laptop builds one (S1, S2..., its kind, an
   excerpt of at most `EXCERPT_CHARS`, scanned by the gatekeeper).
3. **Asks** the node's router with the laptop's own prompt (`aurora.app.assistant.prompt`: the same fences,
   rules, budget and citation reading), in the queued personality's voice (the built-ins: the node has no
   person's personality files; an unknown name falls back to Robbie). Nothing the answer proposes is
   carried out: the node only writes the answer, and the laptop's chat offers its suggestions as ever.
4. **Writes** the answer as operations made by the node itself (its id from `node_meta`, its own
   `HybridClock`, having observed the clocks of what it changes), exactly the fields
   `ConversationService.finish`/`fail` write: the message (text, status, error, sources with cited flags,
   model, local, personality, updated_at), the conversation (updated_at) and the action (status, done_by =
   the node's id, error, updated_at). They are stored by `aurora.node.oplog.ingest_on`, the push's own
   path (sequenced, merged, announced), so laptops pull the answer like any other change. The write checks,
   under the operation log's lock, that the action is still queued (a laptop may have answered or cancelled
   it meanwhile) and that this process still holds the claim.

No model in reach (no Ollama host answers and no small model is installed): the action stays queued, its
claim is released, the processor stops for this run and says so once in the log (again only after a model
has answered in between). A failed answer (a stream that broke off, a model that gave nothing) is written
as failed, as on the laptop, with its one-line reason.

The laptop's prompt module is pure (fences, budget, citations): the node imports it as the laptop does,
and a test checks that neither the laptop's store nor SQLite is loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from psycopg import AsyncConnection

from aurora.app.assistant.answer_text import clean_answer, repeating
from aurora.app.assistant.injection import scan
from aurora.app.assistant.personalities import Personality, builtin_personalities, find_personality
from aurora.app.assistant.prompt import (
    DEFAULT_BUDGET_CHARS,
    build_prompt,
    citations,
    fit_sources,
    no_support,
    prompt_room,
)
from aurora.app.assistant.sources import Source
from aurora.app.errors import AuroraError
from aurora.app.inference import (
    Backend,
    ChatRequest,
    InferenceError,
    LocalModelUnavailableError,
    ModelNotFoundError,
    NoBackendError,
    OllamaBackend,
    Router,
)
from aurora.app.inference.errors import one_line
from aurora.app.mood import Mood
from aurora.app.search import chunking
from aurora.node import auth
from aurora.node.config import NodeSettings
from aurora.node.db import Pool
from aurora.node.embed_jobs import MAX_ATTEMPTS, Encoder
from aurora.node.oplog import OPS_LOCK, ingest_on
from aurora.schema.chat import MAX_MESSAGE, QueuedAsk, SourceRef, queued_ask
from aurora.sync import Hlc, HybridClock, Operation, new_id

log = logging.getLogger(__name__)


EXCERPT_CHARS = 1_200
"""As `aurora.app.assistant.retrieval.EXCERPT_CHARS` (that module reads the laptop's search index)."""
SOURCES_LIMIT = 8
"""As the laptop's `retrieval.DEFAULT_LIMIT`."""
BATCH = 5
"""Questions answered per run at most: a run is bounded, the next one takes the rest."""
LEASE_S = 600.0
"""How long a claim holds: longer than the router's bounded request (120 s) with room to spare."""
RETRY_S = 300.0
"""An action whose answer could not be written (the database failed) waits this long before another try."""
FTS_TIMEOUT_MS = 2_000
RRF_K = 60

SCOPE: dict[str, tuple[str, str | None]] = {
    "tasks": ("task", None), "notes": ("note", None), "people": ("person", None),
    "mail": ("item", "mail"), "events": ("item", "event"), "messages": ("item", "message"),
    "transcripts": ("item", "transcript"),
}  # fmt: skip
"""A personality's memory scope names -> (entity kind, item kind)."""

_QUEUED = """
    SELECT e.entity_id, e."values" FROM entities AS e
    LEFT JOIN action_claims AS c ON c.action_id = e.entity_id
    WHERE e.entity = 'action' AND e."values" ->> 'status' = 'queued' AND e."values" ->> 'kind' = 'ask'
      AND e."values" -> 'deleted' IS DISTINCT FROM 'true'::jsonb
      AND (c.action_id IS NULL OR c.locked_until <= now())
    ORDER BY e."values" ->> 'created_at', e.entity_id
    LIMIT %s
"""
# One autocommit statement: a concurrent claim of the same action waits for this one and then finds the
# lease held (its WHERE fails), so exactly one claimer gets a row back.
_CLAIM = """
    INSERT INTO action_claims (action_id, claimed_by, locked_until)
    VALUES (%(id)s, %(claim)s, now() + make_interval(secs => %(lease)s))
    ON CONFLICT (action_id) DO UPDATE
        SET claimed_by = excluded.claimed_by, locked_until = excluded.locked_until,
            attempts = action_claims.attempts + 1
        WHERE action_claims.locked_until <= now()
    RETURNING attempts
"""
_RELEASE = "DELETE FROM action_claims WHERE action_id = %s AND claimed_by = %s"
_KEEP_FAILED = """
    UPDATE action_claims SET last_error = %s, locked_until = now() + make_interval(secs => %s)
    WHERE action_id = %s AND claimed_by = %s
"""
_VECTOR_HITS = """
    SELECT c.entity, c.entity_id, c.ord, c.vector <=> %(q)s::vector AS distance
    FROM chunk_vectors AS c JOIN entities AS e USING (entity, entity_id)
    WHERE c.model = %(model)s AND c.entity = ANY(%(kinds)s)
      AND (c.entity <> 'item' OR e."values" ->> 'kind' = ANY(%(items)s))
      AND e."values" -> 'deleted' IS DISTINCT FROM 'true'::jsonb
    ORDER BY distance
    LIMIT %(n)s
"""


def _searched_sql() -> str:
    """The searched fields of an entity (`chunking.SEARCHED_COLUMNS`, the laptop's) as one jsonb array,
    by kind: what the full-text match reads."""
    cases = " ".join(
        f"WHEN '{kind}' THEN jsonb_build_array("
        + ", ".join(f"e.\"values\" -> '{name}'" for name in columns)
        + ")"
        for kind, columns in chunking.SEARCHED_COLUMNS.items()
    )
    return f"(CASE e.entity {cases} END)"


_SEARCHED = _searched_sql()
_TEXT_HITS = f"""
    SELECT e.entity, e.entity_id
    FROM entities AS e, to_tsquery('english', %(q)s) AS q
    WHERE e.entity = ANY(%(kinds)s)
      AND (e.entity <> 'item' OR e."values" ->> 'kind' = ANY(%(items)s))
      AND e."values" -> 'deleted' IS DISTINCT FROM 'true'::jsonb
      AND jsonb_to_tsvector('english', {_SEARCHED}, '["string"]') @@ q
    ORDER BY ts_rank(jsonb_to_tsvector('english', {_SEARCHED}, '["string"]'), q) DESC, e.entity_id
    LIMIT %(n)s
"""
_EMBEDDING_DUE = "SELECT count(*) FROM embed_jobs WHERE attempts < %s"
"""Changes still waiting for their vectors (not parked after failing)."""
EMBED_WAIT_S = 30.0
"""How long a run waits for the node's embedding worker to catch up before it retrieves: a question
pushed with the note it asks about should find that note."""


_WORD = re.compile(r"[^\W_]+")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _stamp(at: datetime) -> str:
    """A time as operations carry it (`aurora.app.entities.iso`: UTC, ISO 8601)."""
    return at.astimezone(UTC).isoformat()


# --- the node's router ----------------------------------------------------------------------------------


def node_backends(settings: NodeSettings) -> list[Backend]:
    """Each of `ollama_hosts` in order, then the small in-process model where `local_llm` is on and the
    `local-llm` extra (llama.cpp) is installed."""
    backends: list[Backend] = []
    for n, host in enumerate(settings.ollama_host_list):
        backends.append(OllamaBackend(host, name=f"ollama{n + 1}"))
    if settings.local_llm and importlib.util.find_spec("llama_cpp") is not None:
        from aurora.app.inference import LocalLlamaBackend

        backends.append(LocalLlamaBackend())
    return backends


# --- retrieval on the node ------------------------------------------------------------------------------


def _scope(scope: Iterable[str]) -> tuple[list[str], list[str]]:
    kinds: dict[str, None] = {}
    items: dict[str, None] = {}
    for name in scope:
        entity, item = SCOPE[name]
        kinds[entity] = None
        if item is not None:
            items[item] = None
    return list(kinds), list(items)


def _tsquery(question: str) -> str:
    """Any of the question's words (PostgreSQL's English configuration drops the function words)."""
    return " | ".join(dict.fromkeys(w.casefold() for w in _WORD.findall(question)))


def _title(entity: str, values: Mapping[str, Any]) -> str:
    if entity == "note":
        body = str(values.get("body") or "").strip()
        return body.splitlines()[0][:80] if body else ""
    if entity == "person":
        return str(values.get("name") or "")
    return str(values.get("title") or "")


def _when(entity: str, values: Mapping[str, Any]) -> str | None:
    if entity == "person":
        return None
    stamp = values.get("occurred_at") if entity == "item" else values.get("created_at")
    return str(stamp) if stamp else None


def _excerpt(text: str, question: str, limit: int) -> str:
    """At most `limit` characters of `text`, from a little before the first word of the question it holds."""
    text = text.strip()
    if len(text) <= limit:
        return text
    folded = text.casefold()
    found = [folded.find(w.casefold()) for w in _WORD.findall(question) if len(w) > 3]
    hit = min((p for p in found if p >= 0), default=0)
    start = max(0, hit - limit // 4)
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < hit else start
    end = min(len(text), start + limit - 2)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start + limit // 2 else end
    return ("…" if start else "") + text[start:end].strip() + ("…" if end < len(text) else "")


async def _vector_ranked(
    conn: AsyncConnection[Any],
    vector: Sequence[float],
    model: str,
    kinds: list[str],
    items: list[str],
    n: int,
) -> list[tuple[str, str, int]]:
    literal = "[" + ",".join(f"{x:.7g}" for x in vector) + "]"
    cur = await conn.execute(
        _VECTOR_HITS, {"q": literal, "model": model, "kinds": kinds, "items": items, "n": n * 4}
    )
    best: dict[tuple[str, str], int] = {}
    for entity, entity_id, ord_, _distance in await cur.fetchall():
        best.setdefault((str(entity), str(entity_id)), int(ord_))
    return [(e, i, o) for (e, i), o in best.items()][:n]


async def _text_ranked(
    conn: AsyncConnection[Any], question: str, kinds: list[str], items: list[str], n: int
) -> list[tuple[str, str]]:
    query = _tsquery(question)
    if not query:
        return []
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL statement_timeout = {FTS_TIMEOUT_MS}")
            cur = await conn.execute(_TEXT_HITS, {"q": query, "kinds": kinds, "items": items, "n": n})
            return [(str(e), str(i)) for e, i in await cur.fetchall()]
    except Exception as error:  # too slow on a large store, or a word PostgreSQL's parser refuses
        log.info("full-text search for a queued question gave up (%s); vectors alone", one_line(error))
        return []


async def retrieve_on_node(
    pool: Pool,
    question: str,
    scope: Iterable[str],
    encoder: Encoder | None,
    limit: int = SOURCES_LIMIT,
    *,
    excerpt_chars: int = EXCERPT_CHARS,
) -> list[Source]:
    """The best `limit` sources for `question` among the kinds in `scope`, best first, as S1, S2..."""
    kinds, items = _scope(scope)
    if not kinds or limit <= 0 or not question.strip():
        return []
    vector = None
    if encoder is not None:
        vector = (await asyncio.to_thread(encoder.encode, [question]))[0].tolist()
    async with pool.connection() as conn:
        by_vector = (
            await _vector_ranked(conn, vector, encoder.name, kinds, items, limit)
            if vector is not None and encoder is not None
            else []
        )
        by_text = await _text_ranked(conn, question, kinds, items, limit)
        score: dict[tuple[str, str], float] = {}
        for rank, (entity, entity_id, _ord) in enumerate(by_vector):
            score[(entity, entity_id)] = score.get((entity, entity_id), 0.0) + 1 / (RRF_K + rank + 1)
        for rank, key in enumerate(by_text):
            score[key] = score.get(key, 0.0) + 1 / (RRF_K + rank + 1)
        chosen = sorted(score, key=lambda k: -score[k])[:limit]
        if not chosen:
            return []
        cur = await conn.execute(
            'SELECT entity, entity_id, "values" FROM entities AS e '
            "JOIN jsonb_to_recordset(%s::jsonb) AS k(entity text, entity_id text) USING (entity, entity_id)",
            (json.dumps([{"entity": e, "entity_id": i} for e, i in chosen]),),
        )
        found = {(str(e), str(i)): v for e, i, v in await cur.fetchall()}
    best_chunk = {(e, i): o for e, i, o in by_vector}
    sources: list[Source] = []
    for key in chosen:
        values = found.get(key)
        if not isinstance(values, dict):
            continue
        entity, entity_id = key
        doc = chunking.document(entity, values)
        if doc is None:
            continue
        body = doc.text
        if len(body) > excerpt_chars and key in best_chunk:
            cut = chunking.chunks(entity, values)
            body = cut[best_chunk[key]] if best_chunk[key] < len(cut) else body
        text = _excerpt(body, question, excerpt_chars)
        title = _title(entity, values)
        if not text and not title:
            continue
        kind = str(values.get("kind") or "item") if entity == "item" else entity
        origin = str(values["source"]) if values.get("source") else None
        sources.append(
            Source(
                id=f"S{len(sources) + 1}",
                kind=kind,
                entity_id=entity_id,
                title=title,
                when=_when(entity, values),
                text=text,
                origin=origin,
                flagged=tuple(f.rule for f in scan(f"{title}\n{text}")),
            )
        )
    return sources


# --- the answer -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What the node writes for one question: done (`text`, sources) or failed (`error`, partial text)."""

    text: str
    personality: str
    sources: tuple[SourceRef, ...] = ()
    model: str = ""
    local: bool = False
    error: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error)


class NoModelError(Exception):
    """No model could be reached at all: the question keeps waiting."""


@dataclass
class RunReport:
    answered: int = 0
    failed: int = 0
    waiting: int = 0
    """Left queued: no model in reach."""
    skipped: int = 0
    """Claimed by another process, or answered or cancelled elsewhere meanwhile."""
    seconds: list[float] = field(default_factory=list)
    """How long each written answer took, claim to commit."""


class AnswerProcessor:
    """Answers queued `ask` actions (see the module docstring). `run_once` for one pass; `tick` is what the
    scheduler runs. `personalities`: the built-ins unless given; `encoder`: the embedding model for the
    question (None: full-text search alone); `mood`: the node's latest mood, for the tone."""

    def __init__(
        self,
        pool: Pool,
        router: Router,
        *,
        encoder: Encoder | None = None,
        personalities: Mapping[str, Personality] | None = None,
        mood: Callable[[], Mood | None] | None = None,
        local_backends: frozenset[str] = frozenset({"local"}),
        batch: int = BATCH,
        lease_s: float = LEASE_S,
        budget_chars: int = DEFAULT_BUDGET_CHARS,
        sources_limit: int = SOURCES_LIMIT,
        now: Callable[[], datetime] = _utc_now,
        embed_wait_s: float = 0.0,
    ) -> None:
        """`embed_wait_s`: how long a run waits for the embedding worker to clear its queue first (0 when
        no worker runs on this node: the queue would never clear)."""
        self._pool = pool
        self.embed_wait_s = embed_wait_s
        self.router = router
        self.encoder = encoder
        self.personalities = dict(personalities or builtin_personalities())
        self._mood = mood
        self.local_backends = local_backends
        self.batch = batch
        self.lease_s = lease_s
        self.budget_chars = budget_chars
        self.sources_limit = sources_limit
        self._now = now
        self._node_id: str | None = None
        self._clock: HybridClock | None = None
        self._lock = asyncio.Lock()
        self._told_no_model = False

    @classmethod
    def from_settings(
        cls, pool: Pool, settings: NodeSettings, *, mood: Callable[[], Mood | None] | None = None
    ) -> AnswerProcessor:
        """The processor `aurora-node serve` runs: the router over `node_backends(settings)` and the
        laptop's embedding model (loaded on the first question)."""
        from aurora.app.embed import Embedder

        wait = EMBED_WAIT_S if settings.embed else 0.0
        return cls(pool, Router(node_backends(settings)), encoder=Embedder(), mood=mood, embed_wait_s=wait)

    async def _embedding_caught_up(self) -> None:
        """Wait (at most `embed_wait_s`) until the embedding worker has no change left to embed."""
        deadline = asyncio.get_running_loop().time() + self.embed_wait_s
        while asyncio.get_running_loop().time() < deadline:
            async with self._pool.connection() as conn:
                cur = await conn.execute(_EMBEDDING_DUE, (MAX_ATTEMPTS,))
                row = await cur.fetchone()
            if not row or not row[0]:
                return
            await asyncio.sleep(0.25)

    async def node_id(self) -> str:
        if self._node_id is None:
            self._node_id, _secret = await auth.node_identity(self._pool)
            self._clock = HybridClock(self._node_id)
        return self._node_id

    # --- one pass -------------------------------------------------------------------------------------

    async def run_once(self) -> RunReport:
        """Answer up to `batch` queued questions, the oldest first; stops at the first that finds no model."""
        async with self._lock:
            report = RunReport()
            node_id = await self.node_id()
            async with self._pool.connection() as conn:
                cur = await conn.execute(_QUEUED, (self.batch,))
                rows = await cur.fetchall()
            if rows and not self.router.status().backends:
                self._no_model(f"{len(rows)} waiting", "no Ollama host is set, no small model installed")
                report.waiting = len(rows)
                return report
            if rows:
                await self._embedding_caught_up()
            for action_id, values in rows:
                ask = queued_ask(str(action_id), values.get("payload") if isinstance(values, dict) else None)
                if ask is None:
                    continue
                claim = uuid.uuid4()
                if not await self._claim(ask.action_id, claim):
                    report.skipped += 1
                    continue
                started = asyncio.get_running_loop().time()
                try:
                    answer = await self.answer(ask)
                except NoModelError as error:
                    await self._release(ask.action_id, claim)
                    report.waiting += 1
                    self._no_model("questions wait", str(error))
                    break
                except asyncio.CancelledError:  # the node is stopping: the next start answers it
                    await self._release(ask.action_id, claim)
                    raise
                except Exception as error:  # tried again after RETRY_S, not every run
                    await self._keep_failed(ask.action_id, claim, one_line(error))
                    raise
                self._told_no_model = False
                try:
                    written = await self.write(ask, answer, node_id, claim)
                except Exception as error:
                    await self._keep_failed(ask.action_id, claim, one_line(error))
                    raise
                if not written:
                    report.skipped += 1
                    continue
                report.seconds.append(asyncio.get_running_loop().time() - started)
                if answer.failed:
                    report.failed += 1
                else:
                    report.answered += 1
            return report

    async def tick(self) -> None:
        """What the scheduler runs: `run_once`, with a failure logged (the next run tries again)."""
        try:
            report = await self.run_once()
        except Exception as error:
            log.warning(
                "could not answer queued questions (%s); trying again at the next run", one_line(error)
            )
            return
        if report.answered or report.failed:
            log.info(
                "answered %d queued questions (%d failed) in %.1f s",
                report.answered + report.failed, report.failed, sum(report.seconds),
            )  # fmt: skip

    def _no_model(self, what: str, why: str) -> None:
        """Say once (until a model answers again) that questions wait for a model."""
        if not self._told_no_model:
            log.warning("%s: no model is in reach on the node (%s)", what, why)
            self._told_no_model = True

    async def idle(self) -> None:
        """Return once no run is in flight."""
        async with self._lock:
            return

    async def aclose(self) -> None:
        await self.router.aclose()

    # --- claims ---------------------------------------------------------------------------------------

    async def _claim(self, action_id: str, claim: uuid.UUID) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_CLAIM, {"id": action_id, "claim": claim, "lease": self.lease_s})
            return await cur.fetchone() is not None

    async def _release(self, action_id: str, claim: uuid.UUID) -> None:
        with contextlib.suppress(Exception):  # the lease runs out by itself
            async with self._pool.connection() as conn:
                await conn.execute(_RELEASE, (action_id, claim))

    async def _keep_failed(self, action_id: str, claim: uuid.UUID, error: str) -> None:
        with contextlib.suppress(Exception):
            async with self._pool.connection() as conn:
                await conn.execute(_KEEP_FAILED, (error[:500], RETRY_S, action_id, claim))

    # --- answering ------------------------------------------------------------------------------------

    def _personality(self, name: str) -> Personality:
        try:
            return find_personality(self.personalities, name or None)
        except AuroraError:
            return find_personality(self.personalities, None)

    async def answer(self, ask: QueuedAsk) -> Answer:
        """Retrieve, prompt and ask the router; `NoModelError` when no model can be reached at all."""
        chosen = self._personality(ask.personality)
        mood = self._mood() if self._mood is not None else None
        found = await retrieve_on_node(
            self._pool, ask.question, chosen.memory_scope, self.encoder, self.sources_limit
        )
        sources = fit_sources(found, prompt_room(chosen, ask.question, mood, self.budget_chars))
        fixed = no_support(sources)
        if fixed is not None:
            return Answer(fixed, chosen.name)
        messages = build_prompt(chosen, ask.question, sources, mood, today=self._today())
        request = ChatRequest(
            model=chosen.model,
            messages=messages,
            temperature=chosen.temperature,
            max_tokens=chosen.max_tokens,
        )
        parts: list[str] = []
        backend = model = ""
        try:
            for attempt in (request, request.model_copy(update={"model": None})):
                try:
                    async with contextlib.aclosing(self.router.chat(attempt)) as stream:
                        async for chunk in stream:
                            backend, model = chunk.backend, chunk.model
                            parts.append(chunk.text)
                            if repeating("".join(parts)):
                                break  # leaving the block closes the stream: the model stops
                    break
                except ModelNotFoundError as error:
                    if attempt.model is None and not parts:  # only a router with no backend says so
                        raise NoModelError(one_line(error, 300)) from None
                    if parts:
                        raise
        except (LocalModelUnavailableError, NoBackendError) as error:
            if not parts:
                raise NoModelError(one_line(error, 300)) from None
            return Answer(clean_answer("".join(parts)), chosen.name, error=one_line(error, 300))
        except InferenceError as error:
            partial = getattr(error, "partial", "") or "".join(parts)
            return Answer(clean_answer(partial), chosen.name, error=one_line(error, 300))
        text = clean_answer("".join(parts))
        if not text:
            return Answer(
                "", chosen.name, error="The model gave no answer: ask again, perhaps in other words"
            )
        cited = {s.id for s in citations(text, sources)}
        refs = tuple(
            SourceRef(
                ref=s.id, kind=s.kind[:20], entity_id=s.entity_id, title=s.title[:300], cited=s.id in cited
            )
            for s in sources
        )
        return Answer(text, chosen.name, refs, model, backend in self.local_backends)

    def _today(self) -> date:
        return self._now().date()

    # --- writing --------------------------------------------------------------------------------------

    async def write(self, ask: QueuedAsk, answer: Answer, node_id: str, claim: uuid.UUID) -> bool:
        """Write `answer` as the node's operations, through the push's own path; False (nothing written)
        when the action is no longer queued or the claim was lost."""
        assert self._clock is not None
        stamp = _stamp(self._now())
        async with self._pool.connection() as conn, conn.transaction():
            # Under the log's lock (taken again, harmlessly, by `ingest_on`): no push lands between the
            # check and the write, so an action answered or cancelled meanwhile is left alone.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (OPS_LOCK,))
            cur = await conn.execute(
                "SELECT 1 FROM action_claims WHERE action_id = %s AND claimed_by = %s FOR UPDATE",
                (ask.action_id, claim),
            )
            if await cur.fetchone() is None:
                return False
            cur = await conn.execute(
                'SELECT entity, entity_id, "values", clocks FROM entities '
                "WHERE (entity, entity_id) IN (('action', %s), ('message', %s), ('conversation', %s))",
                (ask.action_id, ask.answer_id, ask.conversation_id),
            )
            held = {(str(e), str(i)): (v, c) for e, i, v, c in await cur.fetchall()}
            action = held.get(("action", ask.action_id))
            if action is None or action[0].get("status") != "queued":
                await conn.execute(_RELEASE, (ask.action_id, claim))
                return False
            for _values, clocks in held.values():
                for text in (clocks or {}).values():
                    with contextlib.suppress(ValueError, TypeError):
                        self._clock.observe(Hlc.decode(str(text)))
            ops = self._operations(ask, answer, node_id, stamp, has_conversation=bool(
                held.get(("conversation", ask.conversation_id))
            ))  # fmt: skip
            await ingest_on(conn, ops)
            await conn.execute(_RELEASE, (ask.action_id, claim))
        return True

    def _operations(
        self, ask: QueuedAsk, answer: Answer, node_id: str, stamp: str, *, has_conversation: bool
    ) -> list[Operation]:
        """The fields `ConversationService.finish` / `fail` write, as the node's operations."""
        assert self._clock is not None
        if answer.failed:
            message: dict[str, Any] = {
                "text": answer.text[:MAX_MESSAGE],
                "status": "failed",
                "error": answer.error[:2000],
            }
            action = {"status": "failed", "error": answer.error[:2000]}
        else:
            message = {
                "text": answer.text[:MAX_MESSAGE],
                "status": "done",
                "error": "",
                "sources": [s.model_dump() for s in answer.sources],
                "model": answer.model[:200],
                "local": answer.local,
                "personality": answer.personality[:80],
            }
            action = {"status": "done", "error": ""}
        changes: list[tuple[str, str, dict[str, Any]]] = [
            ("message", ask.answer_id, {**message, "updated_at": stamp})
        ]
        if has_conversation:
            changes.append(("conversation", ask.conversation_id, {"updated_at": stamp}))
        changes.append(("action", ask.action_id, {**action, "done_by": node_id[:64], "updated_at": stamp}))
        return [
            Operation(
                op_id=new_id(),
                device_id=node_id,
                hlc=self._clock.now().encode(),
                entity=entity,
                entity_id=entity_id,
                fields=fields,
            )
            for entity, entity_id, fields in changes
        ]


__all__ = [
    "Answer",
    "AnswerProcessor",
    "QueuedAsk",
    "RunReport",
    "clean_answer",
    "node_backends",
    "retrieve_on_node",
]
