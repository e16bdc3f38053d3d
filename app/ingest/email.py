"""Mail files into `Record`s: single messages (.eml), Apple Mail (.emlx), mbox files and Maildir folders.

All four formats hold RFC 5322 messages, so each reader only finds the message bytes and hands a parsed
`EmailMessage` to `message_to_record`, which does the real work and does no file I/O: the node's Gmail
connector reuses it on the raw messages the Gmail API returns.

Real mail is messy, and a personal archive holds decades of it: undeclared or wrong charsets, raw 8-bit
bytes in headers, display names that are themselves addresses, multiparts without boundaries, HTML-only
newsletters, bounces. The standard library parser (`email.policy.default`) is tolerant, so it parses; the
rules here decide what a person should see:

- The body is the readable text: text/plain preferred, HTML turned into text otherwise; attachments are not
  imported, only their file names are listed (`extra["attachments"]`).
- Text decodes with the declared charset and UTF-8 (UTF-8 first when the label is ASCII or Latin-1, where
  mislabelled UTF-8 hides), then Windows-1252; GB2312 is read as its superset GB18030 and ks_c_5601 as
  CP949, as browsers do. Raw 8-bit header bytes get the same treatment. Nothing is left undecodable.
- `external_id` is the normalised Message-ID, else a hash of the content, so importing the same mail twice
  (from an mbox, then from the .eml a colleague forwarded) finds the same record.
- `thread_id` is the thread's root as the headers name it (first References id, else In-Reply-To, else the
  message itself); inside one mbox or Maildir a reply also joins the thread its parent is in, which mends
  conversations whose clients truncated References.
- A message that cannot be read is a `Skipped` with the reason; no exception escapes for bad content.
  `ParseError` is raised only when the whole file is not of the format asked for (empty, random bytes, a
  folder given as a file); an unreadable path raises the `OSError`, which the pipeline reports.
"""

from __future__ import annotations

import codecs
import email.policy
import hashlib
import mailbox
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from aurora.app.ingest.records import Parsed, ParseError, Participant, Record, Role, Skipped, location

MAX_BODY_CHARS = 200_000
"""Longer bodies are cut (and `extra["truncated"]` set): beyond this it is a log or a data dump, not mail."""

MAX_PART_CHARS = 10 * MAX_BODY_CHARS
"""Text parts are cut to this before HTML conversion, so a huge HTML part costs bounded time."""

MAX_MESSAGE_BYTES = 100 * 1024 * 1024
"""A message larger than this is skipped unread: parsing it would take several times its size in memory."""

HASH_BODY_CHARS = 4096
"""How much of the body the fallback id hashes (with From, Date and Subject) when there is no Message-ID."""

_POLICY = email.policy.default
_PARSER = BytesParser(_class=EmailMessage, policy=_POLICY)

_MAIL_HEADERS = frozenset(
    {"from", "to", "cc", "subject", "date", "message-id", "received", "sender", "return-path", "mime-version"}
)
"""A message with none of these is not mail (random bytes parse as a message with no headers at all)."""

_SIGNATURE_TYPES = frozenset(
    {"application/pgp-signature", "application/pkcs7-signature", "application/x-pkcs7-signature"}
)
"""Signature parts are not listed: `signature.asc` on every signed mail would bury the real attachments."""

_CHARSET_ALIASES = {
    # Senders label text with the smaller charset and use characters of its superset; browsers decode
    # with the superset for the same reason (WHATWG Encoding Standard).
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-cn": "gb18030",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso_8859-1": "cp1252",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "x-sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "big5": "big5hkscs",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}
_SINGLE_BYTE_FALLBACK = "cp1252"
"""What undecodable text is read as last: it maps every byte, and Western mail is the most common."""

_ENCODED_WORD_CHARSET = re.compile(r"=\?([^?*\s]+)((?:\*[^?\s]*)?\?[bBqQ]\?)")
_SURROGATES = re.compile("[\udc80-\udcff]+")
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_INVISIBLE = re.compile("[\u200b\u00ad\u034f\ufeff\x00]")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status|failure|has failed|notification)|returned mail|failure notice"
    r"|mail delivery failed|delivery failure",
    re.IGNORECASE,
)
_BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster", "mail-daemon"})
_EMAIL_SHAPE = re.compile(r"^[^@\s<>()\",;]+@[^@\s<>()\",;]+$")


