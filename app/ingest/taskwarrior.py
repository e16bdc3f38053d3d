"""Taskwarrior 2.x: the data folder (~/.task) or one of its files, and `task export` JSON.

- pending.data / completed.data: one task per line in Taskwarrior's FF4 format,
  `[description:"Call Dana" entry:"1566669533" status:"pending" tags:"work,call" uuid:"..."]`, with JSON-style
  escapes (\\" \\/ \\n \\uXXXX) and the entities &open; &close; (and &dquot; from older versions).
- backlog.data: the sync journal, one JSON task per line, each change appended; a uuid's last line wins.
- `task export`: a JSON array, or one JSON object per line (older versions, with trailing commas).

A folder reads pending.data and completed.data (backlog.data only where they are missing). undo.data is the
undo log, not a task list, and is refused with that reason.

One `Record` per task (kind "task", external id the task's uuid). Deleted tasks are imported too, with
`extra["status"] == "deleted"`, so the pipeline decides what to do with them; a line that is not a task is
skipped with its line number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aurora.app.ingest.records import Parsed, ParseError, Record, Skipped, location

_FF4_FIELD = re.compile(r'([A-Za-z_][\w.\-]*):"((?:[^"\\]|\\.)*)"')
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATE_FIELDS = ("entry", "modified", "end", "due", "wait", "scheduled", "until", "start")
STATUSES = frozenset({"pending", "completed", "deleted", "waiting", "recurring"})


@dataclass(frozen=True)
class _Task:
    where: str
    order: int
    fields: dict[str, Any]


def parse_taskwarrior(path: Path) -> Parsed:
    """One `Record` per task in a Taskwarrior data folder or file; `Skipped` for lines that are not tasks."""
    if path.is_dir():
        files = [path / name for name in ("pending.data", "completed.data") if (path / name).is_file()]
        if not files and (path / "backlog.data").is_file():
            files = [path / "backlog.data"]
        if not files:
            raise ParseError(
                f"{path}: not a Taskwarrior data folder (no pending.data, completed.data or backlog.data)"
            )
    else:
        files = [path]
    tasks: dict[str, _Task] = {}
    order = 0
    for file in files:
        try:
            items = _read_file(file)
        except ParseError as exc:
            if not path.is_dir():
                raise
            yield Skipped(
                location(file), str(exc).removeprefix(f"{file}: ")
            )  # the folder's other file goes on
            continue
        for item in items:
            if isinstance(item, Skipped):
                yield item
                continue
            where, fields = item
            uuid = fields["uuid"]
            order += 1
            earlier = tasks.get(uuid)
            if earlier is None:
                tasks[uuid] = _Task(where, order, fields)
            elif _modified(fields) >= _modified(earlier.fields):
                # The same task twice (backlog.data keeps every change): the later change wins, in the first
                # place the task appeared.
                tasks[uuid] = _Task(where, earlier.order, fields)
    for task in sorted(tasks.values(), key=lambda t: t.order):
        yield _record(task)


def _modified(fields: dict[str, Any]) -> datetime:
    return _time(fields.get("modified")) or _time(fields.get("entry")) or datetime.min.replace(tzinfo=UTC)


def _read_file(path: Path) -> list[tuple[str, dict[str, Any]] | Skipped]:
    if path.name == "undo.data":
        raise ParseError(
            f"{path}: undo.data is Taskwarrior's undo log, not a task list; import pending.data and "
            "completed.data (or the whole data folder)"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParseError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if b"\x00" in data[:8192]:
        raise ParseError(f"{path}: binary data, not a Taskwarrior file")
    text = data.decode("utf-8-sig", errors="replace").replace("\r\n", "\n")
    stripped = text.strip()
    if not stripped:
        return []  # an empty pending.data is a real state: no tasks
    out: list[tuple[str, dict[str, Any]] | Skipped] = []
    first_line = stripped.split("\n", 1)[0].strip()
    if first_line == "[" or first_line.startswith(("[{", "[ {")):
        # `task export`: one JSON array.
        try:
            array = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ParseError(
                f"{path}: looks like a `task export` JSON array but is not valid JSON "
                f"({exc.msg} at line {exc.lineno}, column {exc.colno}); was it cut short?"
            ) from exc
        if not isinstance(array, list):
            raise ParseError(f"{path}: not a list of tasks")
        for index, entry in enumerate(array, 1):
            where = location(path, f"task {index}")
            out.append(
                _checked(where, entry) if isinstance(entry, dict) else Skipped(where, "not a task object")
            )
        return out
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or _UUID.match(line):  # blank, or backlog.data's sync key
            continue
        where = location(path, f"line {number}")
        if line.startswith("{"):
            try:
                entry = json.loads(line.rstrip(","))
            except json.JSONDecodeError as exc:
                out.append(Skipped(where, f"line {number} is not valid JSON ({exc.msg}): task left out"))
                continue
            out.append(
                _checked(where, entry) if isinstance(entry, dict) else Skipped(where, "not a task object")
            )
        elif line.startswith("[") and line.endswith("]"):
            fields = _ff4(line)
            if fields is None:
                out.append(
                    Skipped(where, f'line {number} is not a Taskwarrior task line ([name:"value" ...])')
                )
            else:
                out.append(_checked(where, fields))
        else:
            shown = line if len(line) <= 40 else line[:39] + "…"
            out.append(Skipped(where, f"line {number} is not a Taskwarrior task ({shown!r})"))
    return out


def _ff4(line: str) -> dict[str, Any] | None:
    """The fields of one FF4 line, or None when it is not one."""
    inner = line[1:-1].strip()
    fields: dict[str, Any] = {}
    position = 0
    for match in _FF4_FIELD.finditer(inner):
        if inner[position : match.start()].strip():
            return None  # text between fields: not FF4
        fields[match.group(1)] = _ff4_value(match.group(2))
        position = match.end()
    if inner[position:].strip():
        return None
    return fields


def _ff4_value(raw: str) -> str:
    try:
        value = json.loads(f'"{raw}"')
    except json.JSONDecodeError:
        value = raw.replace('\\"', '"').replace("\\/", "/").replace("\\n", "\n").replace("\\\\", "\\")
    assert isinstance(value, str)
    return value.replace("&open;", "[").replace("&close;", "]").replace("&dquot;", '"')


def _checked(where: str, fields: dict[str, Any]) -> tuple[str, dict[str, Any]] | Skipped:
    uuid = fields.get("uuid")
    if not isinstance(uuid, str) or not uuid.strip():
        return Skipped(where, "a task without a uuid: left out")
    fields["uuid"] = uuid.strip().lower()
    return where, fields


def _time(value: Any) -> datetime | None:
    """Taskwarrior times: epoch seconds in FF4 ("1566669533"), ISO basic in JSON ("20190824T175853Z")."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(int(value))
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        if re.fullmatch(r"\d{8}T\d{6}Z", text):
            return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(value: Any) -> str | None:
    moment = _time(value)
    return moment.isoformat() if moment else None


