-- Aurora laptop store, version 1: tasks, sticky notes, and the operation log (transactional outbox).
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
);

-- Key/value facts about this replica: its device id, the last hybrid-clock value it issued.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Rows are never removed on delete: `deleted` is a field, merged like the others, so a later operation
-- from another device merges against the right state. `field_clocks` maps each field to the HLC of the
-- operation that last set it (JSON object), which is what last-writer-wins compares.
CREATE TABLE tasks (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL DEFAULT '',
    notes        TEXT NOT NULL DEFAULT '',
    due          TEXT,
    urgent       INTEGER NOT NULL DEFAULT 0,
    important    INTEGER NOT NULL DEFAULT 0,
    urgency      REAL NOT NULL DEFAULT 0,
    importance   REAL NOT NULL DEFAULT 0,
    quadrant     INTEGER NOT NULL DEFAULT 4 CHECK (quadrant BETWEEN 1 AND 4),
    manual       INTEGER NOT NULL DEFAULT 0,
    position     REAL NOT NULL DEFAULT 0,
    status       TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
    completed_at TEXT,
    tags         TEXT NOT NULL DEFAULT '[]',
    source       TEXT NOT NULL DEFAULT 'manual',
    created_at   TEXT NOT NULL DEFAULT '',
    updated_at   TEXT NOT NULL DEFAULT '',
    deleted      INTEGER NOT NULL DEFAULT 0,
    field_clocks TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX tasks_by_quadrant ON tasks (deleted, quadrant, position);
-- Covers the per-quadrant counts of open tasks the matrix and status bar show, without reading rows.
CREATE INDEX tasks_open_counts ON tasks (deleted, status, quadrant);

CREATE TABLE notes (
    id           TEXT PRIMARY KEY,
    body         TEXT NOT NULL DEFAULT '',
    colour       TEXT NOT NULL DEFAULT 'yellow',
    pinned       INTEGER NOT NULL DEFAULT 0,
    tags         TEXT NOT NULL DEFAULT '[]',
    created_at   TEXT NOT NULL DEFAULT '',
    updated_at   TEXT NOT NULL DEFAULT '',
    deleted      INTEGER NOT NULL DEFAULT 0,
    field_clocks TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX notes_by_pin ON notes (deleted, pinned, updated_at);

-- The operation log. `seq` is this replica's local order of arrival (rows are never deleted, so the
-- rowid only grows: no AUTOINCREMENT bookkeeping on every insert); `hlc` is the total order used for
-- merging. What still has to reach the node is every operation after the `pushed_through` seq in `meta`
-- that did not come from the node: sync (a later issue) pushes in seq order and moves that cursor, so the
-- status bar counts pending operations with a range scan and no index of its own. Every index here costs
-- a page write per change: only the one a query needs (dedup by op_id) exists.
CREATE TABLE ops (
    seq       INTEGER PRIMARY KEY,
    op_id     TEXT NOT NULL UNIQUE,
    device_id TEXT NOT NULL,
    hlc       TEXT NOT NULL,
    entity    TEXT NOT NULL CHECK (entity IN ('task', 'note')),
    entity_id TEXT NOT NULL,
    fields    TEXT NOT NULL,
    from_node INTEGER NOT NULL DEFAULT 0
);
INSERT INTO meta (key, value) VALUES ('pushed_through', '0');
