"""The CLI through the installed `aurora` entry point, as a person runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

AURORA = Path(sys.executable).parent / "aurora"


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(AURORA), *args], capture_output=True, text=True, env=dict(os.environ))
    assert "Traceback" not in result.stderr + result.stdout
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_task_lifecycle_with_json(tmp_path: Path) -> None:
    ws = str(tmp_path / "cli.db")
    added = json.loads(
        run("-w", ws, "task", "add", "Call", "Dana", "tomorrow", "!urgent", "#sales", "--json").stdout
    )
    assert added["title"] == "Call Dana" and added["tags"] == ["sales"] and added["quadrant"] == 3
    short = added["id"][-8:]
    assert short in run("-w", ws, "task", "list").stdout
    run("-w", ws, "task", "move", short, "schedule")
    [listed] = json.loads(run("-w", ws, "task", "list", "--json").stdout)
    assert listed["quadrant"] == 2 and listed["manual"] is True
    run("-w", ws, "task", "done", short)
    assert json.loads(run("-w", ws, "task", "list", "--json").stdout) == []
    assert json.loads(run("-w", ws, "task", "list", "--all", "--json").stdout)[0]["status"] == "done"
    run("-w", ws, "task", "delete", short)
    assert json.loads(run("-w", ws, "task", "list", "--all", "--json").stdout) == []


def test_notes(tmp_path: Path) -> None:
    ws = str(tmp_path / "n.db")
    run("-w", ws, "note", "add", "Gate code 4411", "--tag", "home", "--colour", "blue", "--pin")
    run("-w", ws, "note", "add", "Second note")
    notes = json.loads(run("-w", ws, "note", "list", "--json").stdout)
    assert [n["body"] for n in notes] == ["Gate code 4411", "Second note"]
    assert notes[0]["pinned"] and notes[0]["colour"] == "blue" and notes[0]["tags"] == ["home"]


def test_export_then_import_reproduces_the_workspace(tmp_path: Path) -> None:
    source, target, dump = str(tmp_path / "a.db"), str(tmp_path / "b.db"), tmp_path / "out.json"
    run("-w", source, "task", "add", "Write report #work")
    run("-w", source, "note", "add", "Remember the milk")
    run("-w", source, "export", "-o", str(dump))
    doc = json.loads(dump.read_text())
    assert doc["format"] == "aurora-export" and len(doc["ops"]) == 2
    first = run("-w", target, "import", str(dump), "--json")
    assert json.loads(first.stdout)[0]["new"] == 2
    again = json.loads(run("-w", target, "import", str(dump), "--json").stdout)
    assert again[0] == {
        "path": str(dump),
        "format": "aurora-export",
        "new": 0,
        "updated": 0,
        "unchanged": 2,
        "skipped": [],
    }
    tasks = [t["title"] for t in json.loads(run("-w", target, "task", "list", "--json").stdout)]
    assert tasks == ["Write report"]


def test_default_workspace_lives_in_the_data_dir(isolated_env: Path) -> None:
    run("task", "add", "Somewhere")
    assert (isolated_env / "workspaces" / "default.db").exists()
    run("-w", "work", "task", "add", "Elsewhere")
    assert (isolated_env / "workspaces" / "work.db").exists()


def test_demo_never_touches_the_own_workspace(isolated_env: Path) -> None:
    run("task", "add", "Mine")
    own = isolated_env / "workspaces" / "default.db"
    before = own.read_bytes()
    path = Path(run("demo", "--no-tui").stdout.strip())
    assert path == isolated_env / "workspaces" / "demo.db"
    demo_tasks = json.loads(run("-w", "demo", "task", "list", "--json").stdout)
    assert len(demo_tasks) >= 15 and {t["quadrant"] for t in demo_tasks} == {1, 2, 3, 4}
    assert own.read_bytes() == before


def test_version_doctor_and_completion() -> None:
    assert run("--version").stdout.startswith("aurora, version ")
    checks = {c["name"]: c for c in json.loads(run("doctor", "--json").stdout)}
    assert checks["sqlite-vec"]["ok"] and checks["fts5"]["ok"]
    assert "_AURORA_COMPLETE" in run("completion", "bash").stdout


def test_import_then_search_and_index_status(tmp_path: Path, real_data: Path) -> None:
    ws = str(tmp_path / "s.db")
    summary = json.loads(run("-w", ws, "import", "--json", str(real_data / "email" / "mbox")).stdout)
    assert sum(r["new"] for r in summary) >= 4
    hits = json.loads(run("-w", ws, "search", "hadoop", "shuffle", "--json").stdout)
    assert hits and all(h["kind"] == "item" for h in hits)
    assert "«" in hits[0]["snippet"]  # the match is marked
    status = json.loads(run("-w", ws, "index", "status", "--json").stdout)
    assert status["queued"] == 0 and status["chunks"] >= len(hits)
    assert "re-indexed" in run("-w", ws, "index", "rebuild").stdout
    hostile = run("-w", ws, "search", '"(((', "NEAR(", "--json")
    assert json.loads(hostile.stdout) == []
    bad = run("-w", ws, "search", "x", "--since", "the day after never", check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "--since" in bad.stderr
