"""Two laptops and a real node, as a person uses them: `aurora pair`, changes on both, `aurora sync`.

The laptops run the installed `aurora` command in subprocesses (their own SQLite workspaces), the node is a
real uvicorn server over PostgreSQL on loopback. With no OS keyring here, the tokens go to the encrypted
file keyed by AURORA_CREDENTIALS_KEY.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aurora.app import sync_service
from aurora.app.config import Settings
from aurora.app.workspace import Workspace
from aurora.sync import HybridClock
from tests.node.pgtest import PgTestServer
from tests.node.server import pairing_code, running_node

AURORA = Path(sys.executable).parent / "aurora"


@pytest.fixture
def node(pg_url: str, tmp_path: Path) -> Iterator[str]:
    with running_node(pg_url, tmp_path / "node") as url:
        yield url


def _run(ws: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        AURORA_CREDENTIALS_KEY="a secret only for this test",
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    result = subprocess.run(
        [str(AURORA), "-w", str(ws), *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert "Traceback" not in result.stdout + result.stderr
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _titles(ws: Path) -> set[str]:
    return {t["title"] for t in json.loads(_run(ws, "task", "list", "--all", "--json").stdout)}


def test_two_laptops_converge_through_the_node(node: str, pg_url: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    _run(a, "task", "add", "Made on A before pairing")
    paired = _run(a, "pair", node, pairing_code(pg_url, "laptop-a")).stdout
    assert "paired with node" in paired
    _run(b, "pair", node, pairing_code(pg_url, "laptop-b"))
    _run(b, "task", "add", "Made on B")
    assert "pushed 1," in _run(a, "sync").stdout
    assert "pulled 1 (1 new)" in _run(b, "sync").stdout
    _run(a, "sync")
    assert _titles(a) == _titles(b) == {"Made on A before pairing", "Made on B"}
    # An edit on one side and a delete on the other of different tasks, then both sync twice.
    [b_task] = [t for t in json.loads(_run(b, "task", "list", "--json").stdout) if t["title"] == "Made on B"]
    _run(a, "task", "done", b_task["id"][-8:])
    _run(b, "note", "add", "A note from B")
    for ws in (a, b, a, b):
        _run(ws, "sync")
    assert json.loads(_run(b, "task", "list", "--all", "--json").stdout)[0]["status"] in {"open", "done"}
    done_on_b = {
        t["title"]: t["status"] for t in json.loads(_run(b, "task", "list", "--all", "--json").stdout)
    }
    assert done_on_b["Made on B"] == "done"
    assert "A note from B" in _run(a, "note", "list").stdout
    status = json.loads(_run(a, "sync", "--status", "--json").stdout)
    assert status["paired"] and status["pending"] == 0 and status["last_error"] is None


def test_a_dead_node_loses_nothing_and_sync_resumes(pg_url: str, tmp_path: Path) -> None:
    a = tmp_path / "a.db"
    with running_node(pg_url, tmp_path / "node") as url:
        _run(a, "pair", url, pairing_code(pg_url, "a"))
        port = url.rsplit(":", 1)[1]
    _run(a, "task", "add", "Written on the plane")
    down = _run(a, "sync", check=False)
    assert down.returncode == 1 and len(down.stderr.strip().splitlines()) == 1
    assert "cannot be reached" in down.stderr and "changes stay on this laptop" in down.stderr
    assert "1 change waiting" in _run(a, "sync", "--status").stdout
    # The node comes back on the same address: the change goes through.
    with running_node(pg_url, tmp_path / "node", port=int(port)) as url:
        assert "pushed 1," in _run(a, "sync").stdout
    assert "0 changes waiting" in _run(a, "sync", "--status").stdout
    assert "Written on the plane" in _titles(a)


def test_pairing_mistakes_are_one_line(node: str, pg_url: str, tmp_path: Path) -> None:
    a = tmp_path / "a.db"
    wrong = _run(a, "pair", node, "ABCDE-FGHJK", check=False)
    assert wrong.returncode == 1 and "pairing" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
    nowhere = _run(a, "pair", "http://127.0.0.1:9", "ABCDE-FGHJK", check=False)
    assert nowhere.returncode == 1 and len(nowhere.stderr.strip().splitlines()) == 1
    unpaired = _run(a, "sync", check=False)
    assert unpaired.returncode == 1 and "aurora pair" in unpaired.stderr


def _laptop(tmp_path: Path, name: str) -> Workspace:
    return Workspace.open(
        Settings(data_dir=tmp_path, workspace=str(tmp_path / f"{name}.db"), device_name=name)
    )


@pytest.fixture
def token_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURORA_CREDENTIALS_KEY", "a secret only for this test")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")


@pytest.mark.usefixtures("token_file")
def test_a_laptop_clock_hours_ahead_is_named_and_nothing_is_lost(
    node: str, pg_url: str, tmp_path: Path
) -> None:
    ws = _laptop(tmp_path, "fast")
    try:
        sync_service.pair(ws.path, ws.store, node, pairing_code(pg_url))
        three_hours = 3 * 3600 * 1000
        ws.store.clock = HybridClock(
            ws.store.device_id, wall=lambda: time.time_ns() // 1_000_000 + three_hours
        )
        ws.tasks.add("Stamped three hours ahead")
        report = sync_service.sync_once(ws.path, ws.store)
        assert not report.ok and "clock" in report.errors[0]
        assert ws.store.pending_ops() == 1  # kept, to be sent once the clocks agree
    finally:
        ws.close()


@pytest.mark.usefixtures("token_file")
def test_a_revoked_device_is_told_to_pair_again_and_keeps_its_changes(
    node: str, pg_url: str, tmp_path: Path
) -> None:
    ws = _laptop(tmp_path, "lost")
    try:
        sync_service.pair(ws.path, ws.store, node, pairing_code(pg_url, "lost"))
        ws.tasks.add("Before the revocation")
        assert sync_service.sync_once(ws.path, ws.store).pushed == 1
        env = {**os.environ, "AURORA_NODE_DATABASE_URL": pg_url}
        revoked = subprocess.run(
            [str(Path(sys.executable).parent / "aurora-node"), "devices", "revoke", "lost"],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert revoked.returncode == 0, revoked.stderr
        ws.tasks.add("After the revocation")
        report = sync_service.sync_once(ws.path, ws.store)
        assert report.needs_pairing and "revoked" in report.errors[0] and "pair" in report.errors[0]
        assert ws.store.pending_ops() == 1
    finally:
        ws.close()


@pytest.mark.usefixtures("token_file")
def test_a_different_node_at_the_same_address_is_refused(pg_server: PgTestServer, tmp_path: Path) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    def fresh_db() -> str:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, pg_server.create_database()).result()

    first, second = fresh_db(), fresh_db()
    ws = _laptop(tmp_path, "wary")
    try:
        with running_node(first, tmp_path / "n1") as url:
            sync_service.pair(ws.path, ws.store, url, pairing_code(first))
            port = int(url.rsplit(":", 1)[1])
        ws.tasks.add("Meant for my own node")
        with running_node(second, tmp_path / "n2", port=port):
            report = sync_service.sync_once(ws.path, ws.store)
        assert report.needs_pairing and "different node" in report.errors[0]
        assert ws.store.pending_ops() == 1
    finally:
        ws.close()


def test_a_conversation_and_its_waiting_question_reach_the_other_laptop(
    node: str, pg_url: str, tmp_path: Path
) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    _run(a, "pair", node, pairing_code(pg_url, "laptop-a"))
    _run(b, "pair", node, pairing_code(pg_url, "laptop-b"))
    _run(a, "task", "add", "Send Dana the renewal numbers")
    # No model on laptop A (a stand-in llama_cpp that fails to import, as a broken install does).
    fake = tmp_path / "fake" / "llama_cpp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no llama here')\n")
    env = dict(os.environ, PYTHONPATH=str(fake.parent), AURORA_CREDENTIALS_KEY="a secret only for this test",
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")  # fmt: skip
    asked = subprocess.run(
        [str(AURORA), "-w", str(a), "ask", "What did I promise Dana?"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert asked.returncode == 1 and "waits in conversation" in asked.stderr, asked.stderr
    _run(a, "sync")
    _run(b, "sync")
    [conversation] = json.loads(_run(b, "chat", "list", "--json").stdout)
    assert conversation["title"] == "What did I promise Dana?" and conversation["waiting"] == 1
    shown = json.loads(_run(b, "chat", "show", conversation["id"][-8:], "--json").stdout)
    assert [(m["role"], m["status"]) for m in shown] == [("user", "done"), ("assistant", "waiting")]
