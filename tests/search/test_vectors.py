"""The vector half of search with the real all-MiniLM-L6-v2 model: the embedding worker, the in-memory index
kept in step with SQLite, the ranker fused by `hybrid.search`, filters, deletion, a killed worker, a model
change."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aurora.app.config import Settings
from aurora.app.embed import Embedder
from aurora.app.ingest.pipeline import Importer
from aurora.app.search import Filters, Indexer, keyword_search, search
from aurora.app.search.embed_worker import EmbedWorker
from aurora.app.search.vectors import VectorIndex, to_blob, vector_ranker
from aurora.app.store import Store
from aurora.app.workspace import Workspace
from tests.conftest import FIXED_NOW

BOILER = "The boiler is broken again, call a plumber before the weekend"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def corpus(
    tmp_path_factory: pytest.TempPathFactory, real_data: Path, embedder: Embedder
) -> Iterator[tuple[Workspace, VectorIndex]]:
    """Real mail, tasks and transcripts plus a few tasks and notes, indexed and embedded (read-only)."""
    root = tmp_path_factory.mktemp("corpus")
    ws = Workspace.open(
        Settings(data_dir=root, workspace=str(root / "w.db"), device_name="t"), now=lambda: FIXED_NOW
    )
    ws.notes.add(BOILER)
    ws.notes.add("Quarterly budget review: finance wants the numbers by Friday")
    ws.tasks.add("Renew the passport before the trip to Lisbon")
    ws.notes.add("Travel documents: visa appointment on Tuesday")
    ws.tasks.add("Water the plants on the balcony")
    Importer(ws).run(
        [
            real_data / d
            for d in ("email/tika", "email/mbox", "email/cpython", "tasks", "transcripts/subtitles")
        ]
    )
    Indexer(ws.store).drain_all()
    index = VectorIndex(ws.store, embedder.name)
    worker = EmbedWorker(ws.store, embedder, index)
    assert worker.run_all() > 80
    assert worker.progress()[0] == worker.progress()[1]
    yield ws, index
    ws.close()


def _ids(hits: list[Any]) -> list[str]:
    return [h.entity_id for h in hits]


def test_a_query_sharing_no_word_finds_the_right_note(
    corpus: tuple[Workspace, VectorIndex], embedder: Embedder
) -> None:
    ws, index = corpus
    (boiler,) = [n.id for n in ws.notes.list() if n.body == BOILER]
    assert keyword_search(ws.store, "heating repair") == []
    rank = vector_ranker(index, embedder)
    hits = rank("heating repair", Filters(), 5)
    assert hits[0].entity_id == boiler and hits[0].kind == "note"
    assert hits[0].snippet == BOILER
    assert len({h.key for h in hits}) == len(hits)  # one hit per entity


def test_hybrid_search_fuses_keyword_and_vector_hits(
    corpus: tuple[Workspace, VectorIndex], embedder: Embedder
) -> None:
    ws, index = corpus
    rank = vector_ranker(index, embedder)
    hits = search(
        ws.store, "travel documents", vector_ranker=rank, kinds=["task", "note"], limit=5, fresh=False
    )
    by_title = {h.title.split(":")[0]: h for h in hits}
    assert "«Travel» «documents»" in by_title["Travel documents"].snippet  # keyword hit, highlighted
    passport = by_title["Renew the passport before the trip to Lisbon"]  # only the vectors find it
    assert passport.kind == "task" and passport.score > 0
    assert hits[0].title.startswith("Travel documents")  # found by both, so first
    # A query no keyword matches is still answered, by the vectors alone.
    semantic = search(ws.store, "heating repair", vector_ranker=rank, limit=3, fresh=False)
    assert semantic[0].snippet.startswith("The boiler") and semantic[0].title.startswith("The boiler")


def test_filters_apply_to_vectors(corpus: tuple[Workspace, VectorIndex], embedder: Embedder) -> None:
    ws, index = corpus
    rank = vector_ranker(index, embedder)
    only_tasks = rank("heating repair", Filters.make(kinds=["task"]), 10)
    assert only_tasks and {h.kind for h in only_tasks} == {"task"}
    mail = rank("meeting", Filters.make(kinds=["mail"]), 50)
    mail_ids = {str(r[0]) for r in ws.store.query("SELECT id FROM items WHERE kind = 'mail'")}
    assert mail and set(_ids(mail)) <= mail_ids
    since, until = datetime(2008, 1, 1, tzinfo=UTC), datetime(2015, 1, 1, tzinfo=UTC)
    dated = rank("message", Filters.make(since=since, until=until), 50)
    assert dated and all(
        h.occurred_at and since.isoformat() <= h.occurred_at < until.isoformat() for h in dated
    )
    source = str(ws.store.query("SELECT source FROM chunks WHERE source IS NOT NULL LIMIT 1")[0][0])
    by_source = rank("message", Filters.make(source=source), 50)
    assert by_source and {h.source for h in by_source} == {source}
    (person,) = ws.store.query(
        "SELECT person_id FROM interactions WHERE deleted = 0 "
        "GROUP BY person_id ORDER BY count(*) DESC LIMIT 1"
    )[0]
    theirs = {
        str(r[0]) for r in ws.store.query("SELECT item_id FROM interactions WHERE person_id = ?", (person,))
    }
    with_person = rank("message", Filters.make(person_id=str(person)), 50)
    assert with_person and set(_ids(with_person)) <= theirs and {h.kind for h in with_person} == {"item"}
    # The same filters through hybrid search, on both halves.
    fused = search(
        ws.store, "message", vector_ranker=rank, kinds=["mail"], since=since, until=until, fresh=False
    )
    assert fused and set(_ids(fused)) <= mail_ids
    assert all(h.occurred_at and since.isoformat() <= h.occurred_at < until.isoformat() for h in fused)


def test_the_index_kept_in_step_equals_one_loaded_afresh(workspace: Workspace, embedder: Embedder) -> None:
    ws = workspace
    tap = ws.tasks.add("Fix the leaking kitchen tap")
    note = ws.notes.add("Call the dentist to move the appointment")
    ws.tasks.add("Order new running shoes")
    Indexer(ws.store).drain_all()
    index = VectorIndex(ws.store, embedder.name)
    index.sync()  # loaded (empty) before anything is embedded: it must follow every write from here
    worker = EmbedWorker(ws.store, embedder, index)
    assert worker.run_all() == 3 and len(index) == 3
    rank = vector_ranker(index, embedder)
    assert _ids(rank("plumbing problem in the kitchen", Filters(), 1)) == [tap.id]

    # Deleting the task deletes its chunk, whose trigger deletes its vector: gone from the results.
    ws.tasks.delete(tap.id)
    Indexer(ws.store).drain_all()
    assert ws.store.query("SELECT count(*) FROM chunk_vectors")[0][0] == 2
    assert tap.id not in _ids(rank("plumbing problem in the kitchen", Filters(), 10))
    assert len(index) == 2

    # A changed text loses its vector at once and is embedded again from the new text.
    ws.notes.update(note.id, body="Book the car in for its annual service")
    Indexer(ws.store).drain_all()
    assert note.id not in _ids(rank("dentist appointment", Filters(), 10))
    assert worker.progress() == (1, 2)
    assert worker.run_all() == 1
    assert _ids(rank("vehicle maintenance", Filters(), 1)) == [note.id]

    fresh = VectorIndex(ws.store, embedder.name)
    fresh.load()
    assert sorted(fresh.chunk_ids()) == sorted(index.chunk_ids())
    by_id = dict(zip(index.chunk_ids(), index.vectors(), strict=True))
    for chunk_id, vector in zip(fresh.chunk_ids(), fresh.vectors(), strict=True):
        np.testing.assert_array_equal(by_id[chunk_id], vector)
    # Stored as sqlite-vec reads them: its cosine distance agrees with the index's.
    if ws.store.vec_version:
        query = embedder.encode_query("vehicle maintenance")
        (distance,) = ws.store.query(
            "SELECT vec_distance_cosine(v.vector, ?) FROM chunk_vectors AS v "
            "JOIN chunks AS c ON c.id = v.chunk_id WHERE c.entity_id = ?",
            (to_blob(query), note.id),
        )[0]
        assert 1 - distance == pytest.approx(index.search(query, 1)[0][1], abs=1e-5)


def test_another_process_writing_vectors_is_followed(settings: Settings, embedder: Embedder) -> None:
    ws = Workspace.open(settings)
    other = Store.open(ws.path)
    try:
        ws.tasks.add("Fix the leaking kitchen tap")
        Indexer(ws.store).drain_all()
        index = VectorIndex(ws.store, embedder.name)
        index.sync()
        assert len(index) == 0
        EmbedWorker(other, embedder).run_all()  # no index of ours told: only the log
        assert len(index.search(embedder.encode_query("plumbing"), 5)) == 1
    finally:
        other.close()
        ws.close()


def test_encoding_never_holds_the_write_lock(workspace: Workspace, embedder: Embedder) -> None:
    for i in range(5):
        workspace.notes.add(f"Note number {i} about the garden")
    Indexer(workspace.store).drain_all()
    held: list[bool] = []

    class Watching:
        name = embedder.name

        def encode(self, texts: list[str], batch_size: int = 64) -> Any:
            held.append(workspace.store._lock.locked())
            return embedder.encode(texts, batch_size=batch_size)

    EmbedWorker(workspace.store, Watching(), None).run_all(batch=2)  # type: ignore[arg-type]
    assert held == [False, False, False]


def test_a_model_change_embeds_everything_again(workspace: Workspace, embedder: Embedder) -> None:
    for text in ("Fix the leaking kitchen tap", "Renew the passport", "Plan the team offsite"):
        workspace.tasks.add(text)
    Indexer(workspace.store).drain_all()
    old_index = VectorIndex(workspace.store, embedder.name)
    EmbedWorker(workspace.store, embedder, old_index).run_all()
    assert len(old_index) == 3

    class Renamed:
        """The real model under another model setting (as a local model folder would be)."""

        name = "other-model"

        def encode(self, texts: list[str], batch_size: int = 64) -> Any:
            return embedder.encode(texts, batch_size=batch_size)

    new_index = VectorIndex(workspace.store, "other-model")
    worker = EmbedWorker(workspace.store, Renamed(), new_index)  # type: ignore[arg-type]
    assert worker.progress() == (0, 3)
    assert worker.run_all() == 3 and worker.progress() == (3, 3)
    assert workspace.store.query("SELECT DISTINCT model FROM chunk_vectors") == [("other-model",)]
    assert len(new_index) == 3
    old_index.sync()
    assert len(old_index) == 0  # the old model's vectors were replaced, and left its index


_EMBED_THEN_DIE = """
import os, signal, sys
from pathlib import Path
from aurora.app.embed import Embedder
from aurora.app.search.embed_worker import EmbedWorker
from aurora.app.store import Store

