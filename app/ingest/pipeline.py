"""`aurora import`: files in, records out of the parsers, rows and operations into the store.

- Idempotent: every row's id is derived from its source (a mail's Message-ID, an event's UID and start,
  a Slack channel and timestamp...), and a hash of what the source said is kept per row. Importing the same
  file again finds every hash equal and writes nothing, not even an operation.
- Crash-safe: records are written in batches, each one transaction with its hashes; an import killed
  half-way and run again skips what was committed and finishes the rest. Nothing is duplicated.
- Every row written is an operation, so imported mail syncs like a task.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aurora.app.entities import iso
from aurora.app.errors import ImportFormatError
from aurora.app.ingest import detect
from aurora.app.ingest.records import Record, Skipped
from aurora.app.people import name_is_specific, name_key, normalise_email
from aurora.app.store.store import Transaction
from aurora.app.workspace import Workspace
from aurora.schema import InteractionKind, TaskStatus, check_field_values
from aurora.schema.memory import MAX_ITEM_BODY, MAX_PARTICIPANTS
from aurora.schema.registry import EntityKind

BATCH = 200
"""Records per transaction: large enough to amortise the commit, small enough to lose little to a kill."""

Outcome = Literal["new", "updated", "unchanged"]
Progress = Callable[[str, int], None]
"""Called with (what is being read, records so far) as the import goes."""


@dataclass
class ImportReport:
    """What importing one file (or one Maildir, one Slack export) did, for the summary."""

    path: str
    format: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _jsonable(value: Any) -> Any:
    """Parser extras as plain JSON (dates become ISO text; anything odd becomes its text)."""
    return json.loads(json.dumps(value, default=str))


class Importer:
    def __init__(self, ws: Workspace, progress: Progress | None = None, batch: int = BATCH) -> None:
        self._ws = ws
        self._progress = progress
        self._batch = batch
        self._me = {normalise_email(e) for e in ws.settings.me_emails} - {""}
        self._names: dict[str, str | None] = {}
        """name key -> the one person with that name (None when several share it); filled per run."""

    def run(self, paths: Iterable[Path], fmt: str | None = None) -> list[ImportReport]:
        """Import every path; a path named here that no importer reads is an error (nothing imported),
        while an unreadable file met inside a folder is only skipped, with its reason."""
        given = list(paths)
        targets = self._targets(given, fmt)
        unknown = [p for p, f in targets if f is None and p in given]
        if unknown:
            raise ImportFormatError(
                f"{unknown[0]} is not a format Aurora imports; name one with --format "
                f"({', '.join(detect.FORMATS)}); nothing was imported"
            )
        self._load_names()
        reports: list[ImportReport] = []
        for path, found in targets:
            if found is None:
                report = ImportReport(str(path), "unknown")
                report.skipped.append(Skipped(str(path), "not a format Aurora imports"))
            elif found == "aurora-export":
                report = self._import_export(path)
            else:
                report = self._import_records(path, found)
            reports.append(report)
        return reports

    def _targets(self, paths: list[Path], fmt: str | None) -> list[tuple[Path, str | None]]:
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise ImportFormatError(f"{missing[0]} does not exist; check the path (nothing was imported)")
        if fmt is not None:
            if fmt not in detect.FORMATS:
                raise ImportFormatError(f"unknown format '{fmt}'; use one of {', '.join(detect.FORMATS)}")
            return [(p, fmt) for p in paths]
        return list(detect.walk(paths))

    def _import_export(self, path: Path) -> ImportReport:
        from aurora.app import transfer

        summary = transfer.import_document(self._ws, path)
        return ImportReport(str(path), "aurora-export", new=summary.applied, unchanged=summary.unchanged)

    def _import_records(self, path: Path, fmt: str) -> ImportReport:
        report = ImportReport(str(path), fmt)
        pending: list[Record] = []
        seen = 0
        for entry in detect.parse(path, fmt, now=self._ws.now()):
            if isinstance(entry, Skipped):
                report.skipped.append(entry)
                continue
            pending.append(entry)
            seen += 1
            if len(pending) >= self._batch:
                self._write(pending, report)
                pending = []
                if self._progress:
                    self._progress(str(path), seen)
        if pending:
            self._write(pending, report)
        if self._progress:
            self._progress(str(path), seen)
        return report

    # Writing ------------------------------------------------------------------------------------------------

    def _write(self, records: list[Record], report: ImportReport) -> None:
        with self._ws.store.transaction() as tx:
            for record in records:
                try:
                    report.count(self._write_record(tx, record))
                except ValueError as exc:
                    report.skipped.append(Skipped(f"{record.source}:{record.external_id[:80]}", str(exc)))

    def _write_record(self, tx: Transaction, record: Record) -> Outcome:
        if record.kind == "task":
            return self._write_task(tx, record)
        if record.kind == "contact":
            _, outcome = self._person_for(tx, record.title, [p.email for p in record.participants], record)
            return outcome
        return self._write_item(tx, record)

    def _put(self, tx: Transaction, kind: EntityKind, entity_id: str, fields: dict[str, Any],
             source_hash: str | None = None) -> Outcome:  # fmt: skip
        """Write what changed; with `source_hash`, skip the row entirely when its source is unchanged."""
        if source_hash is not None:
            row = tx.query("SELECT record_hash FROM import_hashes WHERE entity_id = ?", (entity_id,))
            if row and row[0][0] == source_hash:
                return "unchanged"
        fields = check_field_values(kind, fields)
        state = tx.load(kind, entity_id)
        stamp = iso(self._ws.now())
        outcome: Outcome
        if state is None:
            tx.change(kind, entity_id, {**fields, "created_at": fields.get("created_at", stamp),
                                        "updated_at": stamp, "deleted": False})  # fmt: skip
            outcome = "new"
        else:
            delta = {k: v for k, v in fields.items() if state.values.get(k) != v and k != "created_at"}
            if delta:
                tx.change(kind, entity_id, {**delta, "updated_at": stamp})
            outcome = "updated" if delta else "unchanged"
        if source_hash is not None:
            tx.execute(
                "INSERT OR REPLACE INTO import_hashes (entity_id, record_hash) VALUES (?, ?)",
                (entity_id, source_hash),
            )
        return outcome

    def _write_item(self, tx: Transaction, record: Record) -> Outcome:
        item_id = "itm_" + _digest(record.kind, record.external_id)[:24]
        participants = [
            {"name": p.name[:300], "email": normalise_email(p.email) or p.email[:320], "role": p.role}
            for p in record.participants[:MAX_PARTICIPANTS]
        ]
        extra = _jsonable(record.extra)
        fields: dict[str, Any] = {
            "kind": record.kind,
            "source": record.source,
            "external_id": record.external_id[:1000],
            "title": record.title[:2000],
            "body": record.body[:MAX_ITEM_BODY],
            "occurred_at": iso(record.occurred_at),
            "ends_at": iso(record.ends_at),
            "thread_id": record.thread_id[:1000] if record.thread_id else None,
            "participants": participants,
            "extra": extra,
        }
        source_hash = _digest(json.dumps(fields, sort_keys=True, default=str))
        outcome = self._put(tx, "item", item_id, fields, source_hash)
        if outcome != "unchanged":
            self._record_interactions(tx, item_id, record)
        return outcome

    def _record_interactions(self, tx: Transaction, item_id: str, record: Record) -> None:
        senders = [p for p in record.participants if p.role in {"from", "author", "organizer"}]
        sent_by_me = any(normalise_email(p.email) in self._me for p in senders)
        for p in record.participants:
            email = normalise_email(p.email)
            if email and email in self._me:
                continue
            kind: InteractionKind | None = None
            if record.kind == "mail":
                if sent_by_me and p.role in {"to", "cc", "bcc"}:
                    kind = InteractionKind.MAIL_OUT
                elif not sent_by_me and p.role == "from":
                    kind = InteractionKind.MAIL_IN
            elif record.kind == "event":
                kind = InteractionKind.MEETING
            elif record.kind == "message" and p.role == "author":
                kind = InteractionKind.MESSAGE
            elif record.kind == "transcript":
                kind = InteractionKind.TRANSCRIPT
            if kind is None or not (email or p.name.strip()):
                continue
            person_id, _ = self._person_for(tx, p.name, [email], None)
            interaction_id = "int_" + _digest(item_id, person_id, kind.value)[:24]
            self._put(
                tx,
                "interaction",
                interaction_id,
                {
                    "person_id": person_id,
                    "item_id": item_id,
                    "kind": kind.value,
                    "occurred_at": iso(record.occurred_at),
                },
            )

    def _person_for(
        self, tx: Transaction, name: str, emails: list[str], contact: Record | None
    ) -> tuple[str, Outcome]:
        """The person these addresses (or, failing them, this full name) belong to, made if new.
        Returns (id, what the write did). A contact record also fills in the person's details."""
        addresses = [e for e in (normalise_email(x) for x in emails) if e]
        person_id: str | None = None
        for address in addresses:
            row = tx.query("SELECT person_id FROM person_emails WHERE email = ?", (address,))
            if row:
                person_id = str(row[0][0])
                break
        key = name_key(name)
        if person_id is None and not addresses and name_is_specific(key):
            person_id = self._names.get(key)
        if person_id is None:
            seed = f"email:{addresses[0]}" if addresses else f"name:{key}"
            person_id = "per_" + _digest(seed)[:24]
        state = tx.load("person", person_id)
        known = list(state.values.get("emails", [])) if state else []
        fields: dict[str, Any] = {"emails": [*known, *(a for a in addresses if a not in known)][:50]}
        current_name = str(state.values.get("name", "")) if state else ""
        if name.strip() and (not current_name or contact is not None):
            fields["name"] = " ".join(name.split())[:300]
        if contact is not None:
            phones = [str(x)[:500] for x in contact.extra.get("phones", [])][:50]
            fields |= {"phones": phones, "org": str(contact.extra.get("org") or "")[:300],
                       "job_title": str(contact.extra.get("job_title") or "")[:300]}  # fmt: skip
        outcome = self._put(tx, "person", person_id, fields)
        for address in fields["emails"]:
            tx.execute(
                "INSERT OR IGNORE INTO person_emails (email, person_id) VALUES (?, ?)", (address, person_id)
            )
        if key and name_is_specific(key):
            holder = self._names.get(key, person_id)
            self._names[key] = person_id if holder == person_id else None
        return person_id, outcome

    def _write_task(self, tx: Transaction, record: Record) -> Outcome:
        task_id = "tw_" + _digest(record.source, record.external_id)[:24]
        extra = record.extra
        due = _parse_time(extra.get("due"))
        tags = [str(t) for t in extra.get("tags", [])]
        important = str(extra.get("priority", "")).upper() == "H"
        status = str(extra.get("status", "pending"))
        done = status == "completed"
        fields: dict[str, Any] = {
            "title": " ".join(record.title.split())[:500] or "(untitled)",
            "due": iso(due),
            "tags": tags,
            "important": important,
            "urgent": False,
            "status": (TaskStatus.DONE if done else TaskStatus.OPEN).value,
            "completed_at": iso(_parse_time(extra.get("end"))) if done else None,
            "source": "taskwarrior",
            "created_at": iso(record.occurred_at) or iso(self._ws.now()),
            "deleted": status == "deleted",
        }
        source_hash = _digest(json.dumps(fields, sort_keys=True, default=str))
        if tx.load("task", task_id) is None:
            scores, position = self._ws.tasks.placement(due, False, important, tags)
            fields |= {"urgency": scores.urgency, "importance": scores.importance,
                       "quadrant": int(scores.quadrant), "manual": False, "position": position}  # fmt: skip
        return self._put(tx, "task", task_id, fields, source_hash)

    def _load_names(self) -> None:
        self._names = {}
        for person_id, name in self._ws.store.query("SELECT id, name FROM people WHERE deleted = 0"):
            key = name_key(str(name))
            if name_is_specific(key):
                self._names[key] = None if key in self._names else str(person_id)


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
