"""The node's operation log and replica state in PostgreSQL: `aurora.sync.protocol.ActionLog`, plus the
push and pull the API serves.

Ingest (one transaction per batch; a push's takes two round trips whatever its size, in psycopg's pipeline
mode: steps 1-3 in one, the rest with the commit):

1. `pg_advisory_xact_lock(OPS_LOCK)`: one writer at a time, across every node process on the database.
2. One multi-row `INSERT ... ON CONFLICT (op_id) DO NOTHING RETURNING op_id, seq`: what was new. The
   batch travels as one JSON array (`jsonb_to_recordset`): one text parameter, not six arrays that the
   driver would encode element by element.
3. One `SELECT ... FOR UPDATE` of every entity the batch touches. The pure `aurora.sync.merge` folds the
   new operations in, in Python; one multi-row upsert writes the states back (again one JSON parameter).
   An entity not held before and set by one operation of the batch (every entity of a first sync) skips
   Python: one more insert per set of field names builds its state, the operation itself, from the
   operation rows just written.
4. `pg_notify('aurora_ops', head)`, delivered only if the transaction commits.

Why the lock. A `bigserial` hands out numbers at insert time, not at commit time: without the lock, writer
A could take seq 10, writer B seq 11, and B commit first. A puller reading then sees 11, moves its cursor
to 11, and never sees 10 when A commits. Holding one lock from before the first `nextval` until commit
makes the numbers commit in order, so a reader that can see seq N can already see every smaller seq that
will ever exist (PostgreSQL makes a transaction visible before it releases its locks). Sequence numbers
may still have holes (a rolled-back batch burns its numbers) but never late arrivals. The lock costs
little: each batch holds it for a few milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from psycopg import AsyncConnection
from pydantic import ValidationError

from aurora.node.db import Pool
from aurora.node.registry import stamp_pushed
from aurora.schema import EntityKind
from aurora.sync.batch import checked_push
from aurora.sync.merge import EntityState, clocks_template, merge
from aurora.sync.ops import Operation
from aurora.sync.protocol import (
    MAX_BATCH,
    MAX_CLOCK_AHEAD_MS,
    MAX_OP_BYTES,
    PulledOp,
    PullResponse,
    PushRequest,
    PushResponse,
    RejectCode,
    Rejected,
)

OPS_LOCK = int.from_bytes(b"aurorops", "big")
"""`pg_advisory_xact_lock` key held by every ingest until it commits (see the module docstring)."""

CHANNEL = "aurora_ops"
"""Where ingest announces the new head (`LISTEN aurora_ops`)."""

_MAX_MESSAGE = 500
_DEVICE_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
"""One encoder for every dump: `json.dumps` with options builds a new one per call (hot on push)."""

_INSERT_OPS = """
    INSERT INTO ops (op_id, device_id, hlc, entity, entity_id, fields)
    SELECT o.op_id, o.device_id, o.hlc, o.entity, o.entity_id, o.fields
    FROM ROWS FROM (
        jsonb_to_recordset(%s::jsonb)
            AS (op_id text, device_id text, hlc text, entity text, entity_id text, fields jsonb)
    ) WITH ORDINALITY AS o(op_id, device_id, hlc, entity, entity_id, fields, ord)
    ORDER BY o.ord
    ON CONFLICT (op_id) DO NOTHING
    RETURNING op_id, seq
"""
# Sorted keys, so two transactions that ever lock the same rows do so in the same order.
_LOCK_ENTITIES = """
    SELECT e.entity, e.entity_id, e."values", e.clocks
    FROM entities AS e
    JOIN jsonb_to_recordset(%s::jsonb) AS k(entity text, entity_id text) USING (entity, entity_id)
    ORDER BY e.entity, e.entity_id
    FOR UPDATE OF e