class DiesOnThirdBatch(Embedder):
    calls = 0
    def encode(self, texts, batch_size=64):
        DiesOnThirdBatch.calls += 1
        if DiesOnThirdBatch.calls == 3:
            os.kill(os.getpid(), signal.SIGKILL)  # killed mid-batch: encoding, nothing written yet
        return super().encode(texts, batch_size)

store = Store.open(Path(sys.argv[1]))
EmbedWorker(store, DiesOnThirdBatch()).run_all(batch=4)
"""


def test_a_killed_worker_resumes_where_it_stopped(settings: Settings, embedder: Embedder) -> None:
    ws = Workspace.open(settings)
    for i in range(10):
        ws.notes.add(f"Note {i}: the garden needs {i} more tulips")
    Indexer(ws.store).drain_all()
    ws.close()
    proc = subprocess.run([sys.executable, "-c", _EMBED_THEN_DIE, settings.workspace], env=os.environ.copy(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    store = Store.open(Path(settings.workspace))
    try:
        index = VectorIndex(store, embedder.name)
        worker = EmbedWorker(store, embedder, index)
        assert worker.progress() == (8, 10)  # two batches of four committed; the third was lost
        assert len(index.search(embedder.encode_query("tulips"), 20)) == 8
        assert worker.run_all(batch=4) == 2
        assert worker.progress() == (10, 10)
        assert store.query("SELECT count(*), count(DISTINCT chunk_id) FROM chunk_vectors") == [(10, 10)]
        assert len(index) == 10
    finally:
        store.close()


def test_a_large_index_prefilters_by_bits_and_matches_the_exact_top_10(workspace: Workspace) -> None:
    """Past EXACT_BELOW rows a query scans one-bit codes, then re-ranks exactly: same answers as exact."""
    rng = np.random.default_rng(1)
    n = 25_000
    centres = rng.standard_normal((500, 384)).astype(np.float32)
    vectors = centres[rng.integers(0, 500, n)] + 0.6 * rng.standard_normal((n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with workspace.store.transaction() as tx:
        for i in range(n):
            tx.execute(
                "INSERT INTO chunks (id, kind, entity_id, ord, text, source, embedded_model) "
                "VALUES (?, 'note', ?, 0, 'x', ?, 'm')",
                (i + 1, f"n{i}", f"s{i % 3}"),
            )
            tx.execute("INSERT INTO chunk_vectors VALUES (?, 'm', ?)", (i + 1, to_blob(vectors[i])))
    index = VectorIndex(workspace.store, "m")
    assert len(index) == n > 20_000
    recalls = []
    for q in vectors[rng.integers(0, n, 30)] + 0.1 * rng.standard_normal((30, 384)).astype(np.float32):
        q /= np.linalg.norm(q)
        exact = set((np.argsort(-(vectors @ q))[:10] + 1).tolist())
        recalls.append(len({c for c, _ in index.search(q, 10)} & exact) / 10)
        filtered = index.search(q, 10, Filters.make(source="s1"))
        assert len(filtered) == 10 and all(c % 3 == 2 for c, _ in filtered)  # chunk i + 1, source s{i % 3}
    assert np.mean(recalls) >= 0.97


def test_similarity_is_the_cosine_of_each_entitys_nearest_chunk(
    corpus: tuple[Workspace, VectorIndex], embedder: Embedder
) -> None:
    ws, index = corpus
    query = embedder.encode_query("mapper output sorted before the reducer")
    entities = ws.store.query(
        "SELECT kind, entity_id FROM chunks GROUP BY kind, entity_id HAVING count(*) > 1 LIMIT 3"
    )
    keys = [(str(k), str(e)) for k, e in entities] + [("note", "no-such-note")]
    near = index.similarity(query, keys)
    assert set(near) == set(keys[:3])  # an entity with no vectors is left out
    ids, matrix = index.chunk_ids().tolist(), index.vectors()
    for kind, entity_id in keys[:3]:
        chunk_ids = [r[0] for r in ws.store.query(
            "SELECT id FROM chunks WHERE kind = ? AND entity_id = ?", (kind, entity_id))]  # fmt: skip
        exact = max(float(matrix[ids.index(c)] @ query) for c in chunk_ids)
        assert near[(kind, entity_id)] == pytest.approx(exact, abs=1e-5)
