"""The node's settings: `AURORA_NODE_*` environment variables over the defaults below.

Settings are built once in the entry point (`aurora-node` or a test) and passed down; nothing reads the
environment at import time.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_node_data_dir() -> Path:
    """The platform's user data folder for the node (`~/.local/share/aurora-node` on Linux)."""
    return Path(platformdirs.user_data_dir("aurora-node", appauthor=False))


class NodeSettings(BaseSettings):
    """Settings of `aurora-node`. Each field can be set as `AURORA_NODE_<FIELD>` (for example
    `AURORA_NODE_DATABASE_URL`)."""

    model_config = SettingsConfigDict(env_prefix="AURORA_NODE_", extra="forbid")

    data_dir: Path = Field(default_factory=default_node_data_dir)
    """Folder for the node's own files: the embedded PostgreSQL lives in `pg/` under it when no
    `database_url` is set."""

    database_url: str | None = Field(default=None, min_length=1, max_length=4000)
    """A PostgreSQL connection URL (`postgresql://user:pass@host:5432/aurora`) for a server you run
    yourself; unset, the node starts an embedded PostgreSQL in `data_dir/pg`. Several node processes may
    share one database."""

    host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    """Address the HTTP API binds to; in production, the node's WireGuard address."""

    port: int = Field(default=8470, ge=1, le=65535)
    """TCP port of the HTTP API."""

    pool_min: int = Field(default=1, ge=0, le=1000)
    """Database connections the pool keeps open even when idle."""

    pool_max: int = Field(default=10, ge=1, le=1000)
    """Most database connections this process opens at once; requests beyond it wait for a free one."""

    embed: bool = True
    """Whether `aurora-node serve` runs an embedding worker (`aurora.node.embed_jobs`: on the GPU when
    there is one). Off (`AURORA_NODE_EMBED=0`), changes are still queued, for another node process or a
    later start to embed."""

    ollama_hosts: str = Field(default="", max_length=4000)
    """Ollama servers the node asks, comma-separated (`http://10.0.0.2:11434,http://10.0.0.3:11434`), in
    order of preference: the GPU pool that answers questions laptops queued (`aurora.node.answers`)."""

    local_llm: bool = True
    """Whether the node may answer with the small in-process model (the `local-llm` extra) when no Ollama
    host can; such answers are marked as the small model's."""

    actions_every_s: float = Field(default=60.0, ge=1.0, le=86_400.0)
    """How often `aurora-node serve` looks for queued actions (questions asked with no model) to carry
    out."""

    @property
    def ollama_host_list(self) -> list[str]:
        return [h.strip() for h in self.ollama_hosts.split(",") if h.strip()]

    @model_validator(mode="after")
    def _pool_bounds(self) -> NodeSettings:
        if self.pool_max < self.pool_min:
            raise ValueError(f"pool_max ({self.pool_max}) is below pool_min ({self.pool_min})")
        return self
