"""Importing the assistant loads no UI and no model: llama.cpp and torch load on a first question only."""

from __future__ import annotations

import subprocess
import sys


def test_the_assistant_imports_headless_and_light() -> None:
    forbidden = ["textual", "aurora.tui", "aurora.node", "llama_cpp", "torch", "sentence_transformers"]
    code = f"import sys, aurora.app.assistant; print(' '.join(m for m in {forbidden!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
