-- aurora-node, version 5: the node embeds what it stores (aurora.node.embed_jobs).
CREATE EXTENSION IF NOT EXISTS vector;

-- Whether an update changed what of an entity is embedded: the fields
-- `aurora.app.search.chunking.SEARCHED_COLUMNS` names (a test checks they agree); false for a kind that is
-- not searched. A change to any other field (a task moved on the matrix, marked done) queues nothing. One
-- SQL expression, inlined into the trigger; a chain of comparisons stops at the first difference and
-- builds nothing (comparing two jsonb arrays of the fields cost four times as much).
CREATE FUNCTION aurora_searched_changed(kind text, n jsonb, o jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE kind
        WHEN 'task' THEN
            n -> 'title' IS DISTINCT FROM o -> 'title'
            OR n -> 'notes' IS DISTINCT FROM o -> 'notes'
            OR n -> 'tags' IS DISTINCT FROM o -> 'tags'
            OR n -> 'source' IS DISTINCT FROM o -> 'source'
            OR n -> 'created_at' IS DISTINCT FROM o -> 'created_at'
            OR n -> 'deleted' IS DISTINCT FROM o -> 'deleted'
        WHEN 'note' THEN
            n -> 'body' IS DISTINCT FROM o -> 'body'
            OR n -> 'tags' IS DISTINCT FROM o -> 'tags'
            OR n -> 'created_at' IS DISTINCT FROM o -> 'created_at'
            OR n -> 'deleted' IS DISTINCT FROM o -> 'deleted'
        WHEN 'item' THEN
            n -> 'kind' IS DISTINCT FROM o -> 'kind'
            OR n -> 'source' IS DISTINCT FROM o -> 'source'
            OR n -> 'title' IS DISTINCT FROM o -> 'title'
            OR n -> 'body' IS DISTINCT FROM o -> 'body'
            OR n -> 'occurred_at' IS DISTINCT FROM o -> 'occurred_at'
            OR n -> 'participants' IS DISTINCT FROM o -> 'participants'
            OR n -> 'extra' IS DISTINCT FROM o -> 'extra'
            OR n -> 'deleted' IS DISTINCT FROM o -> 'deleted'
        WHEN 'person' THEN
            n -> 'name' IS DISTINCT FROM o -> 'name'
            OR n -> 'emails' IS DISTINCT FROM o -> 'emails'
            OR n -> 'org' IS DISTINCT FROM o -> 'org'
            OR n -> 'job_title' IS DISTINCT FROM o -> 'job_title'
            OR n -> 'notes' IS DISTINCT FROM o -> 'notes'
            OR n -> 'deleted' IS DISTINCT FROM o -> 'deleted'
        ELSE false
    END
$$;

-- The queue: one row per entity whose vectors are due. A worker claims rows with
-- `FOR UPDATE SKIP LOCKED` and holds the claim as a lease (`locked_until`, `claimed_by`) rather than as a
-- row lock, so a push that changes an entity being embedded never waits for the model; a killed worker's
-- lease runs out and the row is claimable again. A change to an entity whose row is claimed bumps
-- `version`: a worker removes the row only at the version it claimed, so a change made during its
-- embedding is embedded again. (A change to a row that waits unclaimed only locks it until the push
-- commits, so no worker claims it meanwhile: whoever claims it later reads the entity after the claim and
-- sees the change. Nothing is written, which keeps the push cheap.) `attempts` counts claims since the last
-- change; past the worker's cap the row stays, parked, with `last_error`, until the entity changes again;
-- a change also ends a failed row's wait for its retry.
CREATE TABLE embed_jobs (
    entity       text NOT NULL,
    entity_id    text NOT NULL,
    version      bigint NOT NULL DEFAULT 1,
    enqueued_at  timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    claimed_by   uuid,
    locked_until timestamptz,
    PRIMARY KEY (entity, entity_id)
);

-- One vector per chunk of an entity, as `aurora.app.search.chunking` cuts it; `text_hash` (SHA-256 of the
-- chunk's text, hex) lets a laptop use a vector only for a chunk whose text it has too, and lets the worker
-- skip chunks whose text and model are unchanged.
CREATE TABLE chunk_vectors (
    entity      text NOT NULL,
    entity_id   text NOT NULL,
    ord         integer NOT NULL,
    model       text NOT NULL,
    text_hash   text NOT NULL,
    vector      vector(384) NOT NULL,
    embedded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, entity_id, ord)
);

-- Statement-level triggers with transition tables: one INSERT ... SELECT per push batch, whatever its
-- size, in the push's own transaction (so a committed change is always queued). Rows in key order, the
-- order the push locks entities in, so two writers never wait on each other in opposite orders.
CREATE FUNCTION aurora_enqueue_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO embed_jobs (entity, entity_id)
    SELECT n.entity, n.entity_id FROM inserted AS n
    WHERE n.entity IN ('task', 'note', 'item', 'person')
    ORDER BY n.entity, n.entity_id
    ON CONFLICT (entity, entity_id) DO UPDATE
        SET version = embed_jobs.version + 1, attempts = 0, last_error = NULL,
            locked_until = CASE WHEN embed_jobs.claimed_by IS NULL THEN NULL ELSE embed_jobs.locked_until END
        WHERE embed_jobs.attempts > 0 OR embed_jobs.claimed_by IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE FUNCTION aurora_enqueue_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO embed_jobs (entity, entity_id)
    SELECT n.entity, n.entity_id
    FROM updated AS n JOIN replaced AS o USING (entity, entity_id)
    WHERE aurora_searched_changed(n.entity, n."values", o."values")
    ORDER BY n.entity, n.entity_id
    ON CONFLICT (entity, entity_id) DO UPDATE
        SET version = embed_jobs.version + 1, attempts = 0, last_error = NULL,
            locked_until = CASE WHEN embed_jobs.claimed_by IS NULL THEN NULL ELSE embed_jobs.locked_until END
        WHERE embed_jobs.attempts > 0 OR embed_jobs.claimed_by IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER entities_enqueue_inserted AFTER INSERT ON entities
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION aurora_enqueue_inserted();
CREATE TRIGGER entities_enqueue_updated AFTER UPDATE ON entities
    REFERENCING OLD TABLE AS replaced NEW TABLE AS updated
    FOR EACH STATEMENT EXECUTE FUNCTION aurora_enqueue_updated();

-- What the node already holds is embedded too.
INSERT INTO embed_jobs (entity, entity_id)
SELECT entity, entity_id FROM entities WHERE entity IN ('task', 'note', 'item', 'person');
