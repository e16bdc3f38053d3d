"""Operations, the hybrid logical clock and the pure merge: the part of sync both sides share.

Nothing here does I/O. The laptop store and (later) the node's PostgreSQL store call `merge` to apply an
operation to a row, so any two replicas that have seen the same operations hold the same state.

Invariants (the ones the property tests check):

1. An operation is immutable and identified by its `op_id`; applying it twice changes nothing.
2. For each field, the value held is the one set by the operation with the greatest HLC among those seen.
3. HLCs are unique per operation (they include the device id and a per-device counter), so "greatest" is
   a total order and no two operations tie.
4. Therefore the state after applying any set of operations, in any order, with duplicates, is the same.
"""

from aurora.sync.clock import Hlc, HybridClock
from aurora.sync.merge import EntityState, merge, winners
from aurora.sync.ops import Operation, new_id

__all__ = ["EntityState", "Hlc", "HybridClock", "Operation", "merge", "new_id", "winners"]
