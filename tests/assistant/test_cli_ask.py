"""`aurora ask` through the installed entry point, as a person runs it, with the real local model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aurora.app.assistant import NO_SUPPORT

pytestmark = pytest.mark.slow

AURORA = Path(sys.executable).parent / "aurora"
QUESTION = "When does the shuffle and sort start working in Hadoop?"
SHORT_ROBBIE = """
name = "Robbie"
system_prompt = "You are Robbie, the person's chief of staff. Be brief."
max_tokens = 48
temperature = 0.0
"""


def run(
    *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(AURORA), *args], capture_output=True, text=True, env=env or dict(os.environ), timeout=300
    )
    assert "Traceback" not in result.stderr + result.stdout
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def mail_db(tmp_path: Path, real_data: Path) -> str:
    """A workspace with the recorded mbox imported, and a short-spoken Robbie in the personalities folder
    beside the config file (a user file overriding the built-in)."""
    db = str(tmp_path / "ask.db")
    run("-w", db, "import", str(real_data / "email" / "mbox"))
    folder = tmp_path / "personalities"  # AURORA_CONFIG is tmp_path/config.toml (tests/conftest.py)
    folder.mkdir()
    (folder / "robbie.toml").write_text(SHORT_ROBBIE, encoding="utf-8")
    return db


def test_ask_json_answers_from_the_imported_mail(mail_db: str) -> None:
    out = json.loads(run("-w", mail_db, "ask", "--json", QUESTION).stdout)
    assert {"answer", "sources", "personality", "model", "local"} <= set(out)
    assert out["answer"].strip() and out["personality"] == "Robbie"
    assert out["local"] is True and out["model"] == "smollm2:135m" and out["supported"] is True
    ids = [s["id"] for s in out["sources"]]
    assert ids and ids == [f"S{n}" for n in range(1, len(ids) + 1)]
    first = out["sources"][0]
    assert first["kind"] == "mail" and "shuffle" in first["title"].lower() and first["entity_id"]
    assert all(isinstance(s["cited"], bool) for s in out["sources"])
    assert all(s["status"] == "needs_confirmation" for s in out["suggestions"])


def test_ask_streams_then_lists_the_sources(mail_db: str, tmp_path: Path) -> None:
    (tmp_path / "personalities" / "broken.toml").write_text('name = "Oops\n', encoding="utf-8")
    result = run("-w", mail_db, "ask", QUESTION)
    answer, _, rest = result.stdout.partition("\nSources:\n")
    assert answer.strip() and "[S1] mail 2009-06-01" in rest
    # Who answered, last; the small model samples (the personality's temperature), and now and then it loops
    # and is stopped, which the same line then says too.
    last = result.stdout.rstrip().rsplit("\n", 1)[-1]
    assert last in (
        "(answered by the small local model)",
        "(answered by the small local model; the model began repeating itself and was stopped)",
    ), last
    [warning] = result.stderr.strip().splitlines()
    assert warning.startswith("aurora: personality file") and "broken.toml ignored: not valid TOML" in warning


def test_ask_with_nothing_found_says_so_without_a_model(mail_db: str) -> None:
    result = run("-w", mail_db, "ask", "zebra", "quantum", "xylophone", "--json")
    out = json.loads(result.stdout)
    assert out["answer"] == NO_SUPPORT and out["supported"] is False and out["sources"] == []
    assert out["model"] is None and out["local"] is False


def test_ask_errors_are_one_line(mail_db: str, tmp_path: Path) -> None:
    unknown = run("-w", mail_db, "ask", "-p", "Yoda", QUESTION, check=False)
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1
    assert "no personality called 'Yoda'" in unknown.stderr
    # A machine without llama-cpp-python: a stand-in package that fails to import, as a broken install does.
    fake = tmp_path / "fake" / "llama_cpp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no llama here')\n")
    env = {**os.environ, "PYTHONPATH": str(fake.parent)}
    missing = run("-w", mail_db, "ask", QUESTION, check=False, env=env)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1, missing.stderr
    assert "aurora[local-llm]" in missing.stderr and "pair with a node" in missing.stderr
    assert "waits in conversation" in missing.stderr  # the question is kept, queued for the node
    listed = json.loads(run("-w", mail_db, "chat", "list", "--json").stdout)
    assert [c["waiting"] for c in listed] == [1]


def test_asked_questions_are_conversations_to_read_and_export(mail_db: str, tmp_path: Path) -> None:
    out = json.loads(run("-w", mail_db, "ask", "--json", QUESTION).stdout)
    short = out["conversation_id"][-8:]
    assert short in run("-w", mail_db, "chat", "list").stdout
    shown = run("-w", mail_db, "chat", "show", short).stdout
    assert f"> {QUESTION}" in shown and out["answer"].strip()[:20] in shown and "Sources:" in shown
    target = tmp_path / "chat.md"
    run("-w", mail_db, "chat", "export", short, "--output", str(target))
    assert target.read_text(encoding="utf-8") == shown
    bad = run("-w", mail_db, "chat", "show", "zzzz", check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "aurora chat list" in bad.stderr
