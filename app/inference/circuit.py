"""`Circuit`: a `pybreaker.CircuitBreaker` driven by hand, for calls that are async.

pybreaker wraps synchronous calls (its `call_async` needs tornado), and an answer streamed over seconds is
not one call anyway. So the router asks first (`allows`), then reports what happened (`record_success`,
`record_failure`), and the breaker's state machine does the rest: after `fail_max` failures in a row the
circuit opens and the backend is skipped at once, without a connection attempt; `reset_timeout` seconds
later one request is let through (half-open), and its outcome closes or reopens the circuit.

Outcomes are fed to the breaker through its public `call`, with a function that fails or succeeds, so
its counters, listeners and storage behave as the library intends. The moment the circuit opened is
taken from a listener on a monotonic clock, so `allows` needs nothing private.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import pybreaker

CircuitState = Literal["closed", "open", "half-open"]


class _Failed(Exception):
    """What the breaker is told a failed call raised (the real error stays untouched with its caller)."""


def _fail() -> None:
    raise _Failed


def _succeed() -> None:
    return None


class _OpenedAt(pybreaker.CircuitBreakerListener):
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.at: float | None = None

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        if new_state.name == pybreaker.STATE_OPEN:
            self.at = self.clock()


class Circuit:
    def __init__(
        self,
        name: str,
        *,
        fail_max: int = 3,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._opened = _OpenedAt(clock)
        self._reset_timeout = reset_timeout
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            name=name,
            listeners=[self._opened],
            throw_new_error_on_trip=False,
        )

    @property
    def state(self) -> CircuitState:
        state = self.breaker.current_state
        if state == pybreaker.STATE_OPEN:
            return "open"
        return "half-open" if state == pybreaker.STATE_HALF_OPEN else "closed"

    def retry_in(self) -> float:
        """Seconds until an open circuit lets a trial request through (0 when not open)."""
        if self.state != "open" or self._opened.at is None:
            return 0.0
        return max(0.0, self._opened.at + self._reset_timeout - self._clock())

    def allows(self) -> bool:
        """May a request go to this backend now? An open circuit whose time is up turns half-open."""
        if self.state != "open":
            return True
        if self.retry_in() > 0:
            return False
        self.breaker.half_open()
        return True

    def record_success(self) -> None:
        try:
            self.breaker.call(_succeed)
        except pybreaker.CircuitBreakerError:
            pass  # opened meanwhile by another request's failure: that one's verdict stands

    def record_failure(self) -> None:
        try:
            self.breaker.call(_fail)
        except (_Failed, pybreaker.CircuitBreakerError):
            pass
