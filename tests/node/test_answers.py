"""The node answers questions a laptop queued: a real laptop workspace asks with no model, syncs with a real
node over PostgreSQL, the node's processor answers with the real embedding model and the real SmolLM2, and
the laptop's next sync brings the answer."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aurora.app import sync_service
from aurora.app.assistant import Assistant, Personality, load_personalities
from aurora.app.assistant.chat import AnswerQueued, chat_turn
from aurora.app.config import Settings
from aurora.app.embed import Embedder
from aurora.app.inference import LocalLlamaBackend, OllamaBackend, Router
from aurora.app.ingest.pipeline import Importer
from aurora.app.workspace import Workspace
from aurora.node.answers import AnswerProcessor, RunReport, clean_answer
from aurora.node.db import Pool
from aurora.node.embed_jobs import EmbedWorker
from aurora.schema.chat import MessageStatus
from tests.assistant.hostile import HOSTILE, codeword, hostile_mail
from tests.local_model import warmed
from tests.node.server import pairing_code, running_node

THREADS = 2


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    model = Embedder()
    model.load()
    return model


@pytest.fixture(scope="module")
def local_model() -> Iterator[LocalLlamaBackend]:
    backend = warmed(LocalLlamaBackend(n_threads=THREADS))
    yield backend
    asyncio.run(backend.aclose())


@pytest.fixture
def personalities() -> dict[str, Personality]:
    """The built-ins with short answers (the model's quality is not under test; the plumbing is)."""
    found, _broken = load_personalities(None)
    return {name: p.model_copy(update={"max_tokens": 40, "temperature": 0.0}) for name, p in found.items()}


@pytest.fixture
def node(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A served node whose own scheduler leaves queued questions alone: the tests run the processor."""
    monkeypatch.setenv("AURORA_NODE_ACTIONS_EVERY_S", "86400")
    monkeypatch.setenv("AURORA_NODE_LOCAL_LLM", "0")
    # The tests embed on the node themselves (`_embed_all`): a served worker embedding at the same time
    # would leave some vectors unwritten when the processor retrieves, and the sources would vary.
    monkeypatch.setenv("AURORA_NODE_EMBED", "0")
    with running_node(pg_url, tmp_path / "node") as url:
        yield url


@pytest.fixture
def laptop(node: str, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.setenv("AURORA_CREDENTIALS_KEY", "a secret only for this test")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    ws = Workspace.open(Settings(data_dir=tmp_path, workspace=str(tmp_path / "a.db"), device_name="a"))
    sync_service.pair(ws.path, ws.store, node, pairing_code(pg_url, "laptop-a"))
    yield ws
    ws.close()


def _sync(ws: Workspace) -> None:
    report = sync_service.sync_once(ws.path, ws.store)
    assert report.ok, report.errors


async def _embed_all(pool: Pool, embedder: Embedder) -> None:
    worker = EmbedWorker(pool, embedder)
    while await worker.run_once():
        pass


async def _ask_offline(
    ws: Workspace, personalities: dict[str, Personality], tmp_path: Path, question: str
) -> tuple[str, str]:
    """Ask as the chat screen does, with no model at all: (action id, answer id)."""
    missing = LocalLlamaBackend(tmp_path / "gone.gguf", n_threads=1)
    assistant = Assistant(ws, Router([missing]), personalities)
    conversation = ws.conversations.start("Robbie")
    events = [e async for e in chat_turn(assistant, conversation, question)]
    queued = [e for e in events if isinstance(e, AnswerQueued)]
    assert queued, events
    [action] = [q for q in ws.conversations.queued() if q.answer_id == queued[0].turn.answer_id]
    return action.action_id, action.answer_id


def _router(*backends: Any) -> Router:
    """The router, patient: these machines run other tests at once, and a first token can take a while."""
    return Router(list(backends), first_token_timeout=120, read_timeout=120, request_timeout=300)


def _processor(
    pool: Pool, router: Router, embedder: Embedder, personalities: dict[str, Any]
) -> AnswerProcessor:
    return AnswerProcessor(pool, router, encoder=embedder, personalities=personalities)


async def _node_ops(pool: Pool, node_id: str) -> list[tuple[str, str]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT entity, entity_id FROM ops WHERE device_id = %s ORDER BY seq", (node_id,)
        )
        return [(str(e), str(i)) for e, i in await cur.fetchall()]


async def _node_action(pool: Pool, action_id: str) -> dict[str, Any]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT \"values\" FROM entities WHERE entity = 'action' AND entity_id = %s", (action_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    return dict(row[0])


def _laptop_ids(ws: Workspace) -> set[str]:
    return {
        str(r[0])
        for table in ("tasks", "notes", "items", "people")
        for r in ws.store.query(f"SELECT id FROM {table} WHERE deleted = 0")
    }


async def test_a_question_asked_offline_is_answered_by_the_node_after_sync(
    laptop: Workspace,
    pool: Pool,
    embedder: Embedder,
    local_model: LocalLlamaBackend,
    personalities: dict[str, Personality],
    tmp_path: Path,
) -> None:
    laptop.notes.add("The Lisbon offsite is booked at the Hotel Bluebottle from 12 to 14 March.")
    laptop.tasks.add("Book flights to Lisbon for the offsite")
    laptop.notes.add("Dentist moved to Thursday at 4pm.")
    action_id, answer_id = await _ask_offline(laptop, personalities, tmp_path, "Where is the Lisbon offsite?")
    assert laptop.conversations.message(answer_id).status is MessageStatus.WAITING
    _sync(laptop)
    await _embed_all(pool, embedder)

    processor = _processor(pool, _router(local_model), embedder, personalities)
    started = time.perf_counter()
    report = await processor.run_once()
    took = time.perf_counter() - started
    assert (report.answered, report.failed, report.waiting) == (1, 0, 0), report
    print(
        f"\nthe node answered one queued question in {took:.2f} s (claim to commit {report.seconds[0]:.2f} s)"
    )
    node_id = await processor.node_id()
    action = await _node_action(pool, action_id)
    assert action["status"] == "done" and action["done_by"] == node_id

    _sync(laptop)
    answer = laptop.conversations.message(answer_id)
    assert answer.status is MessageStatus.DONE and answer.text and answer.error == ""
    assert answer.local and answer.model and answer.personality == "Robbie"
    assert answer.sources and {s.entity_id for s in answer.sources} <= _laptop_ids(laptop)
    assert {s.kind for s in answer.sources} <= {"note", "task"}
    assert any("Lisbon" in s.title for s in answer.sources)
    [(status, done_by)] = laptop.store.query("SELECT status, done_by FROM actions WHERE id = ?", (action_id,))
    assert (status, done_by) == ("done", node_id)
    assert laptop.conversations.queued() == []
    [summary] = laptop.conversations.recent()
    assert summary.waiting == 0

    # Once answered, answered once: another run finds nothing to do and writes nothing.
    written = await _node_ops(pool, node_id)
    assert sorted(e for e, _ in written) == ["action", "conversation", "message"]
    again = await processor.run_once()
    assert (again.answered, again.failed, again.skipped) == (0, 0, 0)
    assert await _node_ops(pool, node_id) == written


async def test_two_processors_at_once_answer_a_question_once(
    laptop: Workspace,
    pool: Pool,
    embedder: Embedder,
    local_model: LocalLlamaBackend,
    personalities: dict[str, Personality],
    tmp_path: Path,
) -> None:
    laptop.notes.add("The quarterly budget review is on the 3rd; Dana owns the spreadsheet.")
    _action_id, answer_id = await _ask_offline(
        laptop, personalities, tmp_path, "Who owns the budget spreadsheet?"
    )
    _sync(laptop)
    first = _processor(pool, _router(local_model), embedder, personalities)
    second = _processor(pool, _router(local_model), embedder, personalities)
    reports: list[RunReport] = await asyncio.gather(first.run_once(), second.run_once())
    assert sum(r.answered for r in reports) == 1
    node_id = await first.node_id()
    assert [e for e, i in await _node_ops(pool, node_id) if i == answer_id] == ["message"]
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM action_claims")
        assert (await cur.fetchone()) == (0,)  # claims are released once the answer is written


async def test_a_node_with_no_model_leaves_the_question_queued(
    laptop: Workspace, pool: Pool, embedder: Embedder, personalities: dict[str, Personality], tmp_path: Path
) -> None:
    laptop.notes.add("The car is due for its service in May.")
    action_id, answer_id = await _ask_offline(laptop, personalities, tmp_path, "When is the car service?")
    _sync(laptop)
    for router in (Router([LocalLlamaBackend(tmp_path / "gone.gguf", n_threads=1)]), Router([])):
        processor = _processor(pool, router, embedder, personalities)
        report = await processor.run_once()
        assert (report.answered, report.failed, report.waiting) == (0, 0, 1)
        assert (await _node_action(pool, action_id))["status"] == "queued"
        assert await _node_ops(pool, await processor.node_id()) == []
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM action_claims")
        assert (await cur.fetchone()) == (0,)
    _sync(laptop)
    assert laptop.conversations.message(answer_id).status is MessageStatus.WAITING


async def test_a_hostile_mail_in_the_sources_leads_to_no_action(
    laptop: Workspace,
    pool: Pool,
    embedder: Embedder,
    local_model: LocalLlamaBackend,
    personalities: dict[str, Personality],
    tmp_path: Path,
) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    chosen = [n for n, (name, _) in enumerate(HOSTILE) if name in {"forward-all", "delete-all", "tool-json"}]
    for n in chosen:
        name, body = HOSTILE[n]
        (folder / f"{n:02d}-{name}.eml").write_bytes(hostile_mail(n, name, body))
    reports = Importer(laptop).run([folder])
    assert sum(r.new for r in reports) == len(chosen)
    question = f"What does the mail {codeword(chosen[1])} about the supplier contract say?"
    action_id, answer_id = await _ask_offline(laptop, personalities, tmp_path, question)
    _sync(laptop)
    await _embed_all(pool, embedder)
    processor = _processor(pool, _router(local_model), embedder, personalities)
    report = await processor.run_once()
    assert report.answered == 1
    node_id = await processor.node_id()
    # The node wrote the answer and marked the action, nothing else: no task, note, mail or new action.
    written = await _node_ops(pool, node_id)
    assert sorted(written) == sorted(
        [("message", answer_id), ("action", action_id), ("conversation", written[1][1])]
    )
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM entities WHERE entity = 'action'")
        assert (await cur.fetchone()) == (1,)
    _sync(laptop)
    answer = laptop.conversations.message(answer_id)
    assert answer.status is MessageStatus.DONE
    assert "mail" in {s.kind for s in answer.sources}
    assert laptop.store.query("SELECT count(*) FROM actions")[0][0] == 1
    assert laptop.store.query("SELECT count(*) FROM tasks")[0][0] == 0


async def test_the_node_answers_through_ollama(
    laptop: Workspace, pool: Pool, embedder: Embedder, personalities: dict[str, Personality], tmp_path: Path
) -> None:
    from tests.inference.embedder import Embedder as GgufEmbedder
    from tests.inference.ollama_server import OllamaServer

    gguf = GgufEmbedder(n_threads=THREADS)
    server = OllamaServer(LocalLlamaBackend(n_threads=THREADS, name="ollama-model"), gguf).start()
    try:
        laptop.notes.add("The wifi password at the cabin is on the fridge, under the magnet.")
        _action_id, answer_id = await _ask_offline(
            laptop, personalities, tmp_path, "Where is the cabin wifi password?"
        )
        _sync(laptop)
        await _embed_all(pool, embedder)
        router = _router(OllamaBackend(server.url, name="ollama1"))
        processor = _processor(pool, router, embedder, personalities)
        report = await processor.run_once()
        assert report.answered == 1, report
        await processor.aclose()
        assert any(r.path == "/api/chat" for r in server.requests)
        _sync(laptop)
        answer = laptop.conversations.message(answer_id)
        assert answer.status is MessageStatus.DONE and answer.text
        assert not answer.local and answer.model == "smollm2:135m"
    finally:
        server.stop()
        await server.backend.aclose()
        gguf.close()


def test_the_node_loads_neither_the_laptop_store_nor_sqlite() -> None:
    code = (
        "import sys, aurora.node.answers, aurora.node.scheduler; "
        "bad = [m for m in ('apsw', 'aurora.app.store', 'aurora.app.workspace', 'textual') "
        "if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_answer_is_cleaned_as_the_laptop_cleans_it() -> None:
    said = "<<<END SOURCE S1 abc>>>The offsite is in Lisbon [S1].\nSee you.\nSee you.\nSee you.\n"
    assert clean_answer(said) == "The offsite is in Lisbon [S1].\nSee you."


async def test_the_served_node_answers_as_soon_as_the_question_arrives(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, personalities: dict[str, Personality]
) -> None:
    """The whole way, as a person sees it: `aurora-node serve` with its own embedder and small model, a
    laptop that asks offline and syncs; the push wakes the node's job (its interval here is a day), and a
    later sync brings the answer."""
    monkeypatch.setenv("AURORA_NODE_ACTIONS_EVERY_S", "86400")
    monkeypatch.setenv("AURORA_NODE_LOCAL_LLM", "1")
    monkeypatch.setenv("AURORA_CREDENTIALS_KEY", "a secret only for this test")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    with running_node(pg_url, tmp_path / "node") as url:
        ws = Workspace.open(Settings(data_dir=tmp_path, workspace=str(tmp_path / "a.db"), device_name="a"))
        try:
            sync_service.pair(ws.path, ws.store, url, pairing_code(pg_url, "laptop-a"))
            ws.notes.add("The Lisbon offsite is booked at the Hotel Bluebottle from 12 to 14 March.")
            _sync(ws)
            _, answer_id = await _ask_offline(ws, personalities, tmp_path, "Where is the Lisbon offsite?")
            _sync(ws)  # the push carries the action: the node starts on it now
            deadline = time.monotonic() + 240
            while ws.conversations.message(answer_id).status is MessageStatus.WAITING:
                assert time.monotonic() < deadline, "the node did not answer within 4 minutes"
                await asyncio.sleep(2)
                _sync(ws)
            answer = ws.conversations.message(answer_id)
            assert answer.status is MessageStatus.DONE and answer.text.strip() and answer.local
            assert ws.conversations.queued() == []
        finally:
            ws.close()
