-- aurora-node, version 5: the node embeds what it stores (aurora.node.embed_jobs).
CREATE EXTENSION IF NOT EXISTS vector;

-- What of each entity is embedded: the fields `aurora.app.search.chunking.SEARCHED_COLUMNS` names (a test
-- checks they agree), as one jsonb array; NULL for a kind that is not searched. A change to any other field
-- (a task moved on the matrix, marked done) enqueues nothing. Written as one SQL expression so the planner
-- inlines it into the triggers below.
CREATE FUNCTION aurora_searched(kind text, v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE kind
        WHEN 'task' THEN jsonb_build_array(
            v -> 'title', v -> 'notes', v -> 'tags', v -> 'source', v -> 'created_at', v -> 'deleted')
        WHEN 'note' THEN jsonb_build_array(v -> 'body', v -> 'tags', v -> 'created_at', v -> 'deleted')
        WHEN 'item' THEN jsonb_build_array(
            v -> 'kind', v -> 'source', v -> 'title', v -> 'body', v -> 'occurred_at', v -> 'participants',
            v -> 'extra', v -> 'deleted')
        WHEN 'person' THEN jsonb_build_array(
            v -> 'name', v -> 'emails', v -> 'org', v -> 'job_title', v -> 'notes', v -> 'deleted')
    END
$$;

-- The queue: one row per entity whose vectors are due. A worker claims rows with
-- `FOR UPDATE SKIP LOCKED` and holds the claim as a lease (`locked_until`, `claimed_by`) rather than as a
-- row lock, so a push that changes an entity being embedded never waits for the model; a killed worker's
-- lease runs out and the row is claimable again. `version` grows with each change while the row is
-- queued: a worker removes the row only at the version it read, so a change made during its embedding is
-- embedded again. `attempts` counts claims since the last change; past the worker's cap the row stays,
-- parked, with `last_error`, until the entity changes again; a change also ends a failed row's wait for
-- its retry (a row being embedded keeps its lease).
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
CREATE INDEX embed_jobs_order ON embed_jobs (enqueued_at);

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
    WHERE aurora_searched(n.entity, n."values") IS NOT NULL
    ORDER BY n.entity, n.entity_id
    ON CONFLICT (entity, entity_id) DO UPDATE
        SET version = embed_jobs.version + 1, attempts = 0, last_error = NULL,
            locked_until = CASE WHEN embed_jobs.claimed_by IS NULL THEN NULL ELSE embed_jobs.locked_until END;
    RETURN NULL;
END
$$;

CREATE FUNCTION aurora_enqueue_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO embed_jobs (entity, entity_id)
    SELECT n.entity, n.entity_id
    FROM updated AS n JOIN replaced AS o USING (entity, entity_id)
    WHERE aurora_searched(n.entity, n."values") IS DISTINCT FROM aurora_searched(o.entity, o."values")
    ORDER BY n.entity, n.entity_id
    ON CONFLICT (entity, entity_id) DO UPDATE
        SET version = embed_jobs.version + 1, attempts = 0, last_error = NULL,
            locked_until = CASE WHEN embed_jobs.claimed_by IS NULL THEN NULL ELSE embed_jobs.locked_until END;
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
SELECT entity, entity_id FROM entities WHERE aurora_searched(entity, "values") IS NOT NULL;
