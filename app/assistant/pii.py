"""The PII policy for outbound text (a mail, a message, a CRM note written for a third party).

`pii_check(text, allowed=..., sources=...)` finds e-mail addresses, phone numbers, IBANs (mod-97 valid)
and payment-card numbers (Luhn valid) and replaces each with a placeholder ("[email removed]"), except the
addresses in `allowed` (the recipients: writing to someone may name them). Each finding says which of the
prompt's sources held the same value ("seen in S2"): personal data copied out of other items is what this
policy is for. The redacted text is what the person is shown to confirm; nothing here sends anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from aurora.app.assistant.sources import Source

PiiKind = Literal["email", "phone", "iban", "card"]

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().\-/]{6,20}\d(?![\w])")
_DATE_LIKE = re.compile(r"^\d{1,4}[-./]\d{1,2}[-./]\d{1,4}$")
_PLACEHOLDER = {"email": "[email removed]", "phone": "[phone removed]", "iban": "[IBAN removed]",
                "card": "[card number removed]"}  # fmt: skip


@dataclass(frozen=True)
class PiiFinding:
    kind: PiiKind
    masked: str
    """The value with all but its last few characters hidden: "***@example.com", "*** 4242"."""
    seen_in: tuple[str, ...] = ()
    """Ids of the prompt's sources that hold the same value."""

    def describe(self) -> str:
        where = f" (from {', '.join(self.seen_in)})" if self.seen_in else ""
        return f"{self.kind} {self.masked}{where}"


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def _luhn(number: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(number)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(value: str) -> bool:
    compact = value.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def _mask(kind: PiiKind, value: str) -> str:
    if kind == "email":
        return "***@" + value.rsplit("@", 1)[1]
    digits = _digits(value) if kind != "iban" else value.replace(" ", "")
    return f"*** {digits[-4:]}"


def _key(kind: PiiKind, value: str) -> str:
    return (
        value.lower()
        if kind == "email"
        else (value.replace(" ", "").upper() if kind == "iban" else _digits(value))
    )


def _seen_in(kind: PiiKind, value: str, sources: Sequence[Source]) -> tuple[str, ...]:
    key = _key(kind, value)
    out = []
    for s in sources:
        text = f"{s.title}\n{s.text}"
        hay = (
            text.lower()
            if kind == "email"
            else (text.replace(" ", "").upper() if kind == "iban" else _digits(text))
        )
        if key and key in hay:
            out.append(s.id)
    return tuple(out)


def _candidates(text: str) -> list[tuple[int, int, PiiKind, str]]:
    spans: list[tuple[int, int, PiiKind, str]] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in taken)

    checks: list[tuple[PiiKind, re.Pattern[str]]] = [
        ("iban", _IBAN), ("email", _EMAIL), ("card", _CARD), ("phone", _PHONE)
    ]  # fmt: skip
    for kind, pattern in checks:
        for m in pattern.finditer(text):
            value = m.group()
            if kind == "iban" and not _iban_ok(value):
                continue
            if kind == "card" and not _luhn(_digits(value)):
                continue
            if kind == "phone":
                n = len(_digits(value))
                if not 8 <= n <= 15 or _DATE_LIKE.match(value.strip("()")):
                    continue
            if free(*m.span()):
                spans.append((m.start(), m.end(), kind, value))
                taken.append(m.span())
    return sorted(spans)


def pii_check(
    text: str, *, allowed: Iterable[str] = (), sources: Sequence[Source] = ()
) -> tuple[str, list[PiiFinding]]:
    """`text` with personal data replaced by placeholders, and what was replaced."""
    keep = {a.strip().lower() for a in allowed}
    out: list[str] = []
    findings: list[PiiFinding] = []
    at = 0
    for start, end, kind, value in _candidates(text):
        if kind == "email" and value.lower() in keep:
            continue
        out.append(text[at:start])
        out.append(_PLACEHOLDER[kind])
        at = end
        findings.append(PiiFinding(kind, _mask(kind, value), _seen_in(kind, value, sources)))
    out.append(text[at:])
    return "".join(out), findings