"""
_UPSERT_ENTITIES = """
    INSERT INTO entities (entity, entity_id, "values", clocks)
    SELECT k.entity, k.entity_id, k.v, k.c
    FROM jsonb_to_recordset(%s::jsonb) AS k(entity text, entity_id text, v jsonb, c jsonb)
    ON CONFLICT (entity, entity_id) DO UPDATE SET "values" = excluded."values", clocks = excluded.clocks
"""
# Entities no replica state holds yet, each set by one operation: the state is the operation's fields, each
# at the operation's clock. No ON CONFLICT: under the lock such a row cannot appear meanwhile, and if it did
# the batch must fail rather than overwrite it unmerged. Key order, as `_LOCK_ENTITIES`.
# Built from the operations' rows this transaction has just written (found by `op_id`), not from their JSON
# again: parsing the batch twice cost PostgreSQL more than the lookups. One statement per set of field
# names: the clocks are that set's template (`aurora.sync.merge.clocks_template`) with each operation's
# clock put in, which cost PostgreSQL a third of what building each object from the operation's keys did.
_INSERT_FRESH_ENTITIES = """
    INSERT INTO entities (entity, entity_id, "values", clocks)
    SELECT o.entity, o.entity_id, o.fields, replace(%s, '@', o.hlc)::jsonb
    FROM ops AS o
    WHERE o.op_id = ANY(%s::text[])
    ORDER BY o.entity, o.entity_id
"""
_OP_COLUMNS = "seq, op_id, device_id, hlc, entity, entity_id, fields"
# One statement, so the page and the head come from one snapshot: the cursor may then move to the head
# without skipping an operation that committed between two reads. Each operation comes back as the JSON
# of a `PulledOp`, written by PostgreSQL: the node passes it on without building a Python object for it.
_PULL = """
    SELECT h.head, h.active, o.seq, o.item
    FROM (
        SELECT coalesce(max(seq), 0) AS head,
               coalesce((SELECT revoked_at IS NULL FROM devices WHERE id = %(device)s), false) AS active
        FROM ops
    ) AS h
    LEFT JOIN LATERAL (
        SELECT seq, json_build_object(
            'seq', seq,
            'op', json_build_object(
                'op_id', op_id, 'device_id', device_id, 'hlc', hlc, 'entity', entity,
                'entity_id', entity_id, 'fields', fields
            )
        )::text AS item
        FROM ops WHERE seq > %(cursor)s AND device_id <> %(device)s
        ORDER BY seq LIMIT %(limit)s
    ) AS o ON true
    ORDER BY o.seq
"""


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _dumps(value: Any) -> str:
    """JSON for a jsonb column that reads back equal to `value`: strict (no NaN or infinity, which jsonb
    refuses), compact, UTF-8 as is.

    jsonb keeps a number as a decimal, and Python writes a float of 1e16 or more with an exponent
    (`3.602879272399667e+16`): jsonb would give it back as the integer 36028792723996670, a different
    number from the float 36028792723996672.0 that went in, and the node's state would drift from the
    laptops'. Such floats are written out in full with a decimal point instead, which jsonb keeps, so
    they read back as the same float.
    """
    text = _ENCODER.encode(value)
    return _exact(value) if "e+" in text else text


def _exact(value: Any) -> str:
    if isinstance(value, float) and abs(value) >= 1e16:
        return f"{value:.1f}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_dumps(str(k))}:{_exact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_exact(v) for v in value) + "]"
    return _ENCODER.encode(value)


def _op_from_row(row: Sequence[Any]) -> Operation:
    """An operation read back from the log. It was validated when it was stored, and the log is history:
    it is not judged again by today's rules (a field a later version drops must not make old operations
    unreadable), so it is built without validation."""
    _seq, op_id, device_id, hlc, entity, entity_id, fields = row
    return Operation.model_construct(
        op_id=op_id, device_id=device_id, hlc=hlc, entity=entity, entity_id=entity_id, fields=fields
    )


def _op_from_json(item: dict[str, Any]) -> Operation:
    """An operation of a `pull_json` page, built without validation (as `_op_from_row`)."""
    return Operation.model_construct(**{name: item[name] for name in _WIRE_FIELDS})


def _op_json(op: Operation) -> str:
    """An operation as one JSON object, as `ingest_on` sends it to PostgreSQL (`_dumps`: jsonb keeps
    every number as it was)."""
    return _dumps({name: getattr(op, name) for name in _WIRE_FIELDS})


_WIRE_FIELDS = ("op_id", "device_id", "hlc", "entity", "entity_id", "fields")


class PullPage(NamedTuple):
    """A pull's answer as the API sends it."""

    body: bytes
    """The JSON of a `PullResponse`."""
    op_count: int
    """How many operations it holds."""
    device_active: bool
    """Whether the asking device is known and not revoked, read in the same statement (the API refuses
    the page to a revoked one)."""


