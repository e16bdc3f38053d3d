"""Three laptops and the node converge, whatever the network and the laptops do (a Hypothesis stateful
test; DESIGN.md section 3).

Each laptop is a real SQLite store file with its task and note services and its `SqliteActionLog`; the
node is a real `PgActionLog` on PostgreSQL. Rules make the changes a person makes (add, edit, move,
complete, delete, undo) and move operations the way `aurora.app.syncer.Syncer` does (push: `unpushed` ->
`push` -> `mark_pushed` through the answered operations; pull: `pull` -> `apply_pulled`), with faults in
between:

- partitions: an offline laptop's push and pull do nothing;
- a push whose answer is lost (the node stored the batch, the laptop sends it again later), or arrives late;
- a pull whose answer is lost, or arrives late (after newer pages);
- duplicated messages: a batch pushed twice, a page applied twice;
- reordered delivery: operations of later pages handed to the laptop's `ingest` before the pages that
  hold them, shuffled and repeated, while its cursor stays where it was;
- crashes: the laptop's process dies between two steps, or in the middle of a write transaction (the
  store is reopened from what the files held at that instant: everything committed survives, nothing
  uncommitted does);
- clock skew: one laptop's wall clock runs 90 s behind, another's 60 s ahead.

Every edit shows on its laptop at once (its clock beats whatever arrived from laptops whose clocks run
ahead), and an undo puts back what the step replaced where nothing changed it since.

At the end (and whenever the `heal_and_sync` rule runs) every laptop comes back online and syncs twice,
in rounds, in batches of a size drawn per run (1, 2, 3 or the syncer's 500, so paging is exercised).
Then all three laptops and the node hold the same state for every entity, equal to the pure merge of the
node's log; each side holds each operation once; no laptop has anything left to push; and the three
laptops show the same tasks and notes.

The node's database is emptied between examples (TRUNCATE), and the laptops' files are new for each.
`AURORA_CI=1` runs 500 examples; otherwise 50.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, LiteralString, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from aurora.app.errors import InvalidInputError, NotFoundError
from aurora.app.notes import NoteService
from aurora.app.store import Store
from aurora.app.sync_log import SqliteActionLog
from aurora.app.tasks import ScoringRules, TaskService
from aurora.node.db import Pool, connect_pool
from aurora.node.oplog import PgActionLog
from aurora.schema import EntityKind, NoteColour, Quadrant
from aurora.sync import EntityState, HybridClock, Operation, new_id
from aurora.sync.protocol import MAX_BATCH, PullResponse, PushRequest, PushResponse
from tests.node.pgtest import PgTestServer
from tests.sync.strategies import Key, folded

CI = os.environ.get("AURORA_CI") == "1"
MAX_EXAMPLES = 500 if CI else 50
STEPS = 20

RULES = ScoringRules(urgent_within_days=3.0, important_tags=("work",))
LAPTOPS = 3
SKEWS_MS = (0, -90_000, 60_000)
"""Each laptop's wall clock against the true time (the node's is true): within the five minutes ahead
that both sides accept."""
RESET_NODE = "TRUNCATE ops, entities, devices, pairing_codes, refresh_tokens RESTART IDENTITY"

T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


class Node:
    """The node's log on a database of its own, driven from synchronous rules on a private event loop."""

    def __init__(self, server: PgTestServer) -> None:
        self._server = server
        self._runner = asyncio.Runner()
        self._url: str | None = None
        self._pool: Pool | None = None
        self.log: PgActionLog

    def __enter__(self) -> Node:
        try:
            self._url = self.run(self._server.create_database())
            self._pool = self.run(connect_pool(self._url, 1, 2))
        except BaseException:
            self.close()
            raise
        self.log = PgActionLog(self._pool)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            if self._pool is not None:
                self.run(self._pool.close())
            if self._url is not None:
                self.run(self._server.drop_database(self._url))
        finally:
            self._runner.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def sql(self, statement: LiteralString, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        async def go() -> list[tuple[Any, ...]]:
            assert self._pool is not None
            async with self._pool.connection() as conn:
                cur = await conn.execute(statement, params)
                return await cur.fetchall() if cur.description else []

        return self.run(go())

    def reset(self) -> None:
        self.sql(RESET_NODE)

    def register(self, device_id: str, name: str) -> None:
        """Pair a laptop: its own id in `devices`, so its pushes are its own and pulls skip them."""
        self.sql("INSERT INTO devices (id, name) VALUES (%s, %s)", (device_id, name))

    def push(self, device_id: str, request: PushRequest) -> PushResponse:
        return self.run(self.log.push(device_id, request))

    def pull(self, device_id: str, cursor: int, limit: int) -> PullResponse:
        return self.run(self.log.pull(device_id, cursor, limit))

    def operations(self) -> list[Operation]:
        return [op for _, op in self.run(self.log.after(0, 10**6))]

    def state(self, key: Key) -> EntityState | None:
        return self.run(self.log.state(*key))


class Laptop:
    """One laptop: a store file, its log and services. `crash` kills the process and starts a new one.

    `skew_ms` is how far its wall clock is off: laptops' clocks disagree by a minute or two, which is what
    the hybrid clock is for (an edit made here after seeing a change from a laptop whose clock runs ahead
    must still win here and everywhere).
    """

    def __init__(self, name: str, folder: Path, skew_ms: int = 0) -> None:
        self.name = name
        self.path = folder / f"{name}.db"
        self.skew_ms = skew_ms
        self.online = True
        self.late_push_answers: list[int] = []
        """Push cursors of answers that were delayed: they arrive later, or never."""
        self.late_pull_answers: list[PullResponse] = []
        self._open()

    def _open(self) -> None:
        self.store = Store.open(self.path)
        started = self.store.clock  # already past every operation in the file
        self.store.clock = HybridClock(
            self.device_id, last=started.last, wall=lambda: time.time_ns() // 1_000_000 + self.skew_ms
        )
        self.log = SqliteActionLog(self.store)
        self.tasks = TaskService(self.store, RULES, _now)
        self.notes = NoteService(self.store, _now)

    @property
    def device_id(self) -> str:
        return self.store.device_id

    def service(self, kind: EntityKind) -> TaskService | NoteService:
        return self.tasks if kind == "task" else self.notes

    def close(self) -> None:
        self.store.close()

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Everything the file holds that sync cares about."""
        return {
            table: self.store.query(f"SELECT * FROM {table} ORDER BY 1")
            for table in ("tasks", "notes", "ops", "meta")
        }

    def crash(self, *, mid_write: bool) -> None:
        """The process dies: in-memory state (undo history, answers in flight) is lost; the files stay.

        With `mid_write` it dies inside a write transaction (a local change and a cursor move, not
        committed): the files are copied as they are at that instant, which is what a new process finds
        after a kill, and the copy is what opens next.
        """
        self.late_push_answers.clear()
        self.late_pull_answers.clear()
        if not mid_write:
            self.close()
            self._open()
            return
        image = self.path.with_name(self.path.name + ".crash")
        image.mkdir()
        try:
            with self.store.transaction() as tx:
                tx.change("task", new_id(), {"title": "never committed", "deleted": False})
                tx.execute("UPDATE meta SET value = '999999' WHERE key = 'pushed_through'")
                for suffix in ("", "-wal"):
                    source = Path(str(self.path) + suffix)
                    if source.exists():
                        shutil.copy2(source, image / (self.path.name + suffix))
                raise _Killed
        except _Killed:
            pass
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
            copied = image / (self.path.name + suffix)
            if copied.exists():
                copied.rename(Path(str(self.path) + suffix))
        image.rmdir()
        self._open()


class _Killed(Exception):
    """Ends the transaction a crash interrupts (its rollback stands for the process dying)."""


def _through(batch: list[tuple[int, Operation]], answer: PushResponse) -> int | None:
    """How far the push cursor moves for this answer: past the first operations the node answered for,
    up to the first it did not (as `Syncer._settle` does when nothing is refused)."""
    accepted = set(answer.accepted)
    through: int | None = None
    for seq, op in batch:
        if op.op_id not in accepted:
            break
        through = seq
    return through


laptops = st.integers(0, LAPTOPS - 1)
limits = st.integers(1, 4)
answers = st.sampled_from(["delivered", "lost", "delivered", "late"])
"""What becomes of the answer to a push or a pull: it arrives (most often), it never does, or it arrives
later."""
words = st.text(st.sampled_from("abc xyz"), min_size=1, max_size=8).filter(lambda s: bool(s.split()))
tag_lists = st.lists(st.sampled_from(["work", "home", "vip", "x/y"]), max_size=2, unique=True)
task_edits = st.one_of(
    st.fixed_dictionaries({"title": words}),
    st.fixed_dictionaries({"notes": st.text(st.sampled_from("ab \n"), max_size=5)}),
    st.fixed_dictionaries({"urgent": st.booleans()}),
    st.fixed_dictionaries({"important": st.booleans()}),
    st.fixed_dictionaries({"tags": tag_lists}),
    st.fixed_dictionaries({"quadrant": st.sampled_from(list(Quadrant))}),
    st.just({"status": "toggle"}),
)
note_edits = st.one_of(
    st.fixed_dictionaries({"body": words}),
    st.fixed_dictionaries({"colour": st.sampled_from(list(NoteColour))}),
    st.fixed_dictionaries({"pinned": st.booleans()}),
    st.fixed_dictionaries({"tags": tag_lists}),
)
KINDS: tuple[EntityKind, ...] = ("task", "note")
ACTIONS = ("add task", "edit", "add note", "edit", "delete", "edit", "undo")
"""What a person does, edits most often (sampling from a tuple with repeats weights it)."""


class Convergence(RuleBasedStateMachine):
    node: ClassVar[Node]
    root: ClassVar[Path]

    def __init__(self) -> None:
        super().__init__()
        self.node.reset()
        self.folder = Path(tempfile.mkdtemp(dir=self.root))
        self.laptops: list[Laptop] = []
        for n in range(LAPTOPS):
            laptop = Laptop(f"laptop{n}", self.folder, SKEWS_MS[n])
            self.laptops.append(laptop)
            self.node.register(laptop.device_id, laptop.name)
        self.made: list[Key] = []
        """Every task and note made on any laptop (a laptop may not have it yet)."""
        self.batch = MAX_BATCH

    # --- what a person does ---------------------------------------------------------------------------

    @initialize(
        made=st.lists(st.tuples(laptops, st.sampled_from(KINDS), words), min_size=1, max_size=4),
        batch=st.sampled_from([1, 2, 3, MAX_BATCH]),
    )
    def first_things(self, made: list[tuple[int, EntityKind, str]], batch: int) -> None:
        """Every run starts with a few tasks and notes, made on any of the laptops; `batch` is the most
        operations a full sync round pushes or pulls at a time (small ones make it page)."""
        self.batch = batch
        for i, kind, text in made:
            laptop = self.laptops[i]
            entity_id = laptop.tasks.add(text).id if kind == "task" else laptop.notes.add(text).id
            self.made.append((kind, entity_id))

    @rule(i=laptops, data=st.data())
    def person_acts(self, i: int, data: st.DataObject) -> None:
        """One to four things a person does on one laptop; each shows on that laptop at once."""
        laptop = self.laptops[i]
        for _ in range(data.draw(st.integers(1, 4), label="actions")):
            action = data.draw(st.sampled_from(ACTIONS), label="action")
            if action == "add task":
                title = data.draw(words, label="title")
                task = laptop.tasks.add(title)
                assert task.title == " ".join(title.split())
                self.made.append(("task", task.id))
            elif action == "add note":
                body = data.draw(words, label="body")
                note = laptop.notes.add(body)
                assert note.body == body.rstrip()
                self.made.append(("note", note.id))
            elif action == "undo":
                self._undo(laptop, data.draw(st.sampled_from(KINDS), label="undo"))
            elif self.made:
                kind, entity_id = data.draw(st.sampled_from(self.made), label="entity")
                if action == "delete":
                    self._delete(laptop, kind, entity_id)
                elif kind == "task":
                    self._edit_task(laptop, entity_id, data.draw(task_edits, label="change"))
                else:
                    self._edit_note(laptop, entity_id, data.draw(note_edits, label="change"))

    @staticmethod
    def _edit_task(laptop: Laptop, task_id: str, change: dict[str, Any]) -> None:
        tasks = laptop.tasks
        try:
            if "quadrant" in change:
                task = tasks.move(task_id, change["quadrant"])
                assert task.manual
            elif "status" in change:
                before = tasks.get(task_id).status
                task = tasks.toggle_done(task_id)
                change = {"status": "done" if before == "open" else "open"}
            else:
                task = tasks.update(task_id, **change)
        except (NotFoundError, InvalidInputError):
            # Not on this laptop yet, or deleted here; or known here only by later edits (out-of-order
            # delivery), so it has no title yet and the service will not save a task without one.
            return
        if "title" in change:
            change = change | {"title": " ".join(change["title"].split())}
        # An edit shows at once: its clock beats every one this laptop holds, whatever arrived from afar.
        assert task.model_dump(include=set(change)) == change

    @staticmethod
    def _edit_note(laptop: Laptop, note_id: str, change: dict[str, Any]) -> None:
        try:
            note = laptop.notes.update(note_id, **change)
        except (NotFoundError, InvalidInputError):  # as for tasks
            return
        if "body" in change:
            change = change | {"body": change["body"].rstrip()}
        assert note.model_dump(include=set(change)) == change

    @staticmethod
    def _delete(laptop: Laptop, kind: EntityKind, entity_id: str) -> None:
        service = laptop.service(kind)
        try:
            service.delete(entity_id)
        except NotFoundError:
            return
        try:
            service.get(entity_id)
        except NotFoundError:
            return
        raise AssertionError(f"{kind} {entity_id} is still shown after its delete")

    @staticmethod
    def _undo(laptop: Laptop, kind: EntityKind) -> None:
        """Undo writes back the values the last step replaced, where nothing has changed them since."""
        service = laptop.service(kind)
        steps = service.history._undo
        if not steps:
            assert service.undo() is None
            return
        changes = steps[-1].changes
        before = {c.entity_id: laptop.store.load(c.kind, c.entity_id) for c in changes}
        assert service.undo() is not None
        for change in changes:
            held, now = before[change.entity_id], laptop.store.load(change.kind, change.entity_id)
            assert held is not None and now is not None
            for name, old in change.before.items():
                if name != "updated_at" and held.values.get(name) == change.after.get(name):
                    assert now.values.get(name) == old, (change.entity_id, name)

    # --- the network, and its faults ------------------------------------------------------------------

    @rule(i=laptops, online=st.booleans())
    def network(self, i: int, online: bool) -> None:
        """A partition starts or ends for one laptop."""
        self.laptops[i].online = online

    @rule(i=laptops, limit=limits, answer=answers, twice=st.booleans())
    def push(self, i: int, limit: int, answer: str, twice: bool) -> None:
        laptop = self.laptops[i]
        if laptop.online:
            self._push(laptop, limit, answer, twice)

    def _push(self, laptop: Laptop, limit: int, answer: str = "delivered", twice: bool = False) -> bool:
        """One batch, as the syncer sends it; False when there was nothing to send."""
        batch = laptop.log.unpushed(limit)
        if not batch:
            return False
        request = PushRequest(
            ops=[op.model_dump(mode="json") for _, op in batch], pending=laptop.log.pending() - len(batch)
        )
        reply = self.node.push(laptop.device_id, request)
        assert reply.rejected == []
        assert reply.accepted == [op.op_id for _, op in batch]
        if twice:
            again = self.node.push(laptop.device_id, request)
            assert (again.accepted, again.rejected, again.head) == (reply.accepted, [], reply.head)
        through = _through(batch, reply)
        assert through == batch[-1][0]
        if answer == "delivered":
            laptop.log.mark_pushed(through)
        elif answer == "late":
            laptop.late_push_answers.append(through)
        return True

    @rule(i=laptops, limit=limits, answer=answers, twice=st.booleans())
    def pull(self, i: int, limit: int, answer: str, twice: bool) -> None:
        laptop = self.laptops[i]
        if laptop.online:
            self._pull(laptop, limit, answer, twice)

    def _pull(self, laptop: Laptop, limit: int, answer: str = "delivered", twice: bool = False) -> bool:
        """One page, as the syncer asks for it; True when the node says more follow."""
        page = self.node.pull(laptop.device_id, laptop.log.pull_cursor(), limit)
        assert all(p.op.device_id != laptop.device_id for p in page.ops)  # it has its own
        if answer == "delivered":
            laptop.log.apply_pulled([p.op for p in page.ops], page.cursor)
            if twice:
                assert laptop.log.apply_pulled([p.op for p in page.ops], page.cursor) == 0
        elif answer == "late":
            laptop.late_pull_answers.append(page)
        return page.more

    @rule(i=laptops, newest_first=st.booleans())
    def late_answers_arrive(self, i: int, newest_first: bool) -> None:
        """The delayed answers to one laptop's pushes and pulls arrive, after newer ones, in either order."""
        laptop = self.laptops[i]
        if not laptop.online:
            return
        step = -1 if newest_first else 1
        for through in laptop.late_push_answers[::step]:
            laptop.log.mark_pushed(through)
        for page in laptop.late_pull_answers[::step]:
            laptop.log.apply_pulled([p.op for p in page.ops], page.cursor)
        laptop.late_push_answers.clear()
        laptop.late_pull_answers.clear()

    @rule(i=laptops, data=st.data())
    def out_of_order_delivery(self, i: int, data: st.DataObject) -> None:
        """Operations from later in the node's log reach the laptop first, shuffled and repeated, through
        its `ingest`; its cursor does not move, so the pages that hold them come again."""
        laptop = self.laptops[i]
        if not laptop.online:
            return
        cursor = laptop.log.pull_cursor()
        ahead = [op for _, op in self.node.run(self.node.log.after(cursor, 12))]
        if not ahead:
            return
        indexes = st.integers(0, len(ahead) - 1)
        picked = [ahead[n] for n in data.draw(st.lists(indexes, min_size=1, max_size=8), label="delivered")]
        held = {op.op_id for _, op in laptop.log.after_now(0, 10**6)}
        new = self.node.run(laptop.log.ingest(picked))
        assert [op.op_id for op in new] == list(dict.fromkeys(o.op_id for o in picked if o.op_id not in held))
        assert laptop.log.pull_cursor() == cursor

    @rule(i=laptops, mid_write=st.booleans())
    def crash(self, i: int, mid_write: bool) -> None:
        laptop = self.laptops[i]
        before = laptop.snapshot()
        laptop.crash(mid_write=mid_write)
        assert laptop.snapshot() == before

    @rule()
    def heal_and_sync(self) -> None:
        self._converge()

    # --- the end ------------------------------------------------------------------------------------

    def _sync(self, laptop: Laptop) -> None:
        """A full round: push everything, then pull until the node has no more."""
        while self._push(laptop, self.batch):
            pass
        while self._pull(laptop, self.batch):
            pass

    def _converge(self) -> None:
        for laptop in self.laptops:
            laptop.online = True
        for _round in range(2):
            for laptop in self.laptops:
                self._sync(laptop)

        node_ops = self.node.operations()
        node_ids = [op.op_id for op in node_ops]
        assert len(node_ids) == len(set(node_ids)), "the node holds an operation twice"
        expected = folded(node_ops)
        assert set(self.made) <= set(expected), "a task or note never reached the node"
        for key, state in expected.items():
            assert self.node.state(key) == state, key
        head = self.node.run(self.node.log.head())
        shown: list[dict[str, Any]] = []
        for laptop in self.laptops:
            rows = laptop.store.query("SELECT op_id, count(*) FROM ops GROUP BY op_id HAVING count(*) > 1")
            assert rows == [], f"{laptop.name} holds operations twice: {rows}"
            held = {op.op_id for op in laptop.store.operations()}
            assert held == set(node_ids), f"{laptop.name} and the node hold different operations"
            assert laptop.log.pending() == 0, f"{laptop.name} still has operations to push"
            assert laptop.log.pull_cursor() == head
            for key, state in expected.items():
                assert self.node.run(laptop.log.state(*key)) == state, (laptop.name, key)
            shown.append(
                {
                    "tasks": [t.model_dump() for t in laptop.tasks.list_all()],
                    "notes": [n.model_dump() for n in laptop.notes.list()],
                }
            )
        assert all(view == shown[0] for view in shown), "the laptops show different tasks or notes"

    def teardown(self) -> None:
        try:
            if sys.exc_info()[1] is None:  # after a failed step, report that failure and not this one
                self._converge()
        finally:
            for laptop in self.laptops:
                laptop.close()
            shutil.rmtree(self.folder, ignore_errors=True)


def test_laptops_and_the_node_converge(pg_server: PgTestServer, tmp_path: Path) -> None:
    with Node(pg_server) as node:

        class Bound(Convergence):
            pass

        Bound.node, Bound.root = node, tmp_path
        run_state_machine_as_test(
            Bound,
            settings=settings(
                max_examples=MAX_EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
