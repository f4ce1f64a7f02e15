-- 0004_waits: sleeps, event waits (one, any, all), human inputs, and events kept for later.

ALTER TABLE waits DROP CONSTRAINT waits_kind_check;
ALTER TABLE waits ADD CONSTRAINT waits_kind_check
    CHECK (kind IN ('child', 'sleep', 'event', 'input'));
ALTER TABLE waits ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE waits ADD COLUMN deadline_at timestamptz;
-- Event waits: the names, and which of them end the wait.
ALTER TABLE waits ADD COLUMN event_names text[];
ALTER TABLE waits ADD COLUMN mode text CHECK (mode IN ('one', 'any', 'all'));
-- The payloads an 'all' wait has received so far, by event name.
ALTER TABLE waits ADD COLUMN received jsonb NOT NULL DEFAULT '{}';
-- Human inputs: the name (unique among an execution's pending inputs) and what is asked.
ALTER TABLE waits ADD COLUMN input_name text;
ALTER TABLE waits ADD COLUMN input_spec jsonb;
CREATE UNIQUE INDEX waits_input_name ON waits (execution_id, input_name)
    WHERE input_name IS NOT NULL;
CREATE INDEX waits_kind_created ON waits (kind, id);

-- Events sent to an execution that no wait has taken yet (taken ones are deleted).
CREATE TABLE events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id  uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    name          text NOT NULL,
    payload       jsonb NOT NULL,
    sent_at       timestamptz NOT NULL
);
CREATE INDEX events_execution_name ON events (execution_id, name, id);
