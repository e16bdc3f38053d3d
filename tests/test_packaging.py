"""The wheel holds every subpackage and data file under `aurora.`, and nothing generic at the top."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _clean_copy(dest: Path) -> Path:
    """The files git would ship (tracked, or untracked and not ignored): no stale build/ folder."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for rel in listed:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


@pytest.mark.slow
def test_wheel_contents(tmp_path: Path) -> None:
    src = _clean_copy(tmp_path / "src")
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(src)],
        check=True, capture_output=True,
    )  # fmt: skip
    [wheel] = out.glob("aurora-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert all(t == "aurora" or t.endswith(".dist-info") for t in tops), tops
    for package in [
        "app",
        "app/assistant",
        "app/embed",
        "app/inference",
        "app/ingest",
        "app/search",
        "app/store",
        "node",
        "schema",
        "schema/postgres",
        "schema/sqlite",
        "sync",
        "tui",
        "tui/screens",
        "tui/widgets",
    ]:
        assert f"aurora/{package}/__init__.py" in names, package
    shipped_sql = sorted(p.name for p in (ROOT / "schema" / "sqlite").glob("*.sql"))
    assert shipped_sql and all(f"aurora/schema/sqlite/{n}" in names for n in shipped_sql)
    assert "aurora/tui/app.tcss" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    points = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "aurora = aurora.tui.cli:main" in points and "aurora-node = aurora.node.cli:main" in points
    shipped_pg = sorted(p.name for p in (ROOT / "schema" / "postgres").glob("*.sql"))
    assert shipped_pg and all(f"aurora/schema/postgres/{n}" in names for n in shipped_pg)
    source_modules = {p.relative_to(ROOT).as_posix() for d in ["app", "schema", "sync", "tui"]
                      for p in (ROOT / d).rglob("*.py")}  # fmt: skip
    assert {f"aurora/{m}" for m in source_modules} <= set(names)
