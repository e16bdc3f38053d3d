"""A laptop takes the node's vectors for what a sync brought, instead of embedding it all again: a real node
over PostgreSQL embeds with the real model, a second laptop pulls and adopts; a hostile answer is ignored."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aurora.app import sync_service
from aurora.app.config import Settings
from aurora.app.embed import Embedder
from aurora.app.ingest.pipeline import Importer
from aurora.app.search.node_vectors import NodeChunk, NodeEntityVectors, adopt_node_vectors, text_hash
from aurora.app.workspace import Workspace
from aurora.node.db import Pool
from aurora.node.embed_jobs import EmbedWorker
from tests.node.server import pairing_code, running_node

MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    model = Embedder()
    model.load()
    return model


@pytest.fixture
def node(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AURORA_NODE_EMBED", "0")  # the test embeds on the node itself, when it chooses
    monkeypatch.setenv("AURORA_CREDENTIALS_KEY", "a secret only for this test")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    with running_node(pg_url, tmp_path / "node") as url:
        yield url


def _laptop(tmp_path: Path, name: str, node: str, pg_url: str) -> Workspace:
    ws = Workspace.open(Settings(data_dir=tmp_path, workspace=str(tmp_path / f"{name}.db"), device_name=name))
    sync_service.pair(ws.path, ws.store, node, pairing_code(pg_url, f"laptop-{name}"))
    return ws


def _chunks(ws: Workspace) -> tuple[int, int]:
    ((total, embedded),) = ws.store.query(
        "SELECT count(*), count(*) FILTER (WHERE embedded_model = ?) FROM chunks", (MODEL,)
    )
    return int(total), int(embedded)


def test_a_second_laptop_adopts_the_nodes_vectors(
    node: str, pg_url: str, pool: Pool, tmp_path: Path, real_data: Path, embedder: Embedder
) -> None:
    a = _laptop(tmp_path, "a", node, pg_url)
    b = _laptop(tmp_path, "b", node, pg_url)
    try:
        Importer(a).run([real_data / "email" / "mbox"])
        a.notes.add("The car is due for its service in May; the garage is on Elm Street.")
        assert sync_service.sync_once(a.path, a.store).ok

        async def embed_on_node() -> None:
            worker = EmbedWorker(pool, embedder)
            while await worker.run_once():
                pass

        asyncio.run(embed_on_node())

        report = sync_service.sync_once(b.path, b.store, MODEL)

        assert report.ok and report.applied > 0
        total, embedded = _chunks(b)
        assert total > 0 and embedded == total  # every chunk took the node's vector: nothing left to embed
        chunk_id, text = b.store.query("SELECT id, text FROM chunks WHERE kind = 'note'")[0]
        (blob,) = b.store.query("SELECT vector FROM chunk_vectors WHERE chunk_id = ?", (chunk_id,))[0]
        mine = embedder.encode([str(text)])[0]
        assert float(np.dot(np.frombuffer(blob, dtype="<f4"), mine)) > 0.999
        b.search.enable_vectors()  # semantic search on B, from vectors B never computed
        hits = b.search.query("when is the vehicle maintenance appointment", limit=3)
        assert hits and hits[0].kind == "note"
    finally:
        a.close()
        b.close()


def test_vectors_that_do_not_match_are_left_for_the_local_worker(workspace: Workspace) -> None:
    workspace.notes.add("Dana wants the renewal numbers before Friday.")
    workspace.search.drain_all()
    ((chunk_id, entity_id, text),) = workspace.store.query("SELECT id, entity_id, text FROM chunks")
    unit = np.zeros(384, dtype=np.float32)
    unit[0] = 1.0
    hostile = [
        NodeEntityVectors(
            "note", entity_id, MODEL, (NodeChunk(0, text_hash("other text"), unit),)
        ),  # wrong text
        NodeEntityVectors(
            "note", entity_id, MODEL, (NodeChunk(0, text_hash(str(text)), unit * 7),)
        ),  # not unit
        NodeEntityVectors(
            "note", entity_id, MODEL, (NodeChunk(1, text_hash(str(text)), unit),)
        ),  # wrong place
        NodeEntityVectors("note", entity_id, "another-model", (NodeChunk(0, text_hash(str(text)), unit),)),
    ]
    assert adopt_node_vectors(workspace.store, lambda keys, model: hostile, MODEL, 384) == 0
    assert workspace.store.query("SELECT count(*) FROM chunk_vectors") == [(0,)]
    good = [NodeEntityVectors("note", entity_id, MODEL, (NodeChunk(0, text_hash(str(text)), unit),))]
    assert adopt_node_vectors(workspace.store, lambda keys, model: good, MODEL, 384) == 1
    assert workspace.store.query("SELECT embedded_model FROM chunks WHERE id = ?", (chunk_id,)) == [(MODEL,)]