# --- the four readers --------------------------------------------------------------------------------------


def parse_eml(path: Path | str) -> Parsed:
    """The one message in an .eml (RFC 5322) file."""
    path = Path(path)
    data = _read_message_file(path, "an .eml file")
    if data is None:
        yield Skipped(location(path), _too_large_reason())
        return
    yield from _one_message(path, data, "eml")


def parse_emlx(path: Path | str) -> Parsed:
    """The message in an Apple Mail .emlx file: a line with the message's byte count, the message, then an
    XML property list of Apple Mail's flags (not imported: Aurora keeps its own state)."""
    path = Path(path)
    data = _read_message_file(path, "an .emlx file")
    if data is None:
        yield Skipped(location(path), _too_large_reason())
        return
    first, newline, rest = data.partition(b"\n")
    count = first.strip()
    if not newline or not count.isdigit():
        raise ParseError("not an Apple Mail .emlx file: the first line is not the message's byte count")
    size = int(count)
    message = rest[:size]
    if size > len(rest):
        # The file was cut short: what is there is still the start of a message and worth importing.
        missing = size - len(rest)
        yield Skipped(
            location(path), f"the message is cut short ({missing} bytes missing); the rest was imported"
        )
    yield from _one_message(path, message, "emlx")


def parse_mbox(path: Path | str) -> Parsed:
    """Every message in an mbox file, one at a time: `mailbox.mbox` indexes message offsets and each
    message is read and parsed only when reached, so a mailbox of any size never sits in memory whole."""
    path = Path(path)
    if path.is_dir():
        raise ParseError(f"{path} is a folder, not an mbox file")
    with path.open("rb") as f:
        head = f.read(4096)
    if not head.strip():
        raise ParseError("the file is empty")
    if not head.lstrip(b"\r\n").startswith(b"From "):
        raise ParseError("not an mbox file: it does not begin with a 'From ' line")
    box = mailbox.mbox(path, create=False)
    threads = _Threads()
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            where = location(path, f"message {number}")
            with box.get_file(key) as message_file:
                data = message_file.read(MAX_MESSAGE_BYTES + 1)
            if len(data) > MAX_MESSAGE_BYTES:
                yield Skipped(where, _too_large_reason())
                continue
            yield threads.resolve(_parse_bytes(data, "mbox", where))
    finally:
        box.close()


def parse_maildir(path: Path | str) -> Parsed:
    """Every message in a Maildir folder (`new/` then `cur/`; `tmp/` holds deliveries still being written)
    and in its Maildir++ subfolders (`.Sent`, `.Archive`, ...)."""
    path = Path(path)
    if not path.is_dir():
        raise ParseError(f"{path} is not a folder, so not a Maildir")
    if not ((path / "cur").is_dir() or (path / "new").is_dir()):
        raise ParseError("not a Maildir: it has no cur/ or new/ folder")
    threads = _Threads()
    folders = [path, *sorted(p for p in path.iterdir() if p.name.startswith(".") and (p / "cur").is_dir())]
    for folder in folders:
        for sub in ("new", "cur"):
            directory = folder / sub
            if not directory.is_dir():
                continue
            # Maildir names start with the delivery time, so name order is roughly arrival order.
            for file in sorted(directory.iterdir()):
                if file.name.startswith(".") or not file.is_file():
                    continue
                try:
                    data = _read_capped(file)
                except OSError as exc:
                    yield Skipped(location(file), f"cannot read: {exc.strerror or exc}")
                    continue
                if data is None:
                    yield Skipped(location(file), _too_large_reason())
                    continue
                yield threads.resolve(_parse_bytes(data, "maildir", location(file)))


