"""Slack workspace exports: the folder (or its .zip) that Slack's "Export data" gives a workspace admin.

Layout: `users.json` (people, with profile names and e-mails), `channels.json` (public channels; also
`groups.json`, `mpims.json` and `dms.json` in exports that include private conversations), and one folder per
conversation holding one `YYYY-MM-DD.json` file per day, each a JSON array of messages. The folder is the
channel's name for channels, groups and mpims, and the conversation id for DMs.

One `Record` per message. Bot messages and system notices (joins, topic changes, integrations added) are
imported too, flagged `extra["bot"]` / `extra["system"]`, so the UI can hide them without losing them.
Edit and delete events (`message_changed`, `message_deleted`), which some exports carry beside the final
messages, are skipped with that reason.
"""

from __future__ import annotations

import html
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from aurora.app.ingest.records import Parsed, ParseError, Participant, Record, Skipped, location

SYSTEM_SUBTYPES = frozenset(
    {
        "channel_join",
        "channel_leave",
        "channel_topic",
        "channel_purpose",
        "channel_name",
        "channel_archive",
        "channel_unarchive",
        "channel_convert_to_private",
        "channel_convert_to_public",
        "group_join",
        "group_leave",
        "group_topic",
        "group_purpose",
        "group_name",
        "group_archive",
        "group_unarchive",
        "bot_add",
        "bot_remove",
        "bot_enable",
        "bot_disable",
        "pinned_item",
        "unpinned_item",
        "reminder_add",
        "reminder_delete",
        "sh_room_created",
        "huddle_thread",
        "tombstone",
        "joiner_notification",
        "slackbot_response",
    }
)
"""Subtypes that are notices about the conversation rather than something a person said."""

EVENT_SUBTYPES = frozenset({"message_changed", "message_deleted", "message_replied"})
"""Change events, not messages: an export that has them also has the messages they changed."""

_DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.json$")
_ANGLE = re.compile(r"<([^<>]*)>")
_TITLE_MAX = 100


@dataclass(frozen=True)
class _User:
    id: str
    handle: str
    """What Slack shows in a mention: the display name, else the real name, else the username."""
    full_name: str
    """The person's name for the participant: real name first (what other sources call them)."""
    email: str
    is_bot: bool


@dataclass(frozen=True)
class _Channel:
    id: str
    name: str
    folder: str


class _Tree:
    """The export's files, from a folder or a zip, by POSIX path relative to the export's root."""

    def __init__(self, names: list[str], read: Callable[[str], bytes], root: str) -> None:
        self._read = read
        self._root = root
        prefix = f"{root}/" if root else ""
        self.files = {n[len(prefix) :]: n for n in names if n.startswith(prefix) and not n.endswith("/")}

    def has(self, rel: str) -> bool:
        return rel in self.files

    def read(self, rel: str) -> bytes:
        return self._read(self.files[rel])

    def day_files(self, folder: str) -> list[str]:
        prefix = f"{folder}/"
        return sorted(
            rel
            for rel in self.files
            if rel.startswith(prefix)
            and "/" not in rel[len(prefix) :]
            and _DAY_FILE.match(rel[len(prefix) :])
        )

    def folders(self) -> list[str]:
        return sorted({rel.split("/", 1)[0] for rel in self.files if "/" in rel})


_LISTINGS = ("channels.json", "users.json")


def _root_of(names: list[str]) -> str:
    """The folder holding users.json/channels.json: '' when at the top, or one folder down (zips and
    unpacked zips often wrap the export in a folder). Deeper exports are not looked for."""
    markers = [PurePosixPath(n) for n in names if PurePosixPath(n).name in _LISTINGS]
    for depth in (1, 2):
        found = sorted(m.parent.as_posix() for m in markers if len(m.parts) == depth)
        if found:
            return "" if found[0] == "." else found[0]
    return ""


