"""Where Aurora keeps things: the platform's data and config folders, and workspace files in them."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_config_path, user_data_path

APP_NAME = "aurora"
DB_SUFFIX = ".db"
DEMO_WORKSPACE = "demo"


def default_data_dir() -> Path:
    """`~/.local/share/aurora` on Linux, `~/Library/Application Support/aurora` on macOS."""
    return user_data_path(APP_NAME, appauthor=False)


def default_config_file() -> Path:
    """`$AURORA_CONFIG`, else `~/.config/aurora/config.toml` (or the platform's equivalent)."""
    override = os.environ.get("AURORA_CONFIG")
    if override:
        return Path(override).expanduser()
    return user_config_path(APP_NAME, appauthor=False) / "config.toml"


def workspace_path(workspace: str, data_dir: Path) -> Path:
    """A workspace is a name (a file `NAME.db` in the data dir) or a path to a database file."""
    looks_like_path = os.sep in workspace or "/" in workspace or workspace.endswith(DB_SUFFIX)
    if looks_like_path:
        return Path(workspace).expanduser().resolve()
    return data_dir / "workspaces" / f"{workspace}{DB_SUFFIX}"