class PgActionLog:
    """The node's `ActionLog` over a pool of autocommit connections (`aurora.node.db.Pool`).

    `wall_ms` is the node's clock, in ms since the epoch, for the clock-ahead check (tests pass their own).
    """

    def __init__(self, pool: Pool, *, wall_ms: Callable[[], int] = _wall_ms) -> None:
        self._pool = pool
        self._wall_ms = wall_ms

    # --- the ActionLog protocol -----------------------------------------------------------------------

    async def ingest(self, ops: Sequence[Operation]) -> list[Operation]:
        """Store and apply each operation not held yet, in one transaction; return the new ones in the
        order given (the same batch again returns [])."""
        async with self._pool.connection() as conn, conn.transaction():
            new, _head = await ingest_on(conn, ops)
        return new

    async def after(self, cursor: int, limit: int) -> list[tuple[int, Operation]]:
        """Up to `limit` operations with a seq above `cursor`, in seq order."""
        if limit <= 0:
            return []
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_OP_COLUMNS} FROM ops WHERE seq > %s ORDER BY seq LIMIT %s", (cursor, limit)
            )
            rows = await cur.fetchall()
        return [(int(row[0]), _op_from_row(row)) for row in rows]

    async def head(self) -> int:
        async with self._pool.connection() as conn:
            return await _head(conn)

    async def state(self, entity: EntityKind, entity_id: str) -> EntityState | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                'SELECT "values", clocks FROM entities WHERE entity = %s AND entity_id = %s',
                (entity, entity_id),
            )
            row = await cur.fetchone()
        return EntityState(row[0], row[1]) if row else None

    # --- what the API serves --------------------------------------------------------------------------

    async def pull_json(self, device_id: str, cursor: int, limit: int = MAX_BATCH) -> PullPage:
        """`pull`, as the JSON of its `PullResponse`: what the API sends, built without a Python object
        per operation (PostgreSQL writes each one's JSON; the operations were validated when stored, and
        the log is history, not judged again). See `pull` for the cursor rules."""
        if not 1 <= limit <= MAX_BATCH:
            raise ValueError(f"a pull asks for 1 to {MAX_BATCH} operations, not {limit}")
        if cursor < 0:
            raise ValueError(f"a cursor is 0 or more, not {cursor}")
        async with self._pool.connection() as conn:
            cur = await conn.execute(_PULL, {"cursor": cursor, "device": device_id, "limit": limit + 1})
            rows = await cur.fetchall()
        head, active = int(rows[0][0]), bool(rows[0][1])
        found = [row for row in rows if row[2] is not None]
        more = len(found) > limit
        if more:
            found = found[:limit]
            next_cursor = int(found[-1][2])
        else:
            # Nothing for this device up to the head of this very snapshot.
            next_cursor = head
        items = ",".join([str(row[3]) for row in found])
        tail = f'],"cursor":{next_cursor},"head":{head},"more":{"true" if more else "false"}}}'
        return PullPage(('{"ops":[' + items + tail).encode("utf-8"), len(found), active)

    async def pull(self, device_id: str, cursor: int, limit: int = MAX_BATCH) -> PullResponse:
        """The operations after `cursor` that `device_id` did not make (it has those), up to `limit`.

        The answer's cursor is the last seq scanned, past the device's own operations too, so a device
        that alone writes still moves its cursor to the head. A cursor beyond the head (a node restored
        from an older backup) comes back as the head, so the device reads what the node stores next
        instead of skipping it. (The API serves `pull_json`, the same answer as JSON.)
        """
        page = json.loads((await self.pull_json(device_id, cursor, limit)).body)
        return PullResponse(
            ops=[PulledOp(seq=item["seq"], op=_op_from_json(item["op"])) for item in page["ops"]],
            cursor=page["cursor"],
            head=page["head"],
            more=page["more"],
        )

    async def push(self, device_id: str, request: PushRequest, body: bytes | None = None) -> PushResponse:
        """Check each raw operation alone, store the good ones, and record the device's pending count.

        A corrupt, oversized, foreign or far-future operation is refused with its position and a stable
        code; the rest of the batch is stored. `accepted` lists every valid operation's id, new or held
        before, so a retried batch is acknowledged again and changes nothing.

        `body`, the request's JSON text that `request` was parsed from, lets a batch that is valid as a
        whole skip validating each operation as an `Operation` (`aurora.sync.batch`); the other checks
        (size, NUL, device, clock) still run for each.
        """
        now = self._wall_ms()
        # The other devices this batch names, of those that could be paired ones (a device id is a few
        # letters, digits and `-_.`; anything else cannot be in the table, nor be sent to PostgreSQL).
        named = {raw.get("device_id") for raw in request.ops}
        claimed = sorted(
            name
            for name in named
            if isinstance(name, str) and name != device_id and _DEVICE_ID.fullmatch(name)
        )
        others: frozenset[str] = frozenset()
        if claimed:
            async with self._pool.connection() as conn:
                cur = await conn.execute("SELECT id FROM devices WHERE id = ANY(%s)", (claimed,))
                others = frozenset(str(r[0]) for r in await cur.fetchall())
        # Checking a batch of 2,000 is ~40 ms of CPU. On the event loop it would hold up the batch before
        # this one (two are in flight from a laptop), whose every round trip to PostgreSQL waits for the
        # loop; on a thread it yields the GIL to the loop every few milliseconds.
        valid, texts, rejected = await asyncio.to_thread(
            _check_batch, request.ops, body, device_id, now, others
        )
        # In pipeline mode: what needs no answer (the entities, the announcement, the registry, the commit)
        # goes with the commit, in one round trip.
        async with self._pool.connection() as conn, conn.pipeline(), conn.transaction():
            _new, head = await ingest_on(conn, valid, texts)
            await stamp_pushed(conn, device_id, request.pending)
            if head is None:
                head = await _head(conn)
        accepted = list(dict.fromkeys(op.op_id for op in valid))
        return PushResponse(accepted=accepted, rejected=rejected, head=head)