def _folder_names(path: Path) -> list[str]:
    """The files an export folder can hold: its listings and its conversation folders' day files (two levels
    under the export's root, which is the folder itself or one folder down), never a deep walk."""
    root = path
    if not any((path / name).is_file() for name in _LISTINGS):
        inner = sorted(d for d in path.iterdir() if d.is_dir() and any((d / n).is_file() for n in _LISTINGS))
        root = inner[0] if inner else path
    names: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.is_file():
            names.append(entry.relative_to(path).as_posix())
        elif entry.is_dir():
            names.extend(f.relative_to(path).as_posix() for f in sorted(entry.glob("*.json")) if f.is_file())
    return names


def parse_slack_export(path: Path) -> Parsed:
    """Yield one `Record` per message of a Slack export folder or .zip, `Skipped` for what cannot be read."""
    if path.is_dir():
        try:
            names = _folder_names(path)
        except OSError as exc:
            raise ParseError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
        tree = _Tree(names, lambda rel: (path / rel).read_bytes(), _root_of(names))
        yield from _parse_tree(path, tree)
        return
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError as exc:
        raise ParseError(f"{path}: no such file or folder") from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise ParseError(f"{path}: not a Slack export (neither a folder nor a readable .zip: {exc})") from exc
    with archive:
        names = archive.namelist()
        tree = _Tree(names, archive.read, _root_of(names))
        yield from _parse_tree(path, tree)


def _load_json(tree: _Tree, rel: str) -> Any:
    """The parsed JSON of one file; raises ValueError with a readable reason."""
    try:
        data = tree.read(rel)
    except (OSError, zipfile.BadZipFile, KeyError, EOFError) as exc:
        raise ValueError(f"cannot be read ({exc})") from exc
    if not data.strip():
        raise ValueError("is empty")
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"is not UTF-8 text ({exc.reason})") from exc


def _parse_tree(path: Path, tree: _Tree) -> Parsed:
    if not (tree.has("channels.json") or tree.has("users.json")):
        raise ParseError(
            f"{path}: not a Slack export (no channels.json or users.json; export the workspace from "
            "Slack's admin settings and import the whole folder or .zip)"
        )
    users: dict[str, _User] = {}
    if not tree.has("users.json"):
        yield Skipped(
            location(path, "users.json"),
            "users.json is missing: authors and mentions show as Slack user ids where messages lack names",
        )
    else:
        try:
            users = _users(_load_json(tree, "users.json"))
        except ValueError as exc:
            yield Skipped(
                location(path, "users.json"),
                f"users.json {exc}: authors and mentions show as Slack user ids where messages lack names",
            )
    channels, skipped = _channels(path, tree, users)
    yield from skipped
    names = {c.id: c.name for c in channels}
    bots: dict[str, str] = {}  # bot id -> integration name, learnt from "added an integration" notices
    for channel in channels:
        yield from _parse_channel(path, tree, channel, users, names, bots)


def _users(data: Any) -> dict[str, _User]:
    if not isinstance(data, list):
        raise ValueError("is not a list of users")
    users: dict[str, _User] = {}
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        profile = _dict(entry.get("profile"))
        username = _str(entry.get("name"))
        real = _str(entry.get("real_name")) or _str(profile.get("real_name"))
        display = _str(profile.get("display_name"))
        users[entry["id"]] = _User(
            id=entry["id"],
            handle=display or real or username or entry["id"],
            full_name=real or display or username or entry["id"],
            email=_str(profile.get("email")),
            is_bot=bool(entry.get("is_bot")),
        )
    return users


