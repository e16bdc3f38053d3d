"""The wire protocol between a laptop and the node, and the interfaces both sides' logs implement.

Push: the laptop sends its unacknowledged operations in batches (`PushRequest`). The node validates each
operation on its own (a corrupt one is refused alone, with a stable code, and the rest are stored), stores
each new one once (unique `op_id`), gives it a server sequence number, applies it with the pure merge, and
answers with the ids it holds now (`PushResponse.accepted`: stored now or before, so a retried batch is
acknowledged again and changes nothing). The laptop then moves its push cursor past every operation of
the batch that was accepted or refused for good.

Pull: the laptop asks for the operations after its cursor (`GET /v1/ops?after=N&limit=M`); the node answers
in server order, leaving out the asking device's own (it has them) but moving the cursor past them. The
laptop applies them and moves its cursor in one transaction.

Live: the node's WebSocket sends `Announce` messages ("operations up to seq N exist"); the laptop pulls then.

Everything here is a pydantic model with limits: both sides validate what they receive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aurora.schema import EntityKind
from aurora.sync.merge import EntityState
from aurora.sync.ops import Operation

PROTOCOL_VERSION = 1
MAX_BATCH = 2000
"""Most operations in one push or pull. A full batch of typical operations is about a megabyte of JSON
(1.2 MB for 2,000 new tasks), well below the node's body limit (8 MB); a push of unusually large ones is
halved until it fits."""
MAX_OP_BYTES = 256 * 1024
"""Largest operation (its JSON) the node accepts; a bigger one is refused alone (`op_too_large`)."""
MAX_CLOCK_AHEAD_MS = 5 * 60 * 1000
"""An operation stamped further ahead of the receiver's clock than this is refused (`clock_ahead`):
accepting it would drag every replica's clock ahead with it."""

RejectCode = Literal["invalid_operation", "op_too_large", "clock_ahead", "wrong_device"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PushRequest(_Model):
    """A batch of operations, as raw objects: each is validated alone, so one corrupt operation does not
    sink the batch."""

    ops: list[dict[str, Any]] = Field(max_length=MAX_BATCH)
    pending: int = Field(default=0, ge=0, le=10**9)

    @field_validator("pending", mode="before")
    @classmethod
    def _a_count(cls, value: Any) -> Any:
        """A JSON number with no fraction (JSON Schema's integer: 7 or 7.0); not a string or a boolean,
        which pydantic's lax mode would otherwise turn into a number."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("pending is a whole number")
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("pending is a whole number")
        return int(value)

    """Operations the device still holds unpushed after this batch (for the registry)."""


class Rejected(_Model):
    index: int = Field(ge=0)
    """Position in the batch."""
    op_id: str | None = Field(default=None, max_length=64)
    code: RejectCode
    message: str = Field(max_length=500)


class PushResponse(_Model):
    accepted: list[str] = Field(max_length=MAX_BATCH)
    """Ids of the batch's operations the node now holds (new or already seen)."""
    rejected: list[Rejected] = Field(default_factory=list, max_length=MAX_BATCH)
    head: int = Field(ge=0)
    """The node's newest sequence number."""


class PulledOp(_Model):
    seq: int = Field(ge=1)
    op: Operation


class PullResponse(_Model):
    ops: list[PulledOp] = Field(max_length=MAX_BATCH)
    cursor: int = Field(ge=0)
    """Ask after this next time (past the asker's own operations too)."""
    head: int = Field(ge=0)
    more: bool
    """Whether operations after `cursor` remain (pull again at once)."""


class Announce(_Model):
    """A WebSocket message from the node: operations up to `head` exist."""

    type: Literal["head"] = "head"
    head: int = Field(ge=0)


class ActionLog(Protocol):
    """An operation log with its replica's state, as both sides keep one: the laptop's SQLite store and the
    node's PostgreSQL store. The same contract tests run against both (`tests/sync/test_action_log.py`).

    - `ingest` stores and applies, in one transaction, each operation not seen before (by `op_id`),
      through the pure merge; it returns those that were new, in the order given. Ingesting the same
      operations again changes nothing and returns [].
    - `after(cursor, limit)` lists the log's operations with a local sequence number above `cursor`, in
      that order, as (seq, operation); sequence numbers only grow, and a listed operation never changes.
    - `head()` is the largest sequence number (0 for an empty log).
    - `state(entity, entity_id)` is the replica's current state of one entity (None if never seen).
    """

    async def ingest(self, ops: Sequence[Operation]) -> list[Operation]: ...

    async def after(self, cursor: int, limit: int) -> list[tuple[int, Operation]]: ...

    async def head(self) -> int: ...

    async def state(self, entity: EntityKind, entity_id: str) -> EntityState | None: ...
