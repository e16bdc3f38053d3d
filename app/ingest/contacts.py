"""Address books: vCard files (.vcf, versions 2.1, 3.0 and 4.0) and contacts CSV exports (Google, Outlook).

vCard is read by a hand parser rather than the `vobject` package. vobject 0.9.9 stops at the first line it
cannot parse and raises, which loses every later card in the file. It also cannot read the quoted-printable
soft line breaks that phones write in vCard 2.1 ("FN;ENCODING=QUOTED-PRINTABLE:J=C3=B6rg M=C3=BC=" followed
by a continuation line). This parser unfolds lines (RFC 6350 3.2), undoes backslash escapes and
quoted-printable with the card's CHARSET, accepts all three versions' parameter styles
(`TEL;CELL:`, `TYPE=work,voice`, `TYPE="voice,cell"`), and skips a bad line or card without losing the rest.

One `Record` per contact (kind "contact"). Its external id is the vCard UID, else the first e-mail address in
lower case, else "sha256:" and the hash of the name, so importing the same address book again finds the same
contacts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import quopri
import re
from dataclasses import dataclass, field
from pathlib import Path

from aurora.app.ingest.records import (
    Parsed,
    ParseError,
    Participant,
    Record,
    Skipped,
    location,
    read_text,
)

# Reading ----------------------------------------------------------------------------------------------------


@dataclass
class _Contact:
    name: str = ""
    uid: str = ""
    emails: list[str] = field(default_factory=list)
    phones: list[tuple[str, str]] = field(default_factory=list)
    """(number, label)"""
    org: str = ""
    department: str = ""
    job_title: str = ""
    addresses: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    birthday: str = ""
    notes: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)


def _normalise_email(email: str) -> str:
    return email.strip().removeprefix("mailto:").strip().lower()


def _record(source: str, contact: _Contact) -> Record:
    emails = list(dict.fromkeys(e for e in contact.emails if e))
    phones = list(dict.fromkeys(number for number, _ in contact.phones if number))
    title = contact.name or contact.org or (emails[0] if emails else "") or (phones[0] if phones else "")
    if contact.uid:
        external_id = contact.uid
    elif emails:
        external_id = _normalise_email(emails[0])
    else:
        key = " ".join((contact.name or title).split()).casefold()
        external_id = "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()

    lines: list[str] = []
    role = ", ".join(p for p in (contact.job_title, contact.org) if p)
    if contact.department:
        role = f"{role} ({contact.department})" if role else contact.department
    if role:
        lines.append(role)
    if emails:
        lines.append("Email: " + ", ".join(emails))
    if contact.phones:
        shown = dict.fromkeys(f"{n} ({label})" if label else n for n, label in contact.phones if n)
        lines.append("Phone: " + ", ".join(shown))
    lines.extend(f"Address: {a}" for a in contact.addresses)
    lines.extend(f"Web: {u}" for u in contact.urls)
    if contact.birthday:
        lines.append(f"Birthday: {contact.birthday}")
    if contact.categories:
        lines.append("Groups: " + ", ".join(contact.categories))
    if contact.notes:
        lines.append("")
        lines.extend(n.replace("\r\n", "\n").replace("\r", "\n") for n in contact.notes)

    name = contact.name or contact.org
    participants = tuple(Participant(name=name, email=e, role="contact") for e in emails) or (
        Participant(name=title, role="contact"),
    )
    return Record(
        source=source,
        external_id=external_id,
        kind="contact",
        title=title,
        body="\n".join(lines).strip(),
        participants=participants,
        extra={
            "emails": emails,
            "phones": phones,
            "org": contact.org or None,
            "job_title": contact.job_title or None,
        },
    )


# vCard ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Property:
    line: int
    name: str
    params: dict[str, list[str]]
    value: str


def _split_unquoted(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
            current.append(char)
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _content_line(number: int, line: str) -> _Property | None:
    """One unfolded content line: `[group.]NAME[;PARAM...]:VALUE`; None when the line is not one."""
    head, colon, value = "", "", ""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            head, colon, value = line[:index], ":", line[index + 1 :]
            break
    if not colon:
        return None
    pieces = _split_unquoted(head, ";")
    name = pieces[0].rsplit(".", 1)[-1].strip().upper()  # drop Apple's "item1." group
    if not name or not re.fullmatch(r"[A-Z0-9\-]+", name):
        return None
    params: dict[str, list[str]] = {}
    for piece in pieces[1:]:
        key, equals, raw = piece.partition("=")
        if not equals:  # vCard 2.1: a bare type ("TEL;CELL;VOICE:") or encoding ("QUOTED-PRINTABLE")
            key, raw = (
                ("ENCODING", key) if key.upper() in ("QUOTED-PRINTABLE", "BASE64", "B") else ("TYPE", key)
            )
        key = key.strip().upper()
        values = [v.strip().strip('"') for v in _split_unquoted(raw, ",")]
        if key == "TYPE":  # vCard 4.0 quotes the list: TYPE="voice,cell"
            values = [t.strip() for v in values for t in v.split(",")]
        params.setdefault(key, []).extend(v for v in values if v)
    return _Property(number, name, params, value)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Unfolded lines with their first physical line number: a line starting with a space or tab continues
    the one before; a quoted-printable value ending in '=' continues on the next line (vCard 2.1)."""
    physical = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    logical: list[tuple[int, str]] = []
    quoted_printable_open = False
    for number, line in enumerate(physical, 1):
        if logical and (line.startswith((" ", "\t")) or quoted_printable_open):
            start, previous = logical[-1]
            if quoted_printable_open:
                logical[-1] = (
                    start,
                    previous[:-1] + line.lstrip() if previous.endswith("=") else previous + line,
                )
            else:
                logical[-1] = (start, previous + line[1:])
        elif line.strip():
            logical.append((number, line))
        else:
            quoted_printable_open = False
            continue
        current = logical[-1][1]
        head = current.split(":", 1)[0].upper()
        quoted_printable_open = "QUOTED-PRINTABLE" in head and current.endswith("=")
    return logical