def _channels(path: Path, tree: _Tree, users: dict[str, _User]) -> tuple[list[_Channel], list[Skipped]]:
    channels: list[_Channel] = []
    skipped: list[Skipped] = []
    for listing in ("channels.json", "groups.json", "mpims.json", "dms.json"):
        if not tree.has(listing):
            continue
        try:
            data = _load_json(tree, listing)
        except ValueError as exc:
            skipped.append(
                Skipped(location(path, listing), f"{listing} {exc}: its conversations were not found")
            )
            continue
        if not isinstance(data, list):
            skipped.append(Skipped(location(path, listing), f"{listing} is not a list of conversations"))
            continue
        for entry in data:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                skipped.append(Skipped(location(path, listing), "a conversation without an id"))
                continue
            cid = entry["id"]
            name = _str(entry.get("name"))
            if listing == "dms.json" or not name:
                members = _list(entry.get("members"))
                people = ", ".join(users[m].handle if m in users else str(m) for m in members)
                channels.append(_Channel(cid, f"DM {people}".strip(), cid))
            else:
                channels.append(_Channel(cid, name, name))
    known = {c.folder for c in channels}
    for folder in tree.folders():
        if folder not in known and tree.day_files(folder):
            # A conversation folder the listings do not name (a listing missing or cut short): import it under
            # its folder name, which is also the best id there is.
            skipped.append(
                Skipped(
                    location(path, folder),
                    f"folder {folder!r} is in no channels.json/groups.json/mpims.json/dms.json: "
                    "imported with the folder name as its channel id",
                )
            )
            channels.append(_Channel(folder, folder, folder))
    return channels, skipped


def _parse_channel(
    path: Path,
    tree: _Tree,
    channel: _Channel,
    users: dict[str, _User],
    names: dict[str, str],
    bots: dict[str, str],
) -> Parsed:
    for rel in tree.day_files(channel.folder):
        try:
            messages = _load_json(tree, rel)
        except ValueError as exc:
            yield Skipped(location(path, rel), f"{rel} {exc}: that day's messages were not imported")
            continue
        if not isinstance(messages, list):
            yield Skipped(location(path, rel), f"{rel} is not a list of messages")
            continue
        for index, message in enumerate(messages, 1):
            where = location(path, f"{rel} message {index}")
            if not isinstance(message, dict):
                yield Skipped(where, "not a message object")
                continue
            yield _message(where, channel, message, users, names, bots)


def _message(
    where: str,
    channel: _Channel,
    message: dict[str, Any],
    users: dict[str, _User],
    names: dict[str, str],
    bots: dict[str, str],
) -> Record | Skipped:
    ts = message.get("ts")
    if not isinstance(ts, str) or not ts:
        return Skipped(where, "message without a timestamp (ts)")
    occurred_at = _ts_time(ts)
    if occurred_at is None:
        return Skipped(where, f"message timestamp {ts!r} is not a Slack ts")
    subtype = _str(message.get("subtype")) or None
    if subtype in EVENT_SUBTYPES:
        return Skipped(where, f"a {subtype} event, not a message (the export keeps the final message)")

    # Old file_comment messages name the commenter only inside "comment".
    user_id = _str(message.get("user")) or _str(_dict(message.get("comment")).get("user"))
    user = users.get(user_id)
    if subtype in ("bot_add", "bot_remove"):
        _learn_bot_name(_str(message.get("text")), bots)
    is_bot = subtype == "bot_message" or (bool(message.get("bot_id")) and subtype not in SYSTEM_SUBTYPES)
    is_bot = is_bot or (user is not None and user.is_bot)
    author = _author(message, user, user_id, bots)

    text = _render(_str(message.get("text")), users, names)
    attachments = _list(message.get("attachments"))
    if not text.strip():
        text = "\n".join(
            _attachment_text(a, users, names) for a in attachments if isinstance(a, dict)
        ).strip()
    files = _file_names(message)
    if not text.strip() and files:
        text = "Shared " + ", ".join(files)

    external_id = f"{channel.id}:{ts}"
    thread_ts = message.get("thread_ts")
    thread_id = f"{channel.id}:{thread_ts}" if isinstance(thread_ts, str) and thread_ts else external_id
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "(no text)")
    title = f"#{channel.name}: {first_line}"
    if len(title) > _TITLE_MAX:
        title = title[: _TITLE_MAX - 1].rstrip() + "…"
    reactions = _list(message.get("reactions"))
    return Record(
        source="slack",
        external_id=external_id,
        kind="message",
        title=title,
        body=text,
        occurred_at=occurred_at,
        thread_id=thread_id,
        participants=(author,) if author else (),
        extra={
            "channel": channel.name,
            "channel_id": channel.id,
            "subtype": subtype,
            "user_id": user_id or None,
            "bot": is_bot,
            "system": subtype in SYSTEM_SUBTYPES,
            "reactions": sum(_reaction_count(r) for r in reactions if isinstance(r, dict)),
            "files": files,
            "edited": isinstance(message.get("edited"), dict),
        },
    )


