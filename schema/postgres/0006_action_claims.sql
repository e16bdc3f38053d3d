-- aurora-node, version 6: the node answers questions laptops queued (aurora.node.answers).
-- A claim is a lease, not a held row lock: the processor stamps an action here before it asks a model and
-- removes the row once the answer is written (or no model was in reach), so no push ever waits for a model
-- and two node processes never answer the same action at once. A killed processor's lease runs out
-- (`locked_until`) and the action is claimed again; one that failed unexpectedly keeps its lease, with the
-- reason in `last_error`, as a wait before the next try.
CREATE TABLE action_claims (
    action_id    text PRIMARY KEY,
    claimed_by   uuid NOT NULL,
    locked_until timestamptz NOT NULL,
    attempts     integer NOT NULL DEFAULT 1,
    last_error   text
);
