"""`aurora export` and `aurora import`: the whole workspace as one JSON document, op log included.

Importing replays the operations through the same merge as sync, so it is idempotent (an operation seen
before is skipped by its `op_id`) and order-independent: importing an export twice, or into a workspace
that already holds some of it, changes nothing that is already there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aurora.app.entities import validation_message
from aurora.app.errors import ImportFormatError
from aurora.app.workspace import Workspace
from aurora.sync import Operation

FORMAT = "aurora-export"
VERSION = 1
MAX_IMPORT_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class ImportSummary:
    applied: int
    unchanged: int


def export_document(ws: Workspace) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "workspace": ws.name,
        "device_id": ws.store.device_id,
        "tasks": [t.model_dump(mode="json") for t in ws.tasks.list_all()],
        "notes": [n.model_dump(mode="json") for n in ws.notes.list()],
        "ops": [op.model_dump(mode="json") for op in ws.store.operations()],
    }


def read_document(path: Path) -> list[Operation]:
    """The operations in an export file; ImportFormatError (one line) for anything else."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportFormatError(f"cannot read {path}: {exc.strerror}; check the path") from None
    if size > MAX_IMPORT_BYTES:
        raise ImportFormatError(
            f"{path} is {size // 2**20} MiB, larger than any Aurora export; nothing imported"
        )
    try:
        doc = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ImportFormatError(
            f"{path} is not an Aurora export (not JSON); make one with `aurora export`; nothing imported"
        ) from None
    except OSError as exc:
        raise ImportFormatError(f"cannot read {path}: {exc.strerror}; check the path") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ImportFormatError(
            f'{path} is JSON but not an Aurora export (no "format": "{FORMAT}"); nothing imported'
        )
    version = doc.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ImportFormatError(
            f"{path} is an Aurora export of version {version!r}; this Aurora reads up to {VERSION}: "
            "upgrade Aurora; nothing imported"
        )
    raw_ops = doc.get("ops")
    if not isinstance(raw_ops, list):
        raise ImportFormatError(f'{path} has no operation log ("ops"); nothing imported')
    ops: list[Operation] = []
    for i, raw in enumerate(raw_ops):
        try:
            ops.append(Operation.model_validate(raw))
        except ValidationError as exc:
            raise ImportFormatError(
                f"{path}: operation {i} is invalid ({validation_message(exc)}); nothing imported"
            ) from None
    return ops


def import_document(ws: Workspace, path: Path) -> ImportSummary:
    """Apply an export's operations in one transaction: all of them or, on any error, none."""
    ops = read_document(path)
    applied = 0
    with ws.store.transaction() as tx:
        for op in ops:
            applied += tx.apply(op)
    return ImportSummary(applied=applied, unchanged=len(ops) - applied)
