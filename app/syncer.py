"""Sync with the node: one round (`Syncer.sync_once`) and the background loop that runs rounds when they
are due (`LiveSync`).

A round pushes every pending operation in batches, oldest first, then pulls until the node has nothing
more. It never raises for a network or node problem: the `SyncReport` carries the error in words, the
store's sync status keeps it, and nothing is lost: an operation leaves the push queue only once the node
has answered for it, and pulled operations and the pull cursor commit together (`SqliteActionLog`).

Push rules. The node answers for each operation of a batch: accepted (stored now or before, so a retried
batch is harmless), or refused with a code. Refused for good (`invalid_operation`, `op_too_large`: the
operation itself is bad; `wrong_device`: it was made on another paired device, imported here from an
export, and that device pushes it itself) leaves the queue and is recorded in the status: retrying would be
refused again, forever, and would hold back everything after it. `clock_ahead` is not for good: it is
accepted once the node's clock has caught up, so the push stops there, the operations stay queued, and the
error says why.
A batch the node refuses as too large is halved until it fits; a single operation refused so is refused
for good.

LiveSync. A thread that keeps the WebSocket to the node open and runs a round on each announcement (and
when `nudge()` says a local change is waiting). When the socket cannot be opened or drops, it polls instead:
a round, then a wait drawn with exponential backoff and full jitter (base 1 s, cap 60 s, so a fleet of
laptops does not hammer a node that just came back), then another try at the socket. Errors that retrying
cannot fix (this laptop revoked, a different node at the address) stop the loop; the status says why.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from websockets.exceptions import ConnectionClosed

from aurora.app.errors import AuroraError
from aurora.app.node_client import (
    NodeBusyError,
    NodeClient,
    NodeError,
    NodeProtocolError,
    NodeUnreachableError,
    RequestTooLargeError,
)
from aurora.app.sync_log import PendingOp, SqliteActionLog
from aurora.sync.protocol import MAX_BATCH, Announce, PushResponse, Rejected

logger = logging.getLogger(__name__)

_REFUSED_FOR_GOOD = ("invalid_operation", "op_too_large", "wrong_device")
"""Refusals about the operation itself: sending it again can only be refused again. `clock_ahead` is about
a clock and can be fixed, so those operations wait."""

PUSH_DEPTH = 2
"""Push batches in flight at once (see `Syncer._push`)."""
PUSH_BATCH = 1000
"""Operations in a full push batch (the protocol takes up to `MAX_BATCH`). Half the protocol's most: a
pushing laptop's total time is the same (0.65 s for 10,000 either way, tests/bench sync), but a live
laptop receiving them sees each batch announced sooner, and the last one drains sooner (end to end
0.95 -> 0.91 s, medians of 4)."""
FIRST_BATCH = 500
"""Operations in a round's first push batch and first pull page: the pipeline (this laptop reads, the node
checks, PostgreSQL stores; or the node reads, this laptop checks, SQLite stores) fills in a quarter of the
time a full batch takes (pushing 10,000 operations took 0.78 s instead of 0.85 s, tests/bench sync)."""

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0


def backoff_delay(
    attempt: int,
    *,
    base: float = BACKOFF_BASE_S,
    cap: float = BACKOFF_CAP_S,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number `attempt` (0 first): uniform in [0, min(cap, base * 2**attempt)]
    ("full jitter"). Jitter spreads laptops that lost the node at the same moment; the cap keeps a long
    outage from turning into hours of silence once the node is back."""
    ceiling = cap if attempt >= 64 else min(cap, base * 2.0**attempt)
    return max(0.0, min(ceiling, rand() * ceiling))


@dataclass(frozen=True)
class SyncReport:
    """What one round did."""

    pushed: int = 0
    """Operations the node acknowledged."""
    refused: int = 0
    """Operations the node refused for good (they stay here; the status keeps why)."""
    pulled: int = 0
    """Operations received from the node."""
    applied: int = 0
    """Of those, the ones new to this laptop."""
    errors: tuple[str, ...] = ()
    """What went wrong, in words; empty when the round finished."""
    summary: str | None = None
    """The few words for a status bar ("node unreachable"), when something went wrong."""
    needs_pairing: bool = False
    """Retrying cannot help: pair again (revoked, tokens refused, a different node)."""
    reached_node: bool = False
    """The node answered at least once during the round."""

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Tally:
    pushed: int = 0
    pulled: int = 0
    applied: int = 0
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    summary: str | None = None
    needs_pairing: bool = False
    reached_node: bool = False

    def fail(self, exc: AuroraError) -> None:
        self.errors.append(str(exc))
        if self.summary is None:
            self.summary = exc.summary if isinstance(exc, NodeError) else "sync failed"
        if isinstance(exc, NodeError) and exc.needs_pairing:
            self.needs_pairing = True


