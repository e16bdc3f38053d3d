"""The text of a model's answer as Aurora keeps it, on the laptop and on the node alike: source markers a
small model echoes are dropped (`MarkerFilter` as it streams, `strip_markers` after), and a model that
starts repeating a line is noticed (`repeating`) and the repeats trimmed (`without_repeats`).

Pure: the node imports it as the laptop does.
"""

from __future__ import annotations

import re

REPEATS = 3
"""The same line this many times in a row: the model is looping (a small one does), so it is stopped."""


def repeating(text: str) -> bool:
    """Do the last REPEATS finished lines of `text` that hold words say the same thing? (Lines of
    punctuation, like a quoted mail's bare ">", do not count.)"""
    lines = [line.strip() for line in text.split("\n")[:-1] if sum(c.isalnum() for c in line) >= 3]
    return len(lines) >= REPEATS and len({*lines[-REPEATS:]}) == 1


def without_repeats(text: str) -> str:
    """`text` with each run of a repeated line kept once, blank runs at most one line, stripped."""
    kept: list[str] = []
    last = None
    for line in text.split("\n"):
        key = line.strip()
        if key and key == last:
            continue
        if not key and kept and not kept[-1].strip():
            continue
        kept.append(line)
        last = key or last
    return "\n".join(kept).strip()


class MarkerFilter:
    """Drops source markers ("<<<END SOURCE S2 ...>>>") from a streamed answer: a small model sometimes
    echoes the prompt's fences, boundary token and all, before (or instead of) answering. From "<<<" to
    ">>>" or the end of the line is left out; a "<" or "<<" is held back until the next character shows
    whether a marker begins."""

    def __init__(self) -> None:
        self._pending = ""
        self._dropping = False
        self._tail = ""

    def feed(self, text: str) -> str:
        out: list[str] = []
        for ch in text:
            if self._dropping:
                self._tail = (self._tail + ch)[-3:]
                if ch == "\n" or self._tail == ">>>":
                    self._dropping, self._tail = False, ""
                    if ch == "\n":
                        out.append(ch)
                continue
            if ch == "<":
                self._pending += ch
                if self._pending == "<<<":
                    self._dropping, self._pending = True, ""
                continue
            out.append(self._pending + ch)
            self._pending = ""
        return "".join(out)

    def flush(self) -> str:
        held, self._pending = self._pending, ""
        return "" if self._dropping else held


_MARKER = re.compile(r"<<<[^\n]*?(?:>>>|$)", re.MULTILINE)


def strip_markers(text: str) -> str:
    """`text` without the source markers ("<<<...>>>", or "<<<..." to the end of its line) in it."""
    return _MARKER.sub("", text)


def clean_answer(text: str) -> str:
    """A whole answer as it is kept: markers dropped, each run of a repeated line kept once, stripped."""
    return without_repeats(strip_markers(text))


__all__ = ["REPEATS", "MarkerFilter", "clean_answer", "repeating", "strip_markers", "without_repeats"]
