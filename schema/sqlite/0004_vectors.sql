-- Aurora laptop store, version 4: the vector half of search. Like version 3, all of it is derived, local
-- bookkeeping (never synced), rebuilt from the chunks by the embedding worker.

-- One embedding per chunk, made by `model` from the chunk's current text: float32, little-endian, `dim`
-- values (1,536 bytes for all-MiniLM-L6-v2), the layout sqlite-vec's scalar functions read, so
-- `vec_distance_cosine(vector, ?)` works on it in SQL. A plain table rather than a `vec0` virtual table:
-- queries are answered by an in-memory matrix (`aurora.app.search.vectors.VectorIndex`) loaded from here
-- (sqlite-vec's brute force is several times slower than a numpy scan of the same vectors), one indexed
-- SELECT loads it, and no trigger on `chunks` depends on the extension being loaded: a connection without
-- sqlite-vec can still delete a task.
CREATE TABLE chunk_vectors (
    chunk_id INTEGER PRIMARY KEY,
    model    TEXT NOT NULL,
    vector   BLOB NOT NULL
);

-- A vector is only valid for the text it was made from: a deleted chunk, or a chunk whose text changed
-- (the indexer then also sets `chunks.embedded_model` to NULL), loses its vector in the same transaction.
CREATE TRIGGER chunk_vectors_chunk_delete AFTER DELETE ON chunks BEGIN
    DELETE FROM chunk_vectors WHERE chunk_id = old.id;
END;

CREATE TRIGGER chunk_vectors_chunk_text AFTER UPDATE OF text ON chunks WHEN old.text IS NOT new.text BEGIN
    DELETE FROM chunk_vectors WHERE chunk_id = old.id;
END;

-- Every change to a vector, or to the filter columns of an embedded chunk, in commit order: an in-memory
-- index remembers the last `seq` it has seen and replays what came after (from this process or another
-- one, such as the CLI beside the TUI), so it stays in step with every write without reloading. The
-- embedding worker trims old entries; an index that fell behind the trimmed part reloads in full
-- (`meta.vector_log_trimmed` is the last `seq` removed). Plain rowids: trimming always keeps the newest
-- entry, so `seq` never goes back.
CREATE TABLE vector_log (
    seq      INTEGER PRIMARY KEY,
    chunk_id INTEGER NOT NULL
);

CREATE TRIGGER vector_log_insert AFTER INSERT ON chunk_vectors BEGIN
    INSERT INTO vector_log (chunk_id) VALUES (new.chunk_id);
END;

CREATE TRIGGER vector_log_update AFTER UPDATE ON chunk_vectors BEGIN
    INSERT INTO vector_log (chunk_id) VALUES (new.chunk_id);
END;

CREATE TRIGGER vector_log_delete AFTER DELETE ON chunk_vectors BEGIN
    INSERT INTO vector_log (chunk_id) VALUES (old.chunk_id);
END;

CREATE TRIGGER vector_log_chunk_filters AFTER UPDATE OF occurred_at, source ON chunks
WHEN (old.occurred_at IS NOT new.occurred_at OR old.source IS NOT new.source)
     AND EXISTS (SELECT 1 FROM chunk_vectors WHERE chunk_id = new.id)
BEGIN
    INSERT INTO vector_log (chunk_id) VALUES (new.id);
END;

-- The worker's claim: chunks not embedded by the current model (NULL ones through `chunks_unembedded`,
-- those of another model through this index), and `progress()`'s count of those that are.
CREATE INDEX chunks_by_model ON chunks (embedded_model) WHERE embedded_model IS NOT NULL;