# --- one message -------------------------------------------------------------------------------------------


def message_to_record(msg: EmailMessage, source: str, fallback_id: str) -> Record | Skipped:
    """The `Record` for one parsed message, or a `Skipped` saying why not.

    `source` is the format the message came from ("eml", "emlx", "mbox", "maildir", or a connector's name);
    `fallback_id` says where it came from (a path, "path (message 3)", a Gmail message id) and names it in a
    `Skipped`. It is not used as the id of a message without a Message-ID: a position in a file changes when
    the mailbox is re-exported, a hash of the content does not. Pure: no file or network access.
    """
    try:
        return _record(msg, source, fallback_id)
    except Exception as exc:  # the stdlib parser raises assorted errors on malformed mail
        # One unreadable message must not stop a mailbox of thousands; the reason names the error.
        return Skipped(fallback_id, f"cannot read this message: {type(exc).__name__}: {exc}")


def _record(msg: EmailMessage, source: str, where: str) -> Record | Skipped:
    names = {name.lower() for name in msg.keys()}
    if not names & _MAIL_HEADERS:
        return Skipped(where, "not an e-mail message: no From, To, Subject, Date or Message-ID header")

    subject = _header_text(msg, "subject")
    title = _one_line(subject) or "(no subject)"
    body = _Body()
    _collect(msg, body, nested=False, depth=0)
    text = body.text()
    truncated = body.truncated or len(text) > MAX_BODY_CHARS
    if truncated:
        text = text[:MAX_BODY_CHARS]

    date_raw = _one_line(_fix_text(_raw(msg, "date") or ""))
    message_id = _normalise_id(_raw(msg, "message-id") or "")
    in_reply_to = _normalise_id(_raw(msg, "in-reply-to") or "")
    references = _ids(" ".join(_raw_all(msg, "references")))
    from_text = _one_line(_header_text(msg, "from"))
    external_id = message_id or _content_id(from_text, date_raw, title, text)
    thread_id = references[0] if references else in_reply_to or external_id

    participants: list[Participant] = []
    seen: set[tuple[str, str, str]] = set()
    for role in ("from", "to", "cc", "bcc"):
        for name, address in _addresses(msg, role):
            key = (role, address, name if not address else "")
            if key not in seen:
                seen.add(key)
                participants.append(Participant(name=name, email=address, role=_role(role)))

    extra: dict[str, Any] = {
        "message_id": message_id,
        "in_reply_to": in_reply_to,
        "references": references,
        "attachments": body.attachments,
        "is_bounce": body.bounce or _looks_like_bounce(msg, participants, title),
    }
    list_id = _list_id(_raw(msg, "list-id"))
    if list_id:
        extra["list_id"] = list_id
    if truncated:
        extra["truncated"] = True

    return Record(
        source=source,
        external_id=external_id,
        kind="mail",
        title=title[:1000],
        body=text,
        occurred_at=_parse_date(date_raw),
        thread_id=thread_id,
        participants=tuple(participants),
        extra=extra,
    )


def _role(name: str) -> Role:
    roles: dict[str, Role] = {"from": "from", "to": "to", "cc": "cc", "bcc": "bcc"}
    return roles[name]


# --- reading files -----------------------------------------------------------------------------------------


def _read_message_file(path: Path, what: str) -> bytes | None:
    """The file's bytes; None when it is over the size limit. ParseError when it is no file of this kind."""
    if path.is_dir():
        raise ParseError(f"{path} is a folder, not {what} (a folder of mail is read as a Maildir)")
    data = _read_capped(path)
    if data is not None and not data.strip():
        raise ParseError("the file is empty")
    return data


