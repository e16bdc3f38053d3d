"""Personalities: who the assistant is (Robbie, the mentors, a person's own), each a small TOML file.

`load_personalities(user_dir)` returns the built-ins (`builtin.py`) overridden and extended by every
`*.toml` in `user_dir` (the app passes `<config dir>/personalities/`). A file that is not UTF-8, not TOML,
or whose fields are invalid is returned in the second list with a one-line reason, and every other file
still loads: one typo never takes the assistant away. A user file whose `name` matches a built-in's
(case-insensitively) replaces it; two user files with the same name: the first, in file-name order, wins
and the second is listed as broken.

`export_builtin(dir)` writes the built-ins out, commented, for a person to copy and edit; it never
overwrites a file that is already there unless asked.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aurora.app.assistant.builtin import BUILTIN, DEFAULT_PERSONALITY
from aurora.app.errors import InvalidInputError

MemoryKind = Literal["tasks", "notes", "mail", "events", "messages", "transcripts", "people"]
MEMORY_KINDS: tuple[MemoryKind, ...] = (
    "tasks",
    "notes",
    "mail",
    "events",
    "messages",
    "transcripts",
    "people",
)

MAX_PROMPT_BYTES = 8 * 1024
MAX_FILE_BYTES = 64 * 1024
"""A personality file larger than this is refused unread: it cannot be a valid one."""


class Personality(BaseModel):
    """One personality, as validated from its TOML file."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=40, pattern=r"^[^\W_][\w .'\-]*$")
    """Letters, digits, spaces, and . ' - _ (it is typed after `--personality`)."""
    description: str = Field(default="", max_length=200)
    system_prompt: str = Field(min_length=1)
    """Who the assistant is; at most 8 kB in UTF-8. Aurora's own rules are added after it."""
    style: str = Field(default="", max_length=500)
    model: str | None = Field(default=None, min_length=1, max_length=200)
    """The model to ask for (an Ollama tag, or "smollm2:135m"); None: whatever the router serves."""
    temperature: float = Field(default=0.4, ge=0.0, le=2.0)
    max_tokens: int = Field(default=320, ge=16, le=4096)
    memory_scope: tuple[MemoryKind, ...] = Field(default=MEMORY_KINDS, min_length=1)
    """What retrieval may search for this personality."""

    @field_validator("system_prompt")
    @classmethod
    def _prompt_size(cls, value: str) -> str:
        size = len(value.encode("utf-8"))
        if size > MAX_PROMPT_BYTES:
            raise ValueError(f"is {size:,} bytes; at most {MAX_PROMPT_BYTES:,}")
        return value

    @field_validator("memory_scope")
    @classmethod
    def _unique_scope(cls, value: tuple[MemoryKind, ...]) -> tuple[MemoryKind, ...]:
        return tuple(dict.fromkeys(value))


@dataclass(frozen=True)
class Broken:
    """A personality file that did not load, and why (one line)."""

    path: Path
    error: str


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "file"
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {message}{more}"


def parse_personality(text: str) -> Personality:
    """A personality from TOML text; `InvalidInputError` (one line) when it is not one."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidInputError(f"not valid TOML: {' '.join(str(error).split())}") from None
    try:
        return Personality.model_validate(data)
    except ValidationError as error:
        raise InvalidInputError(_first_error(error)) from None


def builtin_personalities() -> dict[str, Personality]:
    return {p.name: p for p in (parse_personality(text) for text in BUILTIN.values())}


def _read(path: Path) -> Personality:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InvalidInputError(f"is {size:,} bytes; a personality file is at most {MAX_FILE_BYTES:,}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError("is not UTF-8 text") from None
    return parse_personality(text)


def load_personalities(user_dir: Path | None) -> tuple[dict[str, Personality], list[Broken]]:
    """The built-ins, then each `*.toml` of `user_dir` (sorted by file name) over them."""
    found = builtin_personalities()
    broken: list[Broken] = []
    if user_dir is None or not user_dir.is_dir():
        return found, broken
    from_user: dict[str, Path] = {}
    for path in sorted(user_dir.glob("*.toml")):
        try:
            personality = _read(path)
        except InvalidInputError as error:
            broken.append(Broken(path, str(error)))
            continue
        except OSError as error:
            broken.append(Broken(path, f"cannot be read ({error.strerror or error})"))
            continue
        key = personality.name.casefold()
        if key in from_user:
            broken.append(Broken(path, f"{from_user[key].name} already defines '{personality.name}'"))
            continue
        from_user[key] = path
        for name in [n for n in found if n.casefold() == key]:
            del found[name]  # a user file replaces the built-in of that name, whatever its case
        found[personality.name] = personality
    return found, broken


def find_personality(personalities: Mapping[str, Personality], name: str | None) -> Personality:
    """The personality called `name` (any case; None: Robbie, else the first); one line when unknown."""
    wanted = (name or DEFAULT_PERSONALITY).strip().casefold()
    for key, personality in personalities.items():
        if key.casefold() == wanted:
            return personality
    if name is None and personalities:
        return next(iter(personalities.values()))
    known = ", ".join(personalities) or "none"
    raise InvalidInputError(f"no personality called '{name}'; choose one of: {known}")


def export_builtin(directory: Path, *, overwrite: bool = False) -> list[Path]:
    """Write the built-in personalities into `directory` (made if missing); returns the files written.
    A file already there is left alone (it may hold the person's edits) unless `overwrite`."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for file_name, text in BUILTIN.items():
        path = directory / file_name
        if path.exists() and not overwrite:
            continue
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def user_personalities_dir(config_file: Path) -> Path:
    """Where a person's own personalities live: `personalities/` beside the config file."""
    return config_file.parent / "personalities"
