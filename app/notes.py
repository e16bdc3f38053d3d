"""The sticky-note service: what the notes screen and `aurora note` commands do."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aurora.app.entities import EntityService, iso, like_escape, parse_stamp, validation_message
from aurora.app.errors import InvalidInputError
from aurora.schema import Note, NoteColour, normalise_tags
from aurora.sync import new_id

_NOTE_COLUMNS = "id, body, colour, pinned, tags, created_at, updated_at"


def _note_from_row(row: tuple[Any, ...]) -> Note:
    return Note.model_construct(
        id=row[0],
        body=row[1],
        colour=NoteColour(row[2]),
        pinned=bool(row[3]),
        tags=json.loads(row[4]),
        created_at=parse_stamp(row[5]),
        updated_at=parse_stamp(row[6]),
        deleted=False,
    )


class NoteService(EntityService):
    kind = "note"

    def list(self, query: str = "") -> list[Note]:
        """Pinned notes first, then the most recently changed; `query` filters by text and `#tags`."""
        where = ["deleted = 0"]
        params: list[Any] = []
        for word in query.split():
            if word.startswith("#") and len(word) > 1:
                where.append("EXISTS (SELECT 1 FROM json_each(notes.tags) WHERE value = ?)")
                params.append(word[1:].lower())
            else:
                where.append("body LIKE ? ESCAPE '\\'")
                params.append(f"%{like_escape(word)}%")
        rows = self._store.query(
            f"SELECT {_NOTE_COLUMNS} FROM notes WHERE {' AND '.join(where)} "
            "ORDER BY pinned DESC, updated_at DESC, id DESC",
            params,
        )
        return [_note_from_row(r) for r in rows]

    def get(self, note_id: str) -> Note:
        rows = self._store.query(
            f"SELECT {_NOTE_COLUMNS} FROM notes WHERE id = ? AND deleted = 0", (note_id,)
        )
        if not rows:
            raise self._not_found(note_id)
        return _note_from_row(rows[0])

    def add(
        self, body: str, *, colour: NoteColour = NoteColour.YELLOW, pinned: bool = False,
        tags: Iterable[str] = (),
    ) -> Note:  # fmt: skip
        now = self._now()
        note = self._validated(id=new_id(), body=body, colour=colour, pinned=pinned, tags=list(tags),
                               created_at=now, updated_at=now)  # fmt: skip
        fields = {
            "body": note.body,
            "colour": note.colour.value,
            "pinned": note.pinned,
            "tags": note.tags,
            "created_at": iso(now),
            "deleted": False,
        }
        self._write(f"add note “{_short(note.body)}”", [(note.id, fields)])
        return self.get(note.id)

    def update(self, note_id: str, **changes: Any) -> Note:
        allowed = {"body", "colour", "pinned", "tags"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInputError(f"cannot edit {sorted(unknown)} of a note")
        current = self.get(note_id)
        note = self._validated(**(current.model_dump() | changes))
        fields = {"body": note.body, "colour": note.colour.value, "pinned": note.pinned, "tags": note.tags}
        self._write(f"edit note “{_short(note.body)}”", [(note_id, fields)])
        return self.get(note_id)

    def toggle_pin(self, note_id: str) -> Note:
        return self.update(note_id, pinned=not self.get(note_id).pinned)

    def cycle_colour(self, note_id: str) -> Note:
        colours = list(NoteColour)
        current = self.get(note_id).colour
        return self.update(note_id, colour=colours[(colours.index(current) + 1) % len(colours)])

    def delete(self, note_id: str) -> str:
        note = self.get(note_id)
        self._write(f"delete note “{_short(note.body)}”", [(note_id, {"deleted": True})])
        return note.body

    def _validated(self, **fields: Any) -> Note:
        try:
            fields["tags"] = normalise_tags(list(fields.get("tags", [])))
            return Note.model_validate(fields)
        except ValueError as exc:
            raise InvalidInputError(validation_message(exc)) from None


def _short(text: str, width: int = 30) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