def _read_capped(path: Path) -> bytes | None:
    with path.open("rb") as f:
        data = f.read(MAX_MESSAGE_BYTES + 1)
    return None if len(data) > MAX_MESSAGE_BYTES else data


def _too_large_reason() -> str:
    return f"the message is larger than {MAX_MESSAGE_BYTES // (1024 * 1024)} MB, so it was not read"


def _one_message(path: Path, data: bytes, source: str) -> Parsed:
    msg = _parse(data)
    if msg is None or not {name.lower() for name in msg.keys()} & _MAIL_HEADERS:
        raise ParseError("not an e-mail message: no From, To, Subject, Date or Message-ID header at the top")
    yield message_to_record(msg, source, location(path))


def _parse(data: bytes) -> EmailMessage | None:
    # Some exporters pad the file with a line of spaces before the headers; the parser would take the
    # padding for a header continuation and lose nothing, but a blank first line would end the headers.
    data = data.lstrip(b" \t\r\n")
    try:
        return _PARSER.parsebytes(data)
    except Exception:  # the parser is tolerant by design; any failure means "not mail"
        return None


def _parse_bytes(data: bytes, source: str, where: str) -> Record | Skipped:
    msg = _parse(data)
    if msg is None:
        return Skipped(where, "the message could not be parsed as e-mail")
    return message_to_record(msg, source, where)


class _Threads:
    """Threads inside one mailbox file or folder.

    `message_to_record` threads by the headers alone (the first References id, else In-Reply-To, else the
    message's own id), which splits a conversation whenever a client truncates References. In a mailbox the
    parents are at hand: a reply joins the thread its parent was put in, and a parent read after a reply
    joins the reply's. Only ids are kept, so memory stays small for any mailbox size.
    """

    def __init__(self) -> None:
        self._thread_of: dict[str, str] = {}

    def resolve(self, item: Record | Skipped) -> Record | Skipped:
        if isinstance(item, Skipped) or item.thread_id is None:
            return item
        references: list[str] = list(item.extra.get("references") or [])
        reply_to = item.extra.get("in_reply_to")
        parents = [p for p in [reply_to, *reversed(references)] if isinstance(p, str) and p]
        thread = self._thread_of.get(item.external_id)
        if thread is None:
            thread = next((self._thread_of[p] for p in parents if p in self._thread_of), item.thread_id)
        for known in (item.external_id, *parents):
            self._thread_of.setdefault(known, thread)
        return item if thread == item.thread_id else replace(item, thread_id=thread)


# --- headers -----------------------------------------------------------------------------------------------


def _raw_all(msg: Message, name: str) -> list[str]:
    """Every value of header `name` exactly as stored, before the policy parses it (parsing can fail)."""
    return [_unfold(str(value)) for key, value in msg.raw_items() if key.lower() == name]


def _raw(msg: Message, name: str) -> str | None:
    values = _raw_all(msg, name)
    return values[0] if values else None


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", " ")


def _prepare(raw: str) -> str:
    """A raw header value ready for the policy's parser: 8-bit bytes decoded, charset names made usable."""
    return _ENCODED_WORD_CHARSET.sub(lambda m: f"=?{_codec_name(m.group(1))}{m.group(2)}", _fix_text(raw))


def _header_text(msg: Message, name: str) -> str:
    """A header decoded to text (RFC 2047 words, raw 8-bit bytes), '' when absent."""
    raw = _raw(msg, name)
    if raw is None:
        return ""
    try:
        return _fix_text(str(_POLICY.header_factory(name, _prepare(raw))))
    except Exception:  # a header the policy cannot parse is still worth showing as written
        return _fix_text(raw)