def _unescape(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append("\n" if nxt in ("n", "N") else nxt)
        else:
            out.append(char)
    return "".join(out)


def _components(value: str, separator: str = ";") -> list[str]:
    """A structured value's components (N, ADR, ORG), split at unescaped separators, then unescaped."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [_unescape(p).strip() for p in parts]


def _decoded(prop: _Property) -> str:
    encoding = [e.upper() for e in prop.params.get("ENCODING", [])]
    if "QUOTED-PRINTABLE" in encoding:
        charset = (prop.params.get("CHARSET") or ["utf-8"])[0]
        raw = quopri.decodestring(prop.value.encode("latin-1", errors="replace"))
        try:
            return raw.decode(charset)
        except (LookupError, UnicodeDecodeError):
            return raw.decode("latin-1")
    return prop.value


def _types(prop: _Property) -> list[str]:
    return [t.lower() for t in prop.params.get("TYPE", []) if t.lower() not in ("internet", "pref", "x400")]


_PHONE_LABELS = {"cell": "mobile", "voice": "", "msg": "", "text": ""}


def parse_vcard(path: Path) -> Parsed:
    """One `Record` per card of a .vcf file; `Skipped` for a card with nothing to show or cut short."""
    text = read_text(path, "vCard contacts")
    cards: list[tuple[int, list[_Property], bool]] = []
    current: list[_Property] | None = None
    start = 0
    depth = 0
    for number, line in _logical_lines(text):
        prop = _content_line(number, line)
        if prop is None:
            continue  # not a content line: a stray line inside a card costs that line only
        if prop.name == "BEGIN" and prop.value.strip().upper() == "VCARD":
            depth += 1
            if depth == 1:
                current, start = [], number
            continue
        if prop.name == "END" and prop.value.strip().upper() == "VCARD":
            depth = max(depth - 1, 0)
            if depth == 0 and current is not None:
                cards.append((start, current, True))
                current = None
            continue
        if current is not None and depth == 1:  # an AGENT's nested card belongs to no one here
            current.append(prop)
    if current is not None:
        cards.append((start, current, False))
    if not cards:
        raise ParseError(f"{path}: no vCard in this file (no BEGIN:VCARD line)")

    for start, props, complete in cards:
        where = location(path, f"card at line {start}")
        contact = _vcard_contact(props)
        shown = contact.name or (contact.emails[0] if contact.emails else "")
        if not complete:
            yield Skipped(
                where, f"the card{f' for {shown}' if shown else ''} has no END:VCARD: the file is cut short"
            )
            continue
        if not (contact.name or contact.emails or contact.phones or contact.org):
            yield Skipped(where, "the card has no name, e-mail, phone or organisation")
            continue
        yield _record("vcard", contact)


def _vcard_contact(props: list[_Property]) -> _Contact:
    contact = _Contact()
    structured_name = ""
    for prop in props:
        value = _decoded(prop)
        if prop.name == "FN":
            contact.name = contact.name or " ".join(_unescape(value).split())
        elif prop.name == "N":
            family, given, additional, prefix, suffix = ([*_components(value), "", "", "", "", ""])[:5]
            structured_name = " ".join(p for p in (prefix, given, additional, family, suffix) if p)
        elif prop.name == "UID":
            contact.uid = contact.uid or _unescape(value).strip()
        elif prop.name == "EMAIL":
            email = _unescape(value).strip().removeprefix("mailto:")
            if email:
                contact.emails.append(email)
        elif prop.name == "TEL":
            number = _unescape(value).strip().removeprefix("tel:")
            labels = [_PHONE_LABELS.get(t, t) for t in _types(prop)]
            if number:
                contact.phones.append((number, ", ".join(dict.fromkeys(label for label in labels if label))))
        elif prop.name == "ORG":
            org, *units = _components(value) or [""]
            contact.org = contact.org or org
            contact.department = contact.department or ", ".join(u for u in units if u)
        elif prop.name == "TITLE":
            contact.job_title = contact.job_title or _unescape(value).strip()
        elif prop.name == "ADR":
            parts = [p for p in _components(value) if p]
            if parts:
                contact.addresses.append(", ".join(parts))
        elif prop.name == "URL":
            contact.urls.append(_unescape(value).strip())
        elif prop.name == "BDAY":
            contact.birthday = _unescape(value).strip()
        elif prop.name == "NOTE":
            note = _unescape(value).strip()
            if note:
                contact.notes.append(note)
        elif prop.name == "CATEGORIES":
            contact.categories.extend(c for c in _components(value, ",") if c)
    contact.name = contact.name or structured_name
    return contact


# CSV --------------------------------------------------------------------------------------------------------


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


_FULL_NAME = ("name", "fullname", "displayname", "contactname")
_FIRST = ("firstname", "givenname")
_MIDDLE = ("middlename", "additionalname")
_LAST = ("lastname", "familyname", "surname")
_ORG = ("organizationname", "organization1name", "organisationname", "organization", "company", "companyname")
_JOB = ("jobtitle", "organizationtitle", "organization1title", "position")
_DEPT = ("department", "organizationdepartment", "organization1department")
_NOTES = ("notes", "note")
_BIRTHDAY = ("birthday",)
_FILE_AS = ("fileas",)
_NUMBERED = re.compile(
    r"^(?P<kind>email|phone|address|website)(?P<n>\d+)(?P<part>value|type|label|formatted)$"
)


@dataclass(frozen=True)
class _Columns:
    full: int | None
    first: int | None
    middle: int | None
    last: int | None
    org: int | None
    job: int | None
    dept: int | None
    notes: int | None
    birthday: int | None
    file_as: int | None
    emails: list[tuple[int, int | None]]
    """(value column, label column)"""
    phones: list[tuple[int, int | None, str]]
    """(value column, label column, label from the header)"""


def _columns(headers: list[str]) -> _Columns:
    keys = [_key(h) for h in headers]

    def find(names: tuple[str, ...]) -> int | None:
        for name in names:
            if name in keys:
                return keys.index(name)
        return None

    emails: list[tuple[int, int | None]] = []
    phones: list[tuple[int, int | None, str]] = []
    numbered: dict[tuple[str, str], dict[str, int]] = {}
    for index, key in enumerate(keys):
        match = _NUMBERED.match(key)
        if match:
            numbered.setdefault((match.group("kind"), match.group("n")), {})[match.group("part")] = index
            continue
        # Outlook: "E-mail Address", "E-mail 2 Address", "Mobile Phone", "Business Phone 2", "Primary Phone".
        if re.fullmatch(r"e?mail\d*(address)?|primaryemail|emailaddress\d*|email\d*address", key):
            emails.append((index, None))
        elif (
            ("phone" in key and not key.startswith(("phonetic", "assistant")))
            or key in ("mobile", "cell", "telephone", "tel")
        ) and not key.endswith(("type", "label")):
            label = re.sub(r"\s*phone\s*\d*$", "", headers[index].strip(), flags=re.IGNORECASE)
            phones.append((index, None, "" if label.lower() in ("", "primary") else label.lower()))
    for (kind, _n), parts in sorted(numbered.items(), key=lambda item: (item[0][0], int(item[0][1]))):
        value = parts.get("value")
        if value is None:
            continue
        label_column = parts.get("label", parts.get("type"))
        if kind == "email":
            emails.append((value, label_column))
        elif kind == "phone":
            phones.append((value, label_column, ""))

    job = find(_JOB)
    if job is None and "title" in keys and "suffix" not in keys:  # Outlook's "Title" is Mr./Ms.
        job = keys.index("title")
    return _Columns(
        full=find(_FULL_NAME),
        first=find(_FIRST),
        middle=find(_MIDDLE),
        last=find(_LAST),
        org=find(_ORG),
        job=job,
        dept=find(_DEPT),
        notes=find(_NOTES),
        birthday=find(_BIRTHDAY),
        file_as=find(_FILE_AS),
        emails=emails,
        phones=phones,
    )


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def _multi(value: str) -> list[str]:
    """Google puts several values in one cell, separated by ' ::: '."""
    return [v.strip() for v in value.split(":::") if v.strip()]


def parse_contacts_csv(path: Path) -> Parsed:
    """One `Record` per row of a Google or Outlook contacts CSV export; `Skipped` for an empty row."""
    text = read_text(path, "a contacts CSV")
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        headers = next(reader)
    except (csv.Error, StopIteration) as exc:
        raise ParseError(f"{path}: not a CSV file ({exc})") from exc
    columns = _columns(headers)
    if columns.full is None and columns.first is None and columns.last is None and not columns.emails:
        shown = ", ".join(h for h in headers[:8] if h.strip()) or "none"
        raise ParseError(
            f"{path}: not a contacts export: no Name, First Name, Last Name or E-mail column "
            f"(columns: {shown})"
        )
    row_number = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Skipped(
                location(path, f"line {reader.line_num}"), f"the CSV cannot be read on from here: {exc}"
            )
            return
        row_number += 1
        if not any(cell.strip() for cell in row):
            continue
        contact = _csv_contact(row, columns)
        if not (contact.name or contact.emails or contact.phones or contact.org):
            yield Skipped(
                location(path, f"row {row_number}"), "the row has no name, e-mail, phone or organisation"
            )
            continue
        yield _record("csv-contacts", contact)


def _csv_contact(row: list[str], columns: _Columns) -> _Contact:
    contact = _Contact()
    parts = [_cell(row, columns.first), _cell(row, columns.middle), _cell(row, columns.last)]
    contact.name = _cell(row, columns.full) or " ".join(p for p in parts if p) or _cell(row, columns.file_as)
    for value, _label in columns.emails:
        contact.emails.extend(_multi(_cell(row, value)))
    for value, label_column, header_label in columns.phones:
        label = _cell(row, label_column).lstrip("* ").lower() or header_label
        contact.phones.extend((number, label) for number in _multi(_cell(row, value)))
    contact.org = _cell(row, columns.org)
    contact.job_title = _cell(row, columns.job)
    contact.department = _cell(row, columns.dept)
    birthday = _cell(row, columns.birthday)
    contact.birthday = "" if birthday in ("0/0/00", "0/0/0000") else birthday  # Outlook's "no date"
    note = _cell(row, columns.notes)
    if note:
        contact.notes.append(note)
    return contact
