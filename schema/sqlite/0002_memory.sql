-- Aurora laptop store, version 2: memory. Imported items, people, and who took part in what.
-- Like tasks and notes, rows change only through operations and are never removed (`deleted` is a field).

CREATE TABLE items (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL DEFAULT 'mail',
    source       TEXT NOT NULL DEFAULT '',
    external_id  TEXT NOT NULL DEFAULT '',
    title        TEXT NOT NULL DEFAULT '',
    body         TEXT NOT NULL DEFAULT '',
    occurred_at  TEXT,
    ends_at      TEXT,
    thread_id    TEXT,
    participants TEXT NOT NULL DEFAULT '[]',
    extra        TEXT NOT NULL DEFAULT '{}',
    created_at   TEXT NOT NULL DEFAULT '',
    updated_at   TEXT NOT NULL DEFAULT '',
    deleted      INTEGER NOT NULL DEFAULT 0,
    field_clocks TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX items_by_time ON items (deleted, occurred_at);
CREATE INDEX items_by_thread ON items (thread_id) WHERE thread_id IS NOT NULL;

CREATE TABLE people (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL DEFAULT '',
    emails       TEXT NOT NULL DEFAULT '[]',
    phones       TEXT NOT NULL DEFAULT '[]',
    org          TEXT NOT NULL DEFAULT '',
    job_title    TEXT NOT NULL DEFAULT '',
    vip          INTEGER NOT NULL DEFAULT 0,
    notes        TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL DEFAULT '',
    updated_at   TEXT NOT NULL DEFAULT '',
    deleted      INTEGER NOT NULL DEFAULT 0,
    field_clocks TEXT NOT NULL DEFAULT '{}'
);

-- Which person an e-mail address belongs to: a lookup kept in step with people.emails by the importer
-- (derived, so not synced: each replica rebuilds it from its own people rows).
CREATE TABLE person_emails (
    email     TEXT PRIMARY KEY,
    person_id TEXT NOT NULL
) WITHOUT ROWID;

-- What each imported row looked like in its source when last imported (a hash), so importing the same
-- file again writes nothing, even where the person has since edited the row here. Local bookkeeping.
CREATE TABLE import_hashes (
    entity_id   TEXT PRIMARY KEY,
    record_hash TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE interactions (
    id           TEXT PRIMARY KEY,
    person_id    TEXT NOT NULL DEFAULT '',
    item_id      TEXT NOT NULL DEFAULT '',
    kind         TEXT NOT NULL DEFAULT 'mail_in',
    occurred_at  TEXT,
    created_at   TEXT NOT NULL DEFAULT '',
    updated_at   TEXT NOT NULL DEFAULT '',
    deleted      INTEGER NOT NULL DEFAULT 0,
    field_clocks TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX interactions_by_person ON interactions (person_id, occurred_at);

-- The op log's entity check named only tasks and notes; SQLite cannot alter a CHECK, so the table is
-- rebuilt with the wider list (same columns, same rows, same seq numbers).
CREATE TABLE ops_v2 (
    seq       INTEGER PRIMARY KEY,
    op_id     TEXT NOT NULL UNIQUE,
    device_id TEXT NOT NULL,
    hlc       TEXT NOT NULL,
    entity    TEXT NOT NULL CHECK (entity IN ('task', 'note', 'item', 'person', 'interaction')),
    entity_id TEXT NOT NULL,
    fields    TEXT NOT NULL,
    from_node INTEGER NOT NULL DEFAULT 0
);
INSERT INTO ops_v2 (seq, op_id, device_id, hlc, entity, entity_id, fields, from_node)
    SELECT seq, op_id, device_id, hlc, entity, entity_id, fields, from_node FROM ops;
DROP TABLE ops;
ALTER TABLE ops_v2 RENAME TO ops;
