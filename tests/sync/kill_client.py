"""A laptop, as a process for the kill tests (`tests/sync/test_kill.py`): open a workspace file, make some
local changes if asked, then sync until nothing is pending and the pull is complete.

    python tests/sync/kill_client.py WORKSPACE [--changes N] [--seed S] [--deadline SECONDS] [--wait]
                                    [--pause-before-save]

The workspace must be paired already, its credentials in the encrypted file beside it
(`AURORA_CREDENTIALS_KEY` set). Progress goes to stdout, one marker a line, flushed as it happens, so a
harness can SIGKILL this process at a chosen point:

    loaded                        (with --wait) imports done; waiting for `go CHANGES SEED` on stdin
    ready                         store open, client built
    committed OP_ID...            a local transaction committed (these operations are on disk)
    push N / pushed N             a batch of N sent / the node's answer received (not yet recorded)
    acked SEQ                     the push cursor moved: everything made here up to local SEQ is on the node
    pull AFTER / pulled N         a pull sent / a page of N operations received
    applied CURSOR                that page applied and the pull cursor moved to CURSOR, in one transaction
    saving-tokens                 (with --pause-before-save) refreshed tokens in hand, not yet saved; the
                                  process waits for a line on stdin, so a harness can kill it right there
    retry WHY                     a round failed (node down); another follows shortly
    unpaired WHY                  the node no longer takes this laptop's tokens: exit status 5
    refused WHAT                  the node refused an operation for good (the harness fails on this)
    done PENDING                  finished: exit status 0

It imports only what a sync needs (the store, the sync log, the client, the credentials), so it starts in
about 0.3 s. With `--wait` it loads and then waits for its orders (`go CHANGES SEED` on stdin; end of input
means exit at once), so a harness can start the next run while the current one works and hide even that.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aurora.app.credentials import CredentialsStore, NodeCredentials, credentials_for
from aurora.app.node_client import NodeClient, PulledPage
from aurora.app.store import Store
from aurora.app.sync_log import SqliteActionLog
from aurora.app.syncer import Syncer
from aurora.sync import Operation, new_id
from aurora.sync.batch import CheckedPage
from aurora.sync.protocol import MAX_BATCH, PushResponse

RETRY_PAUSE_S = 0.05
"""Between failed rounds: the harness restarts a killed node within about a second."""


def say(*words: object) -> None:
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


class MarkedLog(SqliteActionLog):
    """The laptop's sync log, saying when the push cursor and the pull cursor have moved."""

    def mark_pushed(self, through_seq: int) -> None:
        super().mark_pushed(through_seq)
        say("acked", through_seq)

    def apply_pulled(self, ops: Sequence[Operation] | CheckedPage, cursor: int) -> int:
        applied = super().apply_pulled(ops, cursor)
        say("applied", cursor)
        return applied


class MarkedClient(NodeClient):
    """The node client, saying when a request leaves and when its answer is in."""

    def push_wire(self, ops: Sequence[str], pending: int) -> PushResponse:  # what every push goes through
        say("push", len(ops))
        answer = super().push_wire(ops, pending)
        say("pushed", len(answer.accepted))
        return answer

    def pull(self, after: int, limit: int = MAX_BATCH) -> PulledPage:
        say("pull", after)
        page = super().pull(after, limit)
        say("pulled", page.count)
        return page


class PausingCredentials:
    """The workspace's credentials store, stopping before it saves (refreshed tokens) until told to go on:
    the point where a process killed loses the tokens the node has just issued."""

    def __init__(self, inner: CredentialsStore) -> None:
        self._inner = inner

    @property
    def where(self) -> str:
        return self._inner.where

    def load(self) -> NodeCredentials | None:
        return self._inner.load()

    def save(self, credentials: NodeCredentials) -> None:
        say("saving-tokens")
        sys.stdin.readline()
        self._inner.save(credentials)

    def clear(self) -> None:
        self._inner.clear()


