"""People: telling who is who across sources, and how engaged the person is with each. Pure functions.

Matching is by normalised e-mail address first. A name alone matches only a name of at least two words
that belongs to exactly one person: "Dana" is not merged into "Dana Ruiz", because a first name alone is
too often someone else.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

RECENCY_HALF_LIFE_DAYS = 30.0
FREQUENCY_WINDOW_DAYS = 90.0


def normalise_email(address: str) -> str:
    """Lower-case, trimmed, without a mailto: prefix or angle brackets; '' when it is not an address."""
    value = address.strip().strip("<>").strip()
    if value.lower().startswith("mailto:"):
        value = value[7:]
    value = value.lower()
    local, at, domain = value.partition("@")
    return value if at and local and "." in domain and " " not in value else ""


def name_key(name: str) -> str:
    """A name folded for comparison: accents, case and spacing do not matter ("José  Ruiz" = "jose ruiz")."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().replace(",", " ").split())


def name_is_specific(key: str) -> bool:
    """Only a name of two words or more is matched across sources without an e-mail address."""
    return len(key.split()) >= 2


@dataclass(frozen=True)
class Engagement:
    score: float
    """0 to 1: recency, frequency and reciprocity together."""
    recency: float
    frequency: float
    reciprocity: float
    last_seen: datetime | None
    count: int


def engagement(
    times: Iterable[tuple[datetime | None, str]], now: datetime, *, outbound: frozenset[str]
) -> Engagement:
    """Score interactions given as (when, kind); kinds in `outbound` were started by the person using
    Aurora (mail they sent), the rest by the other person or shared (meetings count both ways).

    - recency: 1.0 for today, halving every 30 days since the last interaction;
    - frequency: interactions in the last 90 days, 0 to 1 on a log scale (about 20 reach 0.9);
    - reciprocity: how even the exchange is, 1.0 when as much goes out as comes in.
    """
    dated = list(times)
    count = len(dated)
    seen = [when for when, _ in dated if when is not None]
    last = max(seen) if seen else None
    recency = 0.0
    if last is not None:
        days = max(0.0, (now - last).total_seconds() / 86400)
        recency = 0.5 ** (days / RECENCY_HALF_LIFE_DAYS)
    recent = sum(1 for when in seen if (now - when).total_seconds() <= FREQUENCY_WINDOW_DAYS * 86400)
    frequency = min(1.0, math.log1p(recent) / math.log1p(25))
    out = sum(1 for _, kind in dated if kind in outbound)
    both_ways = sum(1 for _, kind in dated if kind in {"meeting", "transcript"})
    inbound = count - out - both_ways
    out += both_ways
    inbound += both_ways
    reciprocity = min(out, inbound) / max(out, inbound) if max(out, inbound) else 0.0
    score = 0.5 * recency + 0.3 * frequency + 0.2 * reciprocity
    return Engagement(
        round(score, 4), round(recency, 4), round(frequency, 4), round(reciprocity, 4), last, count
    )