def _addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    """(display name, lower-cased address) for every mailbox in every `name` header."""
    found: list[tuple[str, str]] = []
    for raw in _raw_all(msg, name):
        prepared = _prepare(raw)
        lenient = _lenient_addresses(prepared)
        try:
            header: Any = _POLICY.header_factory(name, prepared)
            strict = [(str(a.display_name), str(a.addr_spec)) for a in header.addresses]
            clean = not header.defects
        except Exception:  # fall back to the lenient reading below
            strict, clean = [], False
        if clean:
            # RFC-valid: trust the policy, but recover old-style "addr (Real Name)" names it drops.
            comment_names = {address: person for person, address in lenient if address}
            for person, address in strict:
                address = _address(address)
                found.append((_fix_text(person).strip() or comment_names.get(address, ""), address))
        else:
            # Malformed ("alice@example.com <bob@example.com>", stray semicolons, bare words): the lenient
            # reading takes the address in angle brackets, as mail clients display it.
            found.extend(lenient)
    return [(_one_line(person), address) for person, address in found if person.strip() or address]


def _lenient_addresses(value: str) -> list[tuple[str, str]]:
    result = []
    for chunk in _split_addresses(value):
        chunk = chunk.strip()
        if ":" in chunk and not chunk.startswith('"'):
            # "Group name: a@b, c@d;" - the group's name is not a person.
            before, _, after = chunk.partition(":")
            if "@" not in before and "<" not in before:
                chunk = after.strip()
        chunk = chunk.rstrip(";").strip()
        if not chunk:
            continue
        angle = re.findall(r"<([^<>]*)>", chunk)
        comment = re.search(r"\(([^()]*)\)", chunk)
        if angle:
            address = _address(angle[-1])
            # "<Saved by Windows Internet Explorer 7>": no address, but the words are all there is to show.
            person = chunk[: chunk.find("<")].strip() or ("" if address else angle[-1])
        else:
            token = next((t for t in re.split(r"[\s()]+", chunk) if "@" in t), "")
            address = _address(token)
            person = comment.group(1) if comment else ("" if address else chunk)
        person = _decode_words(person.strip().strip('"').strip("'").strip())
        if not address and not person:
            continue
        result.append((person, address))
    return result


def _split_addresses(value: str) -> list[str]:
    """Split an address list on commas and semicolons outside quotes, angle brackets and comments."""
    chunks, current, quoted, depth_angle, depth_paren = [], [], False, 0, 0
    escape = False
    for char in value:
        if escape:
            current.append(char)
            escape = False
            continue
        if char == "\\":
            escape = True
        elif char == '"':
            quoted = not quoted
        elif not quoted:
            if char == "<":
                depth_angle += 1
            elif char == ">":
                depth_angle = max(0, depth_angle - 1)
            elif char == "(":
                depth_paren += 1
            elif char == ")":
                depth_paren = max(0, depth_paren - 1)
            elif char in ",;" and not depth_angle and not depth_paren:
                chunks.append("".join(current))
                current = []
                continue
        current.append(char)
    chunks.append("".join(current))
    return chunks


def _decode_words(text: str) -> str:
    try:
        return _fix_text(str(_POLICY.header_factory("subject", text)))
    except Exception:  # keep the text as written
        return _fix_text(text)


def _address(value: str) -> str:
    """The address lower-cased, or '' when it is no address (`<>`, `$$$.$$$`, a phrase)."""
    address = value.strip().strip("<>").strip().strip('"').strip()
    if address.lower().startswith("mailto:"):
        address = address[7:]
    return address.lower() if _EMAIL_SHAPE.match(address) else ""


def _normalise_id(value: str) -> str | None:
    """A Message-ID as stored: no angle brackets or whitespace, domain part lower-cased (it is a domain,
    so case-insensitive; the local part is not)."""
    value = _fix_text(value).strip()
    if not value:
        return None
    found = _ANGLE_ID.search(value)
    candidate = found.group(1) if found else value.split()[0]
    candidate = re.sub(r"\s+", "", candidate).strip("<>")
    if not candidate:
        return None
    local, at, domain = candidate.rpartition("@")
    return f"{local}@{domain.lower()}" if at else candidate


