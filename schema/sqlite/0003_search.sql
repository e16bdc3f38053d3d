-- Aurora laptop store, version 3: keyword search (FTS5) over chunks of every searchable entity.
-- All of it is derived, local bookkeeping (never synced): each replica builds it from its own rows, and
-- `aurora.app.search.indexer.Indexer.rebuild` can throw it away and make it again.

-- What has to be (re)indexed. Triggers on the entity tables fill it in the same transaction as the write,
-- whoever made it (CLI, TUI, an import, sync), so the index can never miss a change, and a process killed
-- before indexing leaves the work here for the next one. The indexer empties it (`Indexer.drain`).
CREATE TABLE search_queue (
    kind      TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    PRIMARY KEY (kind, entity_id)
) WITHOUT ROWID;

-- Searchable text, cut into passages of about 800 characters (`aurora.app.search.chunking`). `occurred_at`
-- and `source` are copied from the entity so filters need no join. `embedded_model` is the embedding
-- model whose vector for this chunk is current, NULL while the chunk still has to be embedded: the
-- embedding worker reads `chunks_unembedded`, and a changed text sets it back to NULL.
CREATE TABLE chunks (
    id             INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL,
    entity_id      TEXT NOT NULL,
    ord            INTEGER NOT NULL,
    text           TEXT NOT NULL,
    occurred_at    TEXT,
    source         TEXT,
    embedded_model TEXT,
    UNIQUE (kind, entity_id, ord)
);
CREATE INDEX chunks_by_time ON chunks (occurred_at) WHERE occurred_at IS NOT NULL;
CREATE INDEX chunks_unembedded ON chunks (id) WHERE embedded_model IS NULL;

-- The full-text index reads its text from `chunks` (external content): the text is stored once, and
-- snippet() still works. The triggers below keep it in step in the same transaction as every change to
-- `chunks`, whoever writes them. The prefix indexes serve the last, half-typed word of a query: a two-letter
-- prefix over 40,000 chunks took 500 ms without them, 150 ms with (index about 1.5x the size).
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text,
    content = 'chunks',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text);
END;

CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;

CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text);
END;

-- Queue every entity whose searchable text or filter columns change. `UPDATE OF` names only the columns
-- `aurora.app.search.chunking` reads (SEARCHED_COLUMNS, checked by a test), so moving a task around the
-- matrix (position, quadrant) queues nothing. The store's UPDATE sets only the fields an operation won.
CREATE TRIGGER tasks_search_insert AFTER INSERT ON tasks BEGIN
    INSERT OR IGNORE INTO search_queue (kind, entity_id) VALUES ('task', new.id);
END;
CREATE TRIGGER tasks_search_update AFTER UPDATE OF title, notes, tags, source, created_at, deleted ON tasks
BEGIN
    INSERT OR IGNORE INTO search_queue (kind, entity_id) VALUES ('task', new.id);
END;

CREATE TRIGGER notes_search_insert AFTER INSERT ON notes BEGIN
    INSERT OR IGNORE INTO search_queue (kind, entity_id) VALUES ('note', new.id);
END;
CREATE TRIGGER notes_search_update AFTER UPDATE OF body, tags, created_at, deleted ON notes BEGIN
    INSERT OR IGNORE INTO search_queue (kind, entity_id) VALUES ('note', new.id);
END;

CREATE TRIGGER items_search_insert AFTER INSERT ON items BEGIN
    INSERT OR IGNORE INTO search_queue (kind, entity_id) VALUES ('item', new.id);
END;
CREATE TRIGGER items_search_update
    AFTER UPDATE OF kind, source, title, body, occurred_at, participants, extra, deleted ON items
BEGIN
    INSERT OR IGNORE INTO search_queue (kind, entity_id) VALUES ('item', new.id);
END;

CREATE TRIGGER people_search_insert AFTER INSERT ON people BEGIN
    INSERT OR IGNORE INTO search_queue (kind, entity_id) VALUES ('person', new.id);
END;
CREATE TRIGGER people_search_update AFTER UPDATE OF name, emails, org, job_title, notes, deleted ON people
BEGIN
    INSERT OR IGNORE INTO search_queue (kind, entity_id) VALUES ('person', new.id);
END;

-- A workspace made before search: everything already there is queued, so upgrading indexes it.
INSERT OR IGNORE INTO search_queue (kind, entity_id) SELECT 'task', id FROM tasks WHERE deleted = 0;
INSERT OR IGNORE INTO search_queue (kind, entity_id) SELECT 'note', id FROM notes WHERE deleted = 0;
INSERT OR IGNORE INTO search_queue (kind, entity_id) SELECT 'item', id FROM items WHERE deleted = 0;
INSERT OR IGNORE INTO search_queue (kind, entity_id) SELECT 'person', id FROM people WHERE deleted = 0;