def _check_batch(
    raws: Sequence[dict[str, Any]], body: bytes | None, device_id: str, now_ms: int, others: frozenset[str]
) -> tuple[list[Operation], list[str], list[Rejected]]:
    """Each pushed operation checked (`_check_pushed`): the valid ones, their JSON, and the refusals.
    `body`, the JSON text `raws` were parsed from, lets a batch valid as a whole skip validating each
    operation as an `Operation` (`aurora.sync.batch.checked_push`)."""
    prebuilt = checked_push(body, raws) if body is not None else [None] * len(raws)
    valid: list[Operation] = []
    texts: list[str] = []
    rejected: list[Rejected] = []
    for index, raw in enumerate(raws):
        checked = _check_pushed(raw, device_id, now_ms, index, others, prebuilt[index])
        if isinstance(checked, Rejected):
            rejected.append(checked)
        else:
            valid.append(checked[0])
            texts.append(checked[1])
    return valid, texts, rejected


async def ingest_on(
    conn: AsyncConnection[Any], ops: Sequence[Operation], texts: Sequence[str] | None = None
) -> tuple[list[Operation], int | None]:
    """Ingest `ops` inside the caller's transaction on `conn`: the new ones in the order given, and the
    new head (None when nothing was new). See the module docstring for the steps and the lock. `texts`,
    when given, are the operations' JSON as the push checked them (`_check_pushed`); else `_op_json`'s."""
    unique: dict[str, tuple[Operation, str | None]] = {}
    for i, op in enumerate(ops):
        if op.op_id not in unique:
            unique[op.op_id] = (op, texts[i] if texts is not None else None)
    if not unique:
        return [], None
    # Each operation as validated (its values as the check returned them: an integer in a float field
    # is stored as a float, as every laptop stores it), not as it was sent.
    batch = [(op, text if text is not None else _op_json(op)) for op, text in unique.values()]
    # Three statements in one round trip (psycopg's pipeline mode): the lock, the insert, and the lock on
    # every entity the batch touches (held ones come back; an entity whose operation turns out to be
    # held already is locked for nothing, which costs less than a second round trip). Under load the
    # node's event loop is busy checking the next batch, and each round trip waited for it.
    keys = sorted({(op.entity, op.entity_id) for op, _ in batch})
    async with conn.pipeline():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (OPS_LOCK,))
        inserted = await conn.execute(_INSERT_OPS, ("[" + ",".join([text for _, text in batch]) + "]",))
        locked = await conn.execute(
            _LOCK_ENTITIES, (_ENCODER.encode([{"entity": k[0], "entity_id": k[1]} for k in keys]),)
        )
    seqs = {op_id: int(seq) for op_id, seq in await inserted.fetchall()}
    new = [(op, text) for op, text in batch if op.op_id in seqs]
    if not new:
        return [], None

    touched = Counter((op.entity, op.entity_id) for op, _ in new)
    states: dict[tuple[str, str], EntityState] = {
        (entity, entity_id): EntityState(values, clocks)
        for entity, entity_id, values, clocks in await locked.fetchall()
    }
    # An entity that is new and set by one operation of the batch is that operation (`merge(None, op)`:
    # its fields, each at its clock): PostgreSQL builds it from the operation's JSON. The others are
    # merged here, with the pure merge.
    fresh: list[Operation] = []
    merged: dict[tuple[str, str], EntityState] = {}
    for op, _text in new:
        key = (op.entity, op.entity_id)
        if touched[key] == 1 and key not in states:
            fresh.append(op)
        else:
            merged[key] = merge(merged.get(key, states.get(key)), op)
    if merged:
        # One `_dumps` per entity: a number that needs writing out in full slows only its own entity.
        upserts = ",".join(
            [
                _dumps({"entity": k[0], "entity_id": k[1], "v": merged[k].values, "c": merged[k].clocks})
                for k in sorted(merged)
            ]
        )
        await conn.execute(_UPSERT_ENTITIES, ("[" + upserts + "]",))
    by_names: dict[tuple[str, ...], list[str]] = {}
    for op in fresh:
        by_names.setdefault(tuple(op.fields), []).append(op.op_id)  # the template sorts them
    for names, op_ids in by_names.items():
        await conn.execute(_INSERT_FRESH_ENTITIES, (clocks_template(names, "@"), op_ids))
    # Under the lock every earlier writer has committed, so the largest new seq is the head.
    head = max(seqs.values())
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(head)))
    return [op for op, _ in new], head


