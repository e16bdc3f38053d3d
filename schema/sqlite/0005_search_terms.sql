-- Aurora laptop store, version 5: word statistics for loose queries, and dates in items' searchable text.
-- Derived, local bookkeeping like versions 3 and 4 (never synced).

-- How many chunks hold each word (`doc`), read straight from the FTS5 index: a question in a person's own
-- words is matched on its rarer words only (`aurora.app.search.keyword.loose_query`), as a word that most
-- chunks hold adds little to BM25 and costs the most to rank.
CREATE VIRTUAL TABLE chunks_vocab USING fts5vocab(chunks_fts, 'row');

-- An item's searchable text now ends with the day it happened ("When: Saturday 22 February 2022"), as
-- people recall mail and meetings by when they were. Queue every item to be chunked again; the chunks whose
-- text changes lose their vectors (migration 0004's triggers) and are embedded again in the background.
INSERT OR IGNORE INTO search_queue (kind, entity_id) SELECT 'item', id FROM items;