class Syncer:
    """Runs sync rounds between the laptop's log and its node. One round at a time (a lock), so the
    background loop and a "sync now" from the UI never interleave."""

    def __init__(self, log: SqliteActionLog, client: NodeClient) -> None:
        self.log = log
        self.client = client
        self._lock = threading.Lock()

    def sync_once(self) -> SyncReport:
        """Push everything pending, then pull everything new. Blocks for the network round trips."""
        with self._lock:
            tally = _Tally()
            stop = self._guarded(tally, self._push)
            if not stop:
                self._guarded(tally, self._pull)
            error = "; ".join(tally.errors) if tally.errors else None
            try:
                self.log.record_sync(error, tally.refused)
            except AuroraError as exc:  # a full disk must not turn a finished round into a crash
                tally.errors.append(str(exc))
            return SyncReport(
                pushed=tally.pushed,
                refused=len(tally.refused),
                pulled=tally.pulled,
                applied=tally.applied,
                errors=tuple(tally.errors),
                summary=tally.summary,
                needs_pairing=tally.needs_pairing,
                reached_node=tally.reached_node,
            )

    @staticmethod
    def _guarded(tally: _Tally, step: Callable[[_Tally], None]) -> bool:
        """Run one half of a round; True if the other half is pointless now (node gone, pairing lost)."""
        try:
            step(tally)
        except AuroraError as exc:
            tally.fail(exc)
            return isinstance(exc, NodeUnreachableError | NodeBusyError) or tally.needs_pairing
        return False

    def _push(self, tally: _Tally) -> None:
        """Push every pending operation, in batches, oldest first.

        Two batches are in flight at once (on worker threads): the node checks one while PostgreSQL
        stores the other, and this laptop reads the next meanwhile. Answers are settled strictly in
        order, so the push cursor moves exactly as it would one batch at a time; a failure drops the
        batches after it unsettled (the node keeps each operation once, so sending them again is
        harmless)."""
        limit = PUSH_BATCH
        in_flight: deque[tuple[list[PendingOp], Future[PushResponse]]] = deque()
        with ThreadPoolExecutor(max_workers=PUSH_DEPTH, thread_name_prefix="aurora-push") as sender:

            def drop_in_flight() -> None:
                for _, later in in_flight:
                    with contextlib.suppress(Exception):
                        later.result()
                in_flight.clear()

            try:
                while True:
                    queued = sum(len(b) for b, _ in in_flight)
                    while len(in_flight) < PUSH_DEPTH:
                        after = in_flight[-1][0][-1].seq if in_flight else 0
                        # The first batch is small, so the node starts checking and storing sooner.
                        first = not in_flight and tally.pushed == 0
                        batch = self.log.unpushed_wire(min(limit, FIRST_BATCH) if first else limit, after)
                        if not batch:
                            break
                        queued += len(batch)
                        wire = [op.wire for op in batch]
                        in_flight.append(
                            (batch, sender.submit(self.client.push_wire, wire, self.log.pending() - queued))
                        )
                    if not in_flight:
                        return
                    batch, sent = in_flight.popleft()
                    try:
                        answer = sent.result()
                    except RequestTooLargeError as exc:
                        drop_in_flight()
                        if limit > 1:
                            limit = max(1, len(batch) // 2)
                            continue
                        tally.refused.append(f"operation {batch[0].op_id} refused by the node: {exc}")
                        self.log.mark_pushed(batch[0].seq)
                        continue
                    tally.reached_node = True
                    through, held_back = self._settle(batch, answer, tally)
                    if through is not None:
                        self.log.mark_pushed(through)
                    if held_back is not None:
                        raise held_back
            finally:
                drop_in_flight()

    def _settle(
        self, batch: list[PendingOp], answer: PushResponse, tally: _Tally
    ) -> tuple[int | None, AuroraError | None]:
        """How far the push cursor may move after this answer, and why it stops short (if it does)."""
        accepted = set(answer.accepted)
        rejected: dict[int, Rejected] = {}
        for refusal in answer.rejected:
            i = refusal.index
            if i >= len(batch) or (refusal.op_id is not None and refusal.op_id != batch[i].op_id):
                return None, NodeProtocolError(
                    f"the node at {self.client.url} refused an operation it was not sent; check that it "
                    "runs the same Aurora version as this laptop (nothing was lost)"
                )
            rejected[i] = refusal
        through: int | None = None
        for i, (seq, op_id, _) in enumerate(batch):
            r = rejected.get(i)
            if op_id in accepted:
                tally.pushed += 1
            elif r is not None and r.code in _REFUSED_FOR_GOOD:
                tally.refused.append(f"operation {op_id} refused by the node ({r.code}: {r.message})")
            elif r is not None and r.code == "clock_ahead":
                return through, NodeError(
                    f"the node at {self.client.url} refuses changes stamped ahead of its clock "
                    f"({r.message}); check this laptop's clock: they stay queued and are sent again"
                )
            elif r is not None:
                return through, NodeError(
                    f"the node at {self.client.url} refuses this laptop's changes as another device's "
                    f"({r.message}); they stay queued: pair this workspace again or report this"
                )
            else:
                return through, NodeProtocolError(
                    f"the node at {self.client.url} did not answer for every operation sent; check that it "
                    "runs the same Aurora version as this laptop (the rest are sent again)"
                )
            through = seq
        return through, None

    def _pull(self, tally: _Tally) -> None:
        """Pull pages until the node has nothing more, applying each in order.

        The next page is asked for (on a worker thread) while this one is applied: its cursor is known
        once the page is read, and the node builds a page while this laptop writes one. The log's cursor
        still moves only with the page applied, in order; a failure drops the page fetched ahead."""
        restarted = False
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aurora-pull") as fetcher:
            cursor = self.log.pull_cursor()
            page = self.client.pull(cursor, min(MAX_BATCH, FIRST_BATCH))  # small: applying starts sooner
            while True:
                tally.reached_node = True
                if page.head < cursor and not restarted:
                    # The node's log is shorter than what this laptop already pulled from it: it was
                    # restored from an older backup. Send it everything again and read it from the start.
                    restarted = True
                    self.log.reset_cursors()
                    self._push(tally)
                    cursor = self.log.pull_cursor()
                    page = self.client.pull(cursor, MAX_BATCH)
                    continue
                ahead = (
                    fetcher.submit(self.client.pull, page.cursor, MAX_BATCH)
                    if page.more and page.cursor > cursor
                    else None
                )
                try:
                    tally.pulled += page.count
                    tally.applied += self.log.apply_pulled(page.checked or page.ops, page.cursor)
                except BaseException:
                    if ahead is not None:
                        ahead.cancel()
                        with contextlib.suppress(Exception):
                            ahead.result()
                    raise
                if not page.more:
                    return
                if ahead is None:
                    raise NodeProtocolError(
                        f"the node at {self.client.url} said more operations follow but did not move the "
                        "cursor; check that it runs the same Aurora version as this laptop"
                    )
                cursor = self.log.pull_cursor()
                page = ahead.result()


# --- the background loop ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveStatus:
    """What the status bar shows about sync."""

    online: bool
    """The last round reached the node (or the live channel is open)."""
    live: bool
    """The WebSocket is open: changes elsewhere arrive within a second."""
    pending: int
    last_sync: datetime | None
    last_error: str | None
    summary: str | None
    """The few words for the last problem ("node unreachable"), None when there is none."""
    stopped: bool = False
    """The loop gave up (a problem retrying cannot fix; see `last_error`)."""

    def describe(self) -> str:
        waiting = f"{self.pending} change{'s' if self.pending != 1 else ''} waiting"
        if self.online and not self.last_error:
            return f"synced, {waiting}" if self.pending else "synced"
        problem = self.summary or ("offline" if not self.online else "sync failed")
        return f"{problem}, {waiting}" if self.pending else problem


class LiveSync:
    """Keeps one workspace in sync in the background. `start()` once, `nudge()` after local changes,
    `status()` whenever, `stop()` at exit; none of them waits for the network."""

    def __init__(
        self,
        syncer: Syncer,
        *,
        base: float = BACKOFF_BASE_S,
        cap: float = BACKOFF_CAP_S,
        rand: Callable[[], float] = random.random,
        on_report: Callable[[SyncReport], None] | None = None,
        recv_tick: float = 0.5,
    ) -> None:
        self._syncer = syncer
        self._base = base
        self._cap = cap
        self._rand = rand
        self._on_report = on_report
        self._recv_tick = recv_tick
        """How often the listening thread looks up from the socket for a nudge or a stop."""
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._online = False
        self._live = False
        self._gave_up = False
        self._summary: str | None = None
        self.rounds = 0
        """Rounds run so far (tests and diagnostics)."""

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="aurora-sync", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """A local change is waiting: run a round soon (at once when idle, after the current one if busy)."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """End the loop and wait for it at most `timeout` seconds. The thread notices within `recv_tick`
        when listening and at once when waiting; a round in flight first finishes its current request
        (bounded by the client's timeouts). The socket is closed by the thread itself: closing it here
        would wait for the node's closing handshake on the caller's thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> LiveStatus:
        """A snapshot for the status bar: two small reads of the store, no network."""
        persisted = self._syncer.log.sync_status()
        return LiveStatus(
            online=self._online or self._live,
            live=self._live,
            pending=self._syncer.log.pending(),
            last_sync=persisted.last_sync,
            last_error=persisted.last_error,
            summary=self._summary if persisted.last_error else None,
            stopped=self._gave_up,
        )

    # --- the thread ---------------------------------------------------------------------------------

    def _done(self) -> bool:
        return self._stopping.is_set() or self._gave_up

    def _run(self) -> None:
        attempt = 0
        while not self._done():
            try:
                opened = self._listen()
            except Exception as exc:  # a bug or a store error must not kill the loop: report, back off
                logger.debug("live sync: unexpected error", exc_info=True)
                self._problem(str(exc) if isinstance(exc, AuroraError) else None)
                opened = False
            if self._done():
                break
            if opened:
                attempt = 0  # the socket was up: a drop starts the backoff over
            else:
                self._round()  # no socket: poll
                if self._done():
                    break
            delay = backoff_delay(attempt, base=self._base, cap=self._cap, rand=self._rand)
            attempt += 1
            if self._wake.wait(delay):
                self._wake.clear()

    def _problem(self, error: str | None, summary: str = "sync failed") -> None:
        self._summary = summary
        if error is not None:
            with contextlib.suppress(AuroraError):  # the store itself may be what failed
                self._syncer.log.record_sync(error)

    def _round(self) -> None:
        try:
            report = self._syncer.sync_once()
        except Exception as exc:  # the loop must outlive a bug: report it and keep the laptop usable
            logger.debug("sync round: unexpected error", exc_info=True)
            report = SyncReport(
                errors=(f"sync failed unexpectedly: {type(exc).__name__}",), summary="sync failed"
            )
            self._problem(report.errors[0])
        self.rounds += 1
        self._online = report.reached_node
        self._summary = report.summary
        if report.needs_pairing:
            self._gave_up = True
        if self._on_report is not None:
            self._on_report(report)

    def _listen(self) -> bool:
        """Open the socket and serve it until it drops; False if it could not be opened at all."""
        try:
            ws = self._syncer.client.open_events()
        except NodeError as exc:
            if exc.needs_pairing:
                self._online = False
                self._gave_up = True
                self._problem(str(exc), exc.summary)
            return False
        except AuroraError as exc:  # the credentials could not be read or saved
            self._problem(str(exc))
            return False
        self._live = True
        try:
            with ws:
                self._round()  # catch up on what happened while the socket was down
                while not self._done():
                    if self._wake.is_set():
                        self._wake.clear()
                        self._round()
                        continue
                    try:
                        message = ws.recv(timeout=self._recv_tick)
                    except TimeoutError:
                        continue
                    head = _announced_head(message)
                    if head is not None and head > self._syncer.log.pull_cursor():
                        self._round()
        except (ConnectionClosed, OSError):
            pass  # the socket dropped: poll until it can be opened again
        finally:
            self._live = False
        return True


def _announced_head(message: str | bytes) -> int | None:
    """The head an `Announce` names; None for any other message (health, job results: later kinds)."""
    try:
        data = json.loads(message)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("type") != "head":
        return None
    try:
        return Announce.model_validate(data).head
    except ValueError:
        return None
