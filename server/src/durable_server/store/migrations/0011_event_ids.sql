-- 0011_event_ids: the ids of the events each execution has received, so a send that is
-- retried with the same id (after a lost answer, say) is not delivered twice.
CREATE TABLE event_receipts (
    execution_id  uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    event_id      text NOT NULL,
    delivered     boolean NOT NULL,
    received_at   timestamptz NOT NULL,
    PRIMARY KEY (execution_id, event_id)
);
