-- Aurora laptop store, version 6: conversations with the assistant, their messages, and actions queued for
-- whoever can carry them out (a question asked with no model in reach). All three sync.
CREATE TABLE conversations (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL DEFAULT '',
    personality  TEXT NOT NULL DEFAULT 'robbie',
    created_at   TEXT NOT NULL DEFAULT '',
    updated_at   TEXT NOT NULL DEFAULT '',
    deleted      INTEGER NOT NULL DEFAULT 0,
    field_clocks TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX conversations_recent ON conversations (deleted, updated_at);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL DEFAULT '',
    role            TEXT NOT NULL DEFAULT 'user',
    text            TEXT NOT NULL DEFAULT '',
    position        INTEGER NOT NULL DEFAULT 0,
    personality     TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL DEFAULT 'done',
    error           TEXT NOT NULL DEFAULT '',
    sources         TEXT NOT NULL DEFAULT '[]',
    model           TEXT NOT NULL DEFAULT '',
    local           INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL DEFAULT '',
    updated_at      TEXT NOT NULL DEFAULT '',
    deleted         INTEGER NOT NULL DEFAULT 0,
    field_clocks    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, position);

CREATE TABLE actions (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL DEFAULT 'ask',
    status       TEXT NOT NULL DEFAULT 'queued',
    payload      TEXT NOT NULL DEFAULT '{}',
    error        TEXT NOT NULL DEFAULT '',
    done_by      TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL DEFAULT '',
    updated_at   TEXT NOT NULL DEFAULT '',
    deleted      INTEGER NOT NULL DEFAULT 0,
    field_clocks TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX actions_by_status ON actions (status, created_at);

-- The op log's entity check names the kinds it takes; SQLite cannot alter a CHECK, so the table is rebuilt
-- with the wider list (same columns, same rows, same seq numbers), as in version 2.
CREATE TABLE ops_v6 (
    seq       INTEGER PRIMARY KEY,
    op_id     TEXT NOT NULL UNIQUE,
    device_id TEXT NOT NULL,
    hlc       TEXT NOT NULL,
    entity    TEXT NOT NULL CHECK (entity IN (
        'task', 'note', 'item', 'person', 'interaction', 'conversation', 'message', 'action'
    )),
    entity_id TEXT NOT NULL,
    fields    TEXT NOT NULL,
    from_node INTEGER NOT NULL DEFAULT 0
);
INSERT INTO ops_v6 (seq, op_id, device_id, hlc, entity, entity_id, fields, from_node)
    SELECT seq, op_id, device_id, hlc, entity, entity_id, fields, from_node FROM ops;
DROP TABLE ops;
ALTER TABLE ops_v6 RENAME TO ops;
