"""Fixtures of the assistant's tests: workspaces holding real imported items (the team's recorded mail, and
hostile mail written from OWASP's LLM01 examples), and the real SmolLM2 model in process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from aurora.app.assistant import Personality, load_personalities
from aurora.app.inference import LocalLlamaBackend
from aurora.app.ingest.pipeline import Importer
from aurora.app.workspace import Workspace
from tests.assistant.hostile import HOSTILE, hostile_mail
from tests.local_model import warmed

THREADS = 2


@pytest.fixture
def hostile_workspace(workspace: Workspace, tmp_path: Path) -> Workspace:
    """The workspace with one imported mail per hostile input, plus a private note and task that no
    question about the mails should ever bring into a prompt."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    for n, (name, body) in enumerate(HOSTILE):
        (folder / f"{n:02d}-{name}.eml").write_bytes(hostile_mail(n, name, body))
    reports = Importer(workspace).run([folder])
    assert sum(r.new for r in reports) == len(HOSTILE), [r.skipped for r in reports]
    workspace.notes.add("Vault combination 31-08-77, kept private (bluebottle)")
    workspace.tasks.add("Renew passport before the Lisbon trip (bluebottle)")
    workspace.search.drain_all()
    return workspace


@pytest.fixture
def mail_workspace(workspace: Workspace, real_data: Path) -> Workspace:
    """The workspace with the team's recorded mbox mail imported (a Hadoop mailing-list thread)."""
    Importer(workspace).run([real_data / "email" / "mbox"])
    workspace.search.drain_all()
    return workspace


@pytest.fixture(scope="session")
def local_backend() -> Iterator[LocalLlamaBackend]:
    """One in-process SmolLM2 for the session, loaded and warmed by one token."""
    backend = warmed(LocalLlamaBackend(n_threads=THREADS))
    yield backend
    asyncio.run(backend.aclose())


@pytest.fixture
def personalities() -> dict[str, Personality]:
    """The built-ins, with short answers (the model's quality is not under test; the plumbing is)."""
    found, broken = load_personalities(None)
    assert not broken
    return {name: p.model_copy(update={"max_tokens": 40, "temperature": 0.0}) for name, p in found.items()}