async def _head(conn: AsyncConnection[Any]) -> int:
    cur = await conn.execute("SELECT coalesce(max(seq), 0) FROM ops")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


# --- checking one pushed operation ----------------------------------------------------------------------


def check_pushed(
    raw: dict[str, Any], device_id: str, now_ms: int, index: int, others: frozenset[str] = frozenset()
) -> Operation | Rejected:
    """One raw operation from a push, validated alone: the operation, or why it is refused. `others` are
    the ids of the node's other devices: a device may push its own operations, and those it imported from a
    device the node has never seen (an export file), but never pose as another paired device."""
    checked = _check_pushed(raw, device_id, now_ms, index, others)
    return checked if isinstance(checked, Rejected) else checked[0]


def _check_pushed(
    raw: dict[str, Any],
    device_id: str,
    now_ms: int,
    index: int,
    others: frozenset[str],
    prebuilt: Operation | None = None,
) -> tuple[Operation, str] | Rejected:
    """`check_pushed`, with the operation's JSON as `ingest_on` stores it. `prebuilt` is the operation
    as `aurora.sync.batch.checked_push` built it from `raw` (valid, nothing to convert), when it did.

    The usual operation is valid, so it is validated first and written once, and that text serves the
    size check too: it is as long as the text of what was sent, because it holds the same keys and the
    same values (only an integer in a float field changes, and then what was sent is measured instead).
    An operation that fails validation goes through the checks in their stated order (JSON, size,
    validity), so it is refused for the same reason as ever."""
    op_id = raw.get("op_id")
    held_id = op_id if isinstance(op_id, str) and 0 < len(op_id) <= 64 and _utf8(op_id) else None

    def refuse(code: RejectCode, message: str) -> Rejected:
        return Rejected(
            index=index, op_id=held_id, code=code, message=" ".join(message.split())[:_MAX_MESSAGE]
        )

    op: Operation | None = prebuilt
    if op is None:
        try:
            op = Operation.model_validate(raw)
        except ValidationError as error:
            invalid = error
    try:
        if op is not None:
            # What was sent is what is stored when nothing was converted (the same keys and values).
            text = _dumps(raw) if prebuilt is not None else _op_json(op)
            size = len(text.encode("utf-8"))
            if prebuilt is None and _converted(raw, op):
                size = len(_dumps(raw).encode("utf-8"))
        else:
            text = _dumps(raw)
            size = len(text.encode("utf-8"))
    except ValueError:  # NaN or infinity, or a lone surrogate (UnicodeEncodeError): not storable JSON
        return refuse("invalid_operation", "the operation holds a number or text that is not valid JSON")
    if size > MAX_OP_BYTES:
        return refuse("op_too_large", f"the operation is {size} bytes of JSON; the most is {MAX_OP_BYTES}")
    if op is None:
        first = invalid.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "operation"
        return refuse("invalid_operation", f"{where}: {first['msg']}")
    if "\\u0000" in text and _holds_nul(raw):  # PostgreSQL's text and jsonb cannot hold U+0000
        return refuse("invalid_operation", "the operation's text holds a NUL character (U+0000)")
    if op.device_id != device_id and op.device_id in others:
        return refuse(
            "wrong_device",
            f"made by device {op.device_id!r}, a paired device of its own, and pushed by {device_id!r}: "
            "each paired device pushes its own operations",
        )
    ahead_ms = op.clock.wall_ms - now_ms
    if ahead_ms > MAX_CLOCK_AHEAD_MS:
        return refuse(
            "clock_ahead",
            f"stamped {ahead_ms // 1000} s ahead of the node's clock (the most is "
            f"{MAX_CLOCK_AHEAD_MS // 1000} s); check this device's clock",
        )
    return op, text


def _converted(raw: dict[str, Any], op: Operation) -> bool:
    """Whether validation changed a value (an integer in a float field became a float)."""
    sent = raw.get("fields")
    if not isinstance(sent, dict):
        return True
    kept = op.fields
    return any(type(value) is not type(kept[name]) for name, value in sent.items())


def _utf8(text: str) -> bool:
    """Whether `text` can be sent as UTF-8 (no lone surrogate), as the answer's JSON must be."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False
