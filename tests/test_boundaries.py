"""The import arrows of DESIGN.md section 1, checked two ways: import-linter's contracts, and a fresh
interpreter that imports each headless module and must not pull in Textual."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("aurora.schema", ["textual", "apsw", "aurora.app", "aurora.sync"]),
        ("aurora.sync", ["textual", "apsw", "httpx", "aurora.app"]),
        ("aurora.app.workspace", ["textual", "aurora.tui"]),
        ("aurora.app.transfer", ["textual"]),
    ],
)
def test_headless_modules_do_not_load_the_ui(module: str, forbidden: list[str]) -> None:
    code = f"import sys, {module}; print(' '.join(m for m in {forbidden!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