def _ids(value: str) -> list[str]:
    """The Message-IDs in a References header, in order, without duplicates."""
    raw = _ANGLE_ID.findall(value) or [t for t in re.split(r"[\s,]+", value) if "@" in t]
    result: list[str] = []
    for item in raw:
        normal = _normalise_id(f"<{item}>")
        if normal and normal not in result:
            result.append(normal)
    return result


def _list_id(raw: str | None) -> str | None:
    if not raw:
        return None
    text = _fix_text(raw)
    found = _ANGLE_ID.search(text)
    value = (found.group(1) if found else text).strip().lower()
    return value or None


def _parse_date(raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        parsed = parsedate_to_datetime(raw)
    except Exception:  # hostile dates raise assorted errors; they lose only the date, not the message
        return None
    # RFC 5322 "-0000" (and a missing zone) means "zone unknown"; UTC is the least surprising reading.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _content_id(sender: str, date: str, subject: str, body: str) -> str:
    """The id of a message without a Message-ID: stable across re-imports of the same content."""
    text = "\x1f".join([sender, date, subject, body[:HASH_BODY_CHARS]])
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape"))
    return f"sha256:{digest.hexdigest()}"


def _looks_like_bounce(msg: Message, participants: list[Participant], subject: str) -> bool:
    if _raw(msg, "x-failed-recipients"):
        return True
    senders = [p.email.partition("@")[0] for p in participants if p.role == "from"]
    return any(s in _BOUNCE_SENDERS for s in senders) and bool(_BOUNCE_SUBJECT.search(subject))


# --- text --------------------------------------------------------------------------------------------------


def _codec_name(charset: str) -> str:
    name = charset.strip().strip('"').lower()
    return _CHARSET_ALIASES.get(name, name)


def _codec(charset: str | None) -> str | None:
    """Python's codec for a declared charset; None when absent or unknown."""
    if not charset:
        return None
    try:
        return codecs.lookup(_codec_name(charset)).name
    except LookupError:
        return None


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes to text; never fails.

    Text labelled ASCII or Latin-1 (or not labelled) is tried as UTF-8 first: valid UTF-8 is almost never
    anything else, and mislabelled UTF-8 is common. Other labels are trusted first, then UTF-8. What still
    does not decode is read with replacement characters rather than lost.
    """
    codec = _codec(charset)
    western = codec in (None, "ascii", "cp1252", "iso8859-1", "latin-1")
    for candidate in ("utf-8", codec) if western else (codec, "utf-8"):
        if candidate is None:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    try:
        return data.decode(_SINGLE_BYTE_FALLBACK if western or codec is None else codec, "replace")
    except LookupError:  # a codec that is not a text encoding ("base64" as a charset)
        return data.decode(_SINGLE_BYTE_FALLBACK, "replace")


def _fix_text(text: str) -> str:
    """Text with raw 8-bit bytes (which the parser keeps as lone surrogates) decoded as UTF-8 or
    Windows-1252, so it can be stored and shown; invisible formatting characters dropped."""
    if _SURROGATES.search(text):
        text = _SURROGATES.sub(
            lambda m: _decode_bytes(m.group().encode("utf-8", "surrogateescape"), None), text
        )
    text = text.encode("utf-8", "replace").decode("utf-8")
    return _INVISIBLE.sub("", text)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _tidy(text: str) -> str:
    """Plain text with line endings unified, trailing spaces gone, and runs of blank lines shortened."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _HTMLText(HTMLParser):
    """HTML to readable text: tags dropped, entities decoded, blocks on their own lines, no scripts or CSS."""

    _HIDDEN = frozenset({"script", "style", "head", "title", "noscript", "template", "svg", "xml"})
    _PARAGRAPHS = frozenset(
        {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "blockquote", "pre", "hr", "dl"}
    )
    """Blocks set off by a blank line, as a reader sees them."""
    _BLOCKS = frozenset(
        {
            "div", "tr", "dt", "dd", "section", "article", "header", "footer", "address", "center", "form",
            "fieldset", "figure", "figcaption", "nav", "main", "aside", "tbody", "thead", "tfoot", "caption",
        }
    )  # fmt: skip
    """Blocks that start a new line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            # A <head> (or <style>) left open must not hide the whole message.
            self._hidden = 0
        elif tag in self._HIDDEN:
            self._hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag in self._PARAGRAPHS:
            self.parts.append("\n\n")
        elif tag in self._BLOCKS:
            self.parts.append("\n")
        if tag == "pre":
            self._pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self._HIDDEN:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._PARAGRAPHS:
            self.parts.append("\n\n")
        elif tag in self._BLOCKS:
            self.parts.append("\n")
        if tag == "pre":
            self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        # Outside <pre>, HTML whitespace (newlines included) is one space; line breaks come from tags.
        self.parts.append(data if self._pre else re.sub(r"[ \t\r\n\f]+", " ", data))


def html_to_text(html: str) -> str:
    """Readable text of an HTML mail body."""
    parser = _HTMLText()
    try:
        parser.feed(html)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # html.parser rejects some broken markup; strip tags crudely then
        text = re.sub(r"<(script|style)\b.*?</\1\s*>", " ", html, flags=re.IGNORECASE | re.DOTALL)
        text = unescape(re.sub(r"<[^>]*>", " ", text))
    lines = [" ".join(line.split()) for line in text.replace("\xa0", " ").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- body and attachments ----------------------------------------------------------------------------------


@dataclass
class _Body:
    """What the walk over a message's parts found."""

    pieces: list[str] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)
    bounce: bool = False
    truncated: bool = False
    plain: bool = False
    html: bool = False

    def add(self, text: str, kind: str) -> None:
        if text.strip():
            self.pieces.append(text)
            self.plain |= kind == "plain"
            self.html |= kind == "html"

    def merge(self, other: _Body) -> None:
        self.pieces.extend(other.pieces)
        self.attachments.extend(other.attachments)
        self.truncated |= other.truncated
        self.bounce |= other.bounce
        self.plain |= other.plain
        self.html |= other.html

    def text(self) -> str:
        return "\n\n".join(self.pieces)