def task_created(rng: random.Random, n: int, now: str) -> dict[str, Any]:
    """Every field of a new task, as `TaskService.add` writes them."""
    quadrant = rng.randint(1, 4)
    return {
        "title": f"Kill-test task {n} {rng.randrange(10**6)}",
        "notes": "",
        "due": None,
        "urgent": quadrant in (1, 3),
        "important": quadrant in (1, 2),
        "urgency": 1.0 if quadrant in (1, 3) else 0.0,
        "importance": 1.0 if quadrant in (1, 2) else 0.0,
        "quadrant": quadrant,
        "manual": False,
        "position": float(n),
        "status": "open",
        "completed_at": None,
        "tags": ["kill"] if n % 3 == 0 else [],
        "source": "manual",
        "created_at": now,
        "updated_at": now,
        "deleted": False,
    }


def task_edited(rng: random.Random, now: str) -> dict[str, Any]:
    """A few fields of an existing task: what a person changes in the matrix."""
    choice = rng.randrange(5)
    if choice == 0:
        fields: dict[str, Any] = {"title": f"Renamed {rng.randrange(10**6)}"}
    elif choice == 1:
        fields = {"status": "done", "completed_at": now}
    elif choice == 2:
        fields = {"quadrant": rng.randint(1, 4), "manual": True, "position": rng.random() * 100}
    elif choice == 3:
        fields = {"tags": rng.sample(["home", "work", "kill", "later"], rng.randint(0, 2))}
    else:
        fields = {"deleted": rng.random() < 0.7}
    return fields | {"updated_at": now}


def make_changes(store: Store, rng: random.Random, count: int) -> None:
    """`count` changes in small transactions: new tasks and edits of tasks this replica already has
    (its own or pulled from the other laptop), so the two laptops edit the same tasks concurrently."""
    known = [str(r[0]) for r in store.query("SELECT id FROM tasks")]
    made = 0
    while made < count:
        size = min(count - made, rng.randint(1, 25))
        now = datetime.now(UTC).isoformat()
        before = int(store.query("SELECT coalesce(max(seq), 0) FROM ops")[0][0])
        with store.transaction() as tx:
            for _ in range(size):
                if known and rng.random() < 0.6:
                    tx.change("task", rng.choice(known), task_edited(rng, now))
                else:
                    task_id = new_id()
                    tx.change("task", task_id, task_created(rng, len(known), now))
                    known.append(task_id)
        rows = store.query("SELECT op_id FROM ops WHERE seq > ? AND from_node = 0 ORDER BY seq", (before,))
        say("committed", *(r[0] for r in rows))
        made += size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--changes", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--deadline", type=float, default=120.0, help="give up (exit 3) after this long")
    parser.add_argument("--wait", action="store_true", help="load, then wait for `go CHANGES SEED` on stdin")
    parser.add_argument(
        "--pause-before-save", action="store_true", help="wait for a line on stdin before saving new tokens"
    )
    args = parser.parse_args(argv)
    if args.wait:
        say("loaded")
        orders = sys.stdin.readline().split()
        if not orders:
            return 0
        if len(orders) != 3 or orders[0] != "go":
            say("bad orders", *orders)
            return 2
        args.changes, args.seed = int(orders[1]), int(orders[2])
    started = time.monotonic()
    store = Store.open(args.workspace)
    log = MarkedLog(store)
    credentials = credentials_for(args.workspace)
    if args.pause_before_save:
        credentials = PausingCredentials(credentials)
    client = MarkedClient(credentials)
    syncer = Syncer(log, client)
    say("ready")
    try:
        make_changes(store, random.Random(args.seed), args.changes)
        while True:
            report = syncer.sync_once()
            if report.refused:
                say("refused", log.sync_status().last_refused)
                return 4
            if report.ok and log.pending() == 0:
                say("done", log.pending())
                return 0
            if report.needs_pairing:
                say("unpaired", report.summary or "-", "|", "; ".join(report.errors)[:300])
                return 5
            say("retry", report.summary or "-", "|", "; ".join(report.errors)[:300])
            if time.monotonic() - started > args.deadline:
                return 3
            time.sleep(RETRY_PAUSE_S)
    finally:
        client.close()
        store.close()


if __name__ == "__main__":
    sys.exit(main())