def _author(
    message: dict[str, Any], user: _User | None, user_id: str, bots: dict[str, str]
) -> Participant | None:
    if user is not None:
        return Participant(name=user.full_name, email=user.email, role="author")
    profile = message.get("user_profile")
    if isinstance(profile, dict):  # newer exports carry the author's names on each message
        name = (
            _str(profile.get("real_name")) or _str(profile.get("display_name")) or _str(profile.get("name"))
        )
        if name:
            return Participant(name=name, role="author")
    bot_profile = message.get("bot_profile")
    name = _str(message.get("username"))
    if not name and isinstance(bot_profile, dict):
        name = _str(bot_profile.get("name"))
    bot_id = _str(message.get("bot_id"))
    name = name or bots.get(bot_id, "") or user_id or bot_id
    return Participant(name=name, role="author") if name else None


_BOT_ADDED = re.compile(r"/services/(B[A-Z0-9]+)\|([^>]+)>")


def _learn_bot_name(text: str, bots: dict[str, str]) -> None:
    """Old exports name an integration's bot only in the notice that added it (".../services/B0J|github")."""
    for bot_id, name in _BOT_ADDED.findall(text):
        bots[bot_id] = name


def _ts_time(ts: str) -> datetime | None:
    seconds, _, fraction = ts.partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        return None
    try:
        moment = datetime.fromtimestamp(int(seconds), UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.replace(microsecond=int(fraction[:6].ljust(6, "0")) if fraction else 0)


def _render(text: str, users: dict[str, _User], names: dict[str, str]) -> str:
    """Slack's markup as a person reads it: mentions and channel links by name, links by label, entities."""

    def one(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            uid = target[1:]
            return "@" + (users[uid].handle if uid in users else label or uid)
        if target.startswith("#"):
            cid = target[1:]
            return "#" + (label or names.get(cid, cid))
        if target.startswith("!"):
            special = target[1:]
            if special in ("here", "channel", "everyone"):
                return f"@{special}"
            if special.startswith("subteam^"):
                return label or "@" + special.removeprefix("subteam^")
            return label or special.split("^", 1)[0]
        if target.startswith("mailto:"):
            return label or target.removeprefix("mailto:")
        if label and label != target:
            return f"{label} ({target})"
        return target

    return html.unescape(_ANGLE.sub(one, text))


def _attachment_text(attachment: dict[str, Any], users: dict[str, _User], names: dict[str, str]) -> str:
    parts = [_str(attachment.get(key)) for key in ("pretext", "title", "text")]
    parts = [p for p in parts if p]
    if not parts:
        parts = [_str(attachment.get("fallback"))]
    return "\n".join(_render(p, users, names) for p in parts if p)


def _file_names(message: dict[str, Any]) -> list[str]:
    found = _list(message.get("files"))
    if isinstance(message.get("file"), dict):  # older exports: one file per file_share message
        found = [*found, message["file"]]
    return [
        _str(f.get("name")) or _str(f.get("title")) or _str(f.get("id"))
        for f in found
        if isinstance(f, dict) and (f.get("name") or f.get("title") or f.get("id"))
    ]


def _reaction_count(reaction: dict[str, Any]) -> int:
    count = reaction.get("count")
    if isinstance(count, int) and not isinstance(count, bool):
        return count
    users = reaction.get("users")
    return len(users) if isinstance(users, list) else 1


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
