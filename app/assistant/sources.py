"""`Source`: one retrieved item as the assistant shows it to the model and cites it to the person."""

from __future__ import annotations

from dataclasses import dataclass

UNTRUSTED_KINDS = frozenset({"mail", "event", "message", "transcript", "item", "web"})
"""Kinds whose text other people wrote (mail, chat, meetings, invitations, the web): data, never
instructions, and any action proposed while one is in the prompt waits for the person's confirmation."""


@dataclass(frozen=True)
class Source:
    id: str
    """"S1", "S2"...: what the prompt labels it and the answer cites."""
    kind: str
    """task, note, person, or an item's kind: mail, event, message, transcript (item when unknown)."""
    entity_id: str
    title: str
    when: str | None
    """ISO-8601 (UTC) when it happened or was made; None for a person."""
    text: str
    """The excerpt the model reads, at most `retrieval.EXCERPT_CHARS` characters."""
    origin: str | None = None
    """Where it came from: the import format ("mbox", "slack"), a task's source ("manual"), or None."""
    flagged: tuple[str, ...] = ()
    """The gatekeeper's findings in its text (rule names): a flagged source is never trusted."""

    @property
    def trusted(self) -> bool:
        """The person's own words: a task or note they wrote here, with nothing suspicious in it. Anything
        imported or made from imported text (a task "Follow up: ..." made from a mail) is not."""
        if self.flagged or self.kind in UNTRUSTED_KINDS:
            return False
        if self.kind == "note":
            return True
        return self.kind == "task" and (self.origin or "manual") in {"manual", "quickadd", "cli"}

    @property
    def label(self) -> str:
        day = (self.when or "")[:10]
        return " ".join(x for x in (f"[{self.id}]", self.kind, day, self.title or "(untitled)") if x)
