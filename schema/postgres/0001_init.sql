-- aurora-node, version 1: the operation log, the node's replica state, and the device registry.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at text NOT NULL
);

-- Every operation the node holds, once each (unique op_id). `seq` is the server order laptops pull in:
-- it is assigned under one advisory lock held until commit (see aurora.node.oplog), so a reader that
-- sees seq N has already been able to see every smaller seq that will ever exist. Rows never change.
CREATE TABLE ops (
    seq         bigserial PRIMARY KEY,
    op_id       text NOT NULL UNIQUE,
    device_id   text NOT NULL,
    hlc         text NOT NULL,
    entity      text NOT NULL CHECK (entity IN ('task', 'note', 'item', 'person', 'interaction')),
    entity_id   text NOT NULL,
    fields      jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- The node's replica: each entity's field values and the HLC that last set each field, written only by
-- folding operations through aurora.sync.merge (pure), so it equals the state of every laptop that has
-- seen the same operations.
CREATE TABLE entities (
    entity    text NOT NULL,
    entity_id text NOT NULL,
    "values"  jsonb NOT NULL,
    clocks    jsonb NOT NULL,
    PRIMARY KEY (entity, entity_id)
);

-- The registry of devices. `cursor` is the last seq a device reported having pulled, so its lag is
-- head - cursor; `pending_ops` is what it said it still holds unpushed.
CREATE TABLE devices (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    last_seen   timestamptz,
    version     text,
    pending_ops bigint NOT NULL DEFAULT 0,
    cursor      bigint NOT NULL DEFAULT 0
);