def _collect(part: Message, out: _Body, nested: bool, depth: int) -> None:
    """Add `part`'s readable text and attachment names to `out`. `nested` is True inside a forwarded
    message, whose delivery reports do not make this message a bounce."""
    if depth > 30:
        return  # a pathological nesting; what was found so far is enough
    try:
        _collect_part(part, out, nested, depth)
    except Exception:  # one unreadable part (bad encoding, odd header) loses only that part
        return


def _collect_part(part: Message, out: _Body, nested: bool, depth: int) -> None:
    ctype = part.get_content_type()
    maintype, subtype = ctype.split("/", 1) if "/" in ctype else (ctype, "")
    if ctype in _SIGNATURE_TYPES:
        return
    disposition = part.get_content_disposition()
    filename = _filename(part)
    payload = part.get_payload()

    if maintype == "message":
        if subtype == "delivery-status" and not nested:
            out.bounce = True
        inner = payload[0] if isinstance(payload, list) and payload else None
        if subtype in ("rfc822", "news", "global") and isinstance(inner, Message):
            if disposition == "attachment":
                subject = _one_line(_header_text(inner, "subject"))
                out.attachments.append(filename or f"{subject or 'message'}.eml")
                return
            _collect_forwarded(inner, out, depth)
        elif filename:
            out.attachments.append(filename)
        return

    if isinstance(payload, list):
        children = [p for p in payload if isinstance(p, Message)]
        if (
            subtype == "report"
            and not nested
            and str(part.get_param("report-type")).lower() == "delivery-status"
        ):
            out.bounce = True
        if subtype == "alternative":
            _collect_alternative(children, out, nested, depth)
        else:
            for child in children:
                _collect(child, out, nested, depth + 1)
        return

    if disposition == "attachment" or (maintype not in ("text", "multipart") and maintype):
        if filename:
            out.attachments.append(filename)
        return
    if maintype == "text" and subtype not in ("plain", "html", "enriched", "richtext", "x-aol"):
        # text/calendar, text/csv, text/rfc822-headers (in bounces) and the like: data, not prose.
        if filename:
            out.attachments.append(filename)
        return
    if maintype == "multipart" and isinstance(payload, str):
        rebuilt = _rebuild_multipart(ctype, payload)
        if rebuilt is not None:
            _collect(rebuilt, out, nested, depth + 1)
            return
    # text/plain, text/html, and a multipart whose parts cannot be found (the parser leaves it as text).
    text = _part_text(part)
    if len(text) > MAX_PART_CHARS:
        text = text[:MAX_PART_CHARS]
        out.truncated = True
    is_html = subtype == "html" or text.lstrip()[:14].lower().startswith(("<html", "<!doctype html"))
    if is_html:
        out.add(html_to_text(text), "html")
    else:
        out.add(_tidy(text), "plain")


