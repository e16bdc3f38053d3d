"""The gatekeeper: text that other people wrote is data, never instructions (DESIGN.md section 5).

Three defences, none of which trusts the model to behave:

1. **Fencing** (`fence`). Every retrieved text enters the prompt inside a labelled block whose end marker
   carries a boundary token drawn at random for each prompt (64 bits, `new_boundary`). The content cannot
   end the block early: the boundary never appears in it (any occurrence is removed), `<<<` and `>>>` are
   replaced by look-alike guillemets so no marker can be forged, and invisible characters (zero-width,
   bidirectional controls, Unicode tags) are dropped. The title is cut to one line.
2. **Scanning** (`scan`, in `injection.py`): known injection patterns are flagged. A flagged source is
   never trusted, and the UI can show why.
3. **Review** (`review`): the model proposes, the person disposes. Nothing the assistant proposes is ever
   carried out here. Each `ProposedAction` comes back as a `PendingAction`:
   - `suggested`: a task or note, proposed while every source in the prompt was the person's own (their
     tasks and notes, unflagged) and with nothing suspicious in its own text. The UI offers it behind one
     key; it is still never created silently.
   - `needs_confirmation`: everything else: any action proposed while untrusted content (mail, chat,
     transcripts, events, people, the web, or anything flagged) was in the prompt, and every action
     that is not a task or a note (send, forward, delete, update, write to a CRM, fetch a URL), whatever
     the sources. The reasons say why, in words.
   Outbound text (mail, messages, CRM notes) also passes the PII policy (`pii.py`): e-mail addresses other
   than the recipients', phone numbers, IBANs and card numbers are replaced by placeholders, and each is
   listed with the sources it came from.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aurora.app.assistant.injection import INVISIBLE, Finding, scan, scan_joined
from aurora.app.assistant.pii import PiiFinding, pii_check
from aurora.app.assistant.sources import Source

__all__ = [
    "AUTO_KINDS",
    "OUTBOUND_KINDS",
    "ActionKind",
    "Finding",
    "PendingAction",
    "PiiFinding",
    "ProposedAction",
    "fence",
    "neutralise",
    "new_boundary",
    "pii_check",
    "review",
    "scan",
    "scan_joined",
]

FENCE_OPEN = "<<<SOURCE"
FENCE_CLOSE = "<<<END SOURCE"
MAX_TITLE_CHARS = 200

ActionKind = Literal[
    "create_task", "create_note", "send_email", "send_message", "forward", "delete", "update", "write_crm",
    "web_request",
]  # fmt: skip
AUTO_KINDS: frozenset[str] = frozenset({"create_task", "create_note"})
"""The only kinds that may be offered behind one key (and only with no untrusted content in the prompt)."""
OUTBOUND_KINDS: frozenset[str] = frozenset(
    {"send_email", "send_message", "forward", "write_crm", "web_request"}
)
"""Kinds whose text leaves the workspace for a third party: they pass the PII policy."""


def new_boundary() -> str:
    """A fresh boundary token for one prompt: 16 hex digits, never guessable by a sender."""
    return secrets.token_hex(8)


def neutralise(text: str, boundary: str) -> str:
    """`text` made safe to put inside a fence: no boundary, no marker, no invisible characters."""
    clean = INVISIBLE.sub("", text)
    if boundary:
        clean = re.sub(re.escape(boundary), "[removed]", clean, flags=re.IGNORECASE)
    return clean.replace("<<<", "\u2039\u2039\u2039").replace(">>>", "\u203a\u203a\u203a")


def _field(value: str) -> str:
    return re.sub(r"[^\w@.:\-]", "_", value)[:80]


def fence(
    kind: str, source_id: str, title: str, text: str, *, boundary: str | None = None, when: str | None = None
) -> str:
    """`text` as a labelled data block the content cannot break out of. One `boundary` (`new_boundary`)
    serves every block of a prompt; None draws a fresh one."""
    token = boundary or new_boundary()
    head = neutralise(" ".join(title.split()), token)[:MAX_TITLE_CHARS]
    lines = [f"{FENCE_OPEN} {_field(source_id)} kind={_field(kind)} boundary={token}>>>"]
    lines.append(f"Title: {head or '(untitled)'}")
    if when:
        lines.append(f"When: {_field(when)}")
    lines.append(neutralise(text, token).strip())
    lines.append(f"{FENCE_CLOSE} {_field(source_id)} {token}>>>")
    return "\n".join(lines)


class ProposedAction(BaseModel):
    """Something the assistant suggests doing. Only a proposal: carrying it out is the UI's job, after
    the person says so."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ActionKind
    title: str = Field(default="", max_length=500)
    body: str = Field(default="", max_length=20_000)
    to: tuple[str, ...] = Field(default=(), max_length=50)
    """Recipients (outbound kinds)."""
    target: str | None = Field(default=None, max_length=200)
    """The entity acted on (delete, update)."""


Status = Literal["suggested", "needs_confirmation"]


@dataclass(frozen=True)
class PendingAction:
    action: ProposedAction
    status: Status
    reasons: tuple[str, ...] = ()
    """Why it needs confirmation, in words; empty for a suggestion."""
    findings: tuple[Finding, ...] = ()
    """Injection patterns in the action's own text."""
    pii: tuple[PiiFinding, ...] = ()
    outbound: str | None = None
    """For outbound kinds: the text as it would leave, personal data redacted."""

    @property
    def needs_confirmation(self) -> bool:
        return self.status == "needs_confirmation"


def _ids(sources: Iterable[Source]) -> str:
    return ", ".join(s.id for s in sources)


def review(actions: Sequence[ProposedAction], sources: Sequence[Source]) -> list[PendingAction]:
    """What each proposed action needs before it may happen; see the module docstring. Pure."""
    untrusted = [s for s in sources if not s.trusted]
    joined = scan_joined(s.text for s in sources)
    out: list[PendingAction] = []
    for action in actions:
        reasons: list[str] = []
        if action.kind not in AUTO_KINDS:
            reasons.append(f"{action.kind.replace('_', ' ')} acts beyond your own tasks and notes")
        if untrusted:
            reasons.append(f"proposed while text from others was in the prompt ({_ids(untrusted)})")
        if joined:
            reasons.append("the sources together hold an injection pattern")
        findings = tuple(scan(f"{action.title}\n{action.body}"))
        if findings:
            reasons.append("its text looks like an injection (" + ", ".join(f.rule for f in findings) + ")")
        pii: tuple[PiiFinding, ...] = ()
        outbound: str | None = None
        if action.kind in OUTBOUND_KINDS:
            outbound, found = pii_check(
                f"{action.title}\n{action.body}".strip(), allowed=action.to, sources=sources
            )
            pii = tuple(found)
            if pii:
                reasons.append("personal data removed: " + "; ".join(p.describe() for p in pii))
        status: Status = "needs_confirmation" if reasons else "suggested"
        out.append(PendingAction(action, status, tuple(reasons), findings, pii, outbound))
    return out
