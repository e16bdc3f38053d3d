-- aurora-node, version 4: conversations with the assistant, their messages, and queued actions sync like
-- everything else, so the operation log takes their entity kinds too.
ALTER TABLE ops DROP CONSTRAINT ops_entity_check;
ALTER TABLE ops ADD CONSTRAINT ops_entity_check CHECK (
    entity IN ('task', 'note', 'item', 'person', 'interaction', 'conversation', 'message', 'action')
);
-- The node's action processor finds queued work without reading every entity.
CREATE INDEX entities_queued_actions ON entities (entity_id)
    WHERE entity = 'action' AND "values" ->> 'status' = 'queued';
