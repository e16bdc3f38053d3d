"""A hybrid logical clock (Kulkarni et al., 2014): wall-clock milliseconds, a counter, and the device.

Values are totally ordered and encode to fixed-width strings that sort the same way, so SQL `ORDER BY hlc`
and `max(hlc)` agree with Python's comparison. The clock never goes backwards, even when the wall clock
does (NTP steps, a laptop waking with a wrong RTC): it keeps the larger time and bumps the counter.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_COUNTER_LIMIT = 16**6
_CANONICAL = re.compile(r"([0-9]{13})\.([0-9a-f]{6})\.([A-Za-z0-9_\-]{1,64})")


@dataclass(frozen=True, order=True, slots=True)
class Hlc:
    wall_ms: int
    counter: int
    device: str

    def encode(self) -> str:
        if not 0 <= self.wall_ms < 10**13:
            # Thirteen digits last until the year 2286; past that the text would stop sorting like the clock.
            raise ValueError(f"clock value out of range: {self.wall_ms} ms")
        return f"{self.wall_ms:013d}.{self.counter:06x}.{self.device}"

    @classmethod
    def decode(cls, text: str) -> Hlc:
        """Parse the canonical text form only: merge compares the text, so "10.0.a" must not pass for
        "0000000000010.000000.a", nor another script's digits for ASCII ones (they sort elsewhere)."""
        match = _CANONICAL.fullmatch(text)
        if match is None:
            raise ValueError(f"not a hybrid clock value: {text[:60]!r}")
        return cls(int(match[1]), int(match[2], 16), match[3])

    def __str__(self) -> str:
        return self.encode()


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class HybridClock:
    """Issues HLC values for one device. Thread-safe."""

    def __init__(self, device: str, last: Hlc | None = None, wall: Callable[[], int] = _wall_ms) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", device):
            raise ValueError("a device id is 1-64 letters, digits, '-' or '_'")
        self._device = device
        self._wall = wall
        self._last = last or Hlc(0, 0, device)
        self._lock = threading.Lock()

    @property
    def last(self) -> Hlc:
        return self._last

    def now(self) -> Hlc:
        """A value greater than every value this clock has issued or observed."""
        with self._lock:
            wall = self._wall()
            if wall > self._last.wall_ms:
                self._last = Hlc(wall, 0, self._device)
            else:
                self._last = self._bump(self._last.wall_ms, self._last.counter)
            return self._last

    def observe(self, remote: Hlc) -> None:
        """Fold in a value seen from another replica, so the next `now()` is later than it."""
        with self._lock:
            if (remote.wall_ms, remote.counter) > (self._last.wall_ms, self._last.counter):
                self._last = Hlc(remote.wall_ms, remote.counter, self._device)

    def _bump(self, wall_ms: int, counter: int) -> Hlc:
        if counter + 1 >= _COUNTER_LIMIT:
            # Sixteen million events in one millisecond: move to the next millisecond instead.
            return Hlc(wall_ms + 1, 0, self._device)
        return Hlc(wall_ms, counter + 1, self._device)
