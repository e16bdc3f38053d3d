"""Settings: a TOML file, overridden by `AURORA_*` environment variables, overridden by CLI flags.

Every field below is documented in the README's Configuration section (a test checks this).
"""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from aurora.app.errors import ConfigError
from aurora.app.paths import default_config_file, default_data_dir


class Settings(BaseSettings):
    """Aurora's settings. The file is `~/.config/aurora/config.toml` unless `AURORA_CONFIG` names another."""

    model_config = SettingsConfigDict(env_prefix="AURORA_", extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir)
    """Folder that holds workspaces (`workspaces/NAME.db`)."""

    workspace: str = "default"
    """The workspace to open: a name in the data dir, or a path to a `.db` file."""

    theme: Literal["dark", "light"] = "dark"
    """Colour theme of the TUI (`ctrl+t` switches at run time)."""

    show_done: bool = False
    """Show completed tasks on the matrix at start (`.` toggles at run time)."""

    urgent_within_days: float = Field(default=3.0, gt=0, le=365)
    """A task due within this many days counts as urgent."""

    important_tags: list[str] = Field(default_factory=lambda: ["goal", "vip", "health"])
    """Tags that make a task important (besides the `!important` flag)."""

    device_name: str = Field(default_factory=lambda: socket.gethostname()[:64] or "laptop", min_length=1,
                             max_length=64)  # fmt: skip
    """This laptop's name, as other devices will see it once sync exists."""

    busy_timeout_ms: int = Field(default=5000, ge=0, le=600_000)
    """How long a write waits for another process holding the workspace before giving up."""

    embedding_model: str = Field(default="all-MiniLM-L6-v2", min_length=1, max_length=1000)
    """Model for semantic search: all-MiniLM-L6-v2 (shipped, offline) or a path to a sentence-transformers
    model folder. Changing it re-embeds everything in the background."""

    background_embedding: bool = True
    """Let the TUI load the embedding model and embed new text in the background (one CPU thread)."""

    me_emails: list[str] = Field(default_factory=list)
    """Your own e-mail addresses: imported mail from them counts as sent, which engagement scores use."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, default_config_file()))


def load_settings(**overrides: object) -> Settings:
    """Settings from file and environment, with `overrides` (CLI flags) on top; one-line errors."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except UnicodeDecodeError:
        raise ConfigError(
            f"config file {default_config_file()} is not UTF-8 text; fix or remove it"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"config file {default_config_file()} is a folder; point AURORA_CONFIG at a file"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"config file {default_config_file()} is not valid TOML ({exc}); fix or remove it"
        ) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(
            f"setting '{where}' is invalid: {first['msg']} (check {default_config_file()} and AURORA_* "
            "variables)"
        ) from None