def _rebuild_multipart(ctype: str, payload: str) -> Message | None:
    """A multipart whose declared boundary is missing or wrong (spam tools and broken gateways do both),
    parsed again with the boundary its body actually uses, so its text is read and not shown as MIME."""
    found = re.search(r"^--([^\s\"]{1,200})[ \t]*\r?$", payload, re.MULTILINE)
    if found is None:
        return None
    boundary = found.group(1).removesuffix("--")
    head = f'Content-Type: {ctype}; boundary="{boundary}"\n\n'
    msg = _parse(head.encode("ascii", "replace") + payload.encode("utf-8", "surrogateescape"))
    if msg is None or not isinstance(msg.get_payload(), list):
        return None
    return msg


def _collect_alternative(children: list[Message], out: _Body, nested: bool, depth: int) -> None:
    """The best of the alternatives: the first with plain text, else the first with any text."""
    found = []
    for child in children:
        sub = _Body()
        _collect(child, sub, nested, depth + 1)
        found.append(sub)
    chosen = next((b for b in found if b.plain), None) or next((b for b in found if b.pieces), None)
    if chosen is None and found:
        chosen = found[-1]
    if chosen is not None:
        out.merge(chosen)
    out.bounce |= any(b.bounce for b in found)


def _collect_forwarded(inner: Message, out: _Body, depth: int) -> None:
    """A forwarded (message/rfc822) message shown inline, under the lines a mail client would show."""
    header = ["---------- Forwarded message ----------"]
    for name, label in (("from", "From"), ("date", "Date"), ("subject", "Subject"), ("to", "To")):
        value = _one_line(_header_text(inner, name))
        if value:
            header.append(f"{label}: {value}")
    sub = _Body()
    _collect(inner, sub, nested=True, depth=depth + 1)
    out.add("\n".join(header), "")
    sub.bounce = False
    out.merge(sub)


def _part_text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        raw = part.get_payload()
        return _fix_text(raw) if isinstance(raw, str) else ""
    try:
        charset = part.get_content_charset()
    except Exception:  # an unparsable charset parameter: guess as for none
        charset = None
    return _fix_text(_decode_bytes(data, charset))


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:  # a malformed Content-Disposition loses only the name
        name = None
    if not name:
        return ""
    # Some clients put the whole path in the name; the file name is what a person recognises.
    name = _fix_text(_one_line(str(name)))
    return name.replace("\\", "/").rsplit("/", 1)[-1]


__all__ = [
    "html_to_text",
    "message_to_record",
    "parse_eml",
    "parse_emlx",
    "parse_maildir",
    "parse_mbox",
]