def _tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(t) for t in value if str(t).strip()]
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    return []


def _annotations(fields: dict[str, Any]) -> list[tuple[datetime | None, str]]:
    notes: list[tuple[datetime | None, str]] = []
    listed = fields.get("annotations")
    if isinstance(listed, list):  # JSON
        for note in listed:
            if isinstance(note, dict) and isinstance(note.get("description"), str):
                notes.append((_time(note.get("entry")), note["description"]))
    for key, value in fields.items():  # FF4: annotation_<epoch>:"text"
        if key.startswith("annotation_") and isinstance(value, str):
            notes.append((_time(key.removeprefix("annotation_")), value))
    return sorted(notes, key=lambda n: n[0] or datetime.min.replace(tzinfo=UTC))


def _record(task: _Task) -> Record:
    fields = task.fields
    description = fields.get("description")
    title = (
        description.strip() if isinstance(description, str) and description.strip() else "(no description)"
    )
    status = fields.get("status") if isinstance(fields.get("status"), str) else "pending"
    notes = _annotations(fields)
    body = "\n".join(f"{when:%Y-%m-%d}: {text}" if when else text for when, text in notes)
    depends = fields.get("depends")
    return Record(
        source="taskwarrior",
        external_id=fields["uuid"],
        kind="task",
        title=title,
        body=body,
        occurred_at=_time(fields.get("entry")),
        extra={
            "status": status,
            "due": _iso(fields.get("due")),
            "tags": _tags(fields.get("tags")),
            "project": fields.get("project") or None,
            "priority": fields.get("priority") or None,
            "end": _iso(fields.get("end")),
            "modified": _iso(fields.get("modified")),
            "wait": _iso(fields.get("wait")),
            "scheduled": _iso(fields.get("scheduled")),
            "recur": fields.get("recur") or None,
            "depends": _tags(depends),
        },
    )
