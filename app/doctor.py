"""`aurora doctor`: what this installation can do and what is missing, in plain lines."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from aurora.app.config import Settings
from aurora.app.errors import AuroraError
from aurora.app.paths import default_config_file, workspace_path
from aurora.app.store import Store, probe_extensions
from aurora.app.store.database import file_is_writable


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _pkg(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def run_checks(settings: Settings) -> list[Check]:
    probe = probe_extensions()
    path = workspace_path(settings.workspace, settings.data_dir)
    checks = [
        Check("aurora", True, _pkg("aurora")),
        Check("python", True, f"{platform.python_implementation()} {sys.version.split()[0]}"),
        Check("sqlite", True, f"{probe.sqlite_version} (apsw {probe.apsw_version})"),
        Check(
            "sqlite-vec",
            probe.vec_version is not None,
            probe.vec_version or "cannot load: reinstall with `pip install --force-reinstall sqlite-vec`",
        ),
        Check("fts5", probe.fts5, "available" if probe.fts5 else "missing: this SQLite build lacks FTS5"),
        Check("textual", True, _pkg("textual")),
        Check("config file", True, f"{default_config_file()}" + ("" if default_config_file().exists()
                                                                     else " (absent: defaults in use)")),
        Check("data dir", file_is_writable(settings.data_dir), str(settings.data_dir)),
    ]  # fmt: skip
    if path.exists():
        try:
            store = Store.open(path, busy_timeout_ms=settings.busy_timeout_ms)
        except AuroraError as exc:
            checks.append(Check("workspace", False, str(exc)))
        else:
            try:
                store.integrity_check()
            except AuroraError as exc:
                checks.append(Check("integrity", False, str(exc)))
            else:
                checks.append(Check("integrity", True, "every page of the workspace reads back intact"))
            info = store.info()
            checks.append(
                Check(
                    "workspace",
                    True,
                    f"{path} (schema {info.schema_version}/{info.supported_schema_version}, "
                    f"{store.pending_ops()} operations pending)",
                )
            )
            store.close()
    else:
        checks.append(Check("workspace", True, f"{path} (not created yet: it is made on first use)"))
    return checks
