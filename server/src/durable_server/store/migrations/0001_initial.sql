-- 0001_initial: workflows, executions, step attempts, the task queue, timers and workers.
-- Runs with search_path set to the instance's schema, so names are unqualified.

CREATE TABLE workflow_versions (
    version     text PRIMARY KEY,           -- sha256 of the definition
    name        text NOT NULL,
    definition  bytea NOT NULL,             -- durable.v1.WorkflowDefinition
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workflows (
    name            text PRIMARY KEY,
    latest_version  text NOT NULL REFERENCES workflow_versions (version),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workers (
    id            text PRIMARY KEY,
    versions      text[] NOT NULL DEFAULT '{}',
    queues        text[] NOT NULL DEFAULT '{}',
    started_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE executions (
    id                uuid PRIMARY KEY,
    workflow_name     text NOT NULL,
    workflow_version  text NOT NULL REFERENCES workflow_versions (version),
    status            text NOT NULL CHECK (status IN
                        ('pending', 'running', 'waiting', 'completed', 'failed', 'cancelled', 'timed_out')),
    queue             text NOT NULL,
    priority          integer NOT NULL DEFAULT 0,
    input             jsonb NOT NULL,
    result            jsonb,
    error             jsonb,
    parent_id         uuid REFERENCES executions (id) ON DELETE SET NULL,
    idempotency_key   text,
    created_at        timestamptz NOT NULL,
    scheduled_at      timestamptz,
    started_at        timestamptz,
    finished_at       timestamptz,
    deadline_at       timestamptz
);
CREATE UNIQUE INDEX executions_idempotency_key ON executions (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX executions_created ON executions (created_at DESC, id DESC);
CREATE INDEX executions_workflow_created ON executions (workflow_name, created_at DESC);
CREATE INDEX executions_active_status ON executions (status)
    WHERE status IN ('pending', 'running', 'waiting');
CREATE INDEX executions_parent ON executions (parent_id) WHERE parent_id IS NOT NULL;

-- One row per finished attempt at a step run. The primary key records a result once.
CREATE TABLE step_attempts (
    execution_id  uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    sequence      integer NOT NULL,
    attempt       integer NOT NULL,
    step_name     text NOT NULL,
    status        text NOT NULL CHECK (status IN ('completed', 'failed', 'lost', 'timed_out')),
    result        jsonb,
    error         jsonb,
    worker_id     text,
    started_at    timestamptz,
    finished_at   timestamptz NOT NULL,
    retry_at      timestamptz,
    PRIMARY KEY (execution_id, sequence, attempt)
);

-- The hot queue: only work that is ready or leased lives here; finished tasks are deleted.
CREATE TABLE tasks (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id      uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    sequence          integer NOT NULL,
    step_name         text NOT NULL,
    attempt           integer NOT NULL DEFAULT 1,
    failures          integer NOT NULL DEFAULT 0,
    losses            integer NOT NULL DEFAULT 0,
    queue             text NOT NULL,
    priority          integer NOT NULL,
    workflow_version  text NOT NULL,
    timeout_secs      double precision,
    input             jsonb NOT NULL,
    status            text NOT NULL CHECK (status IN ('ready', 'leased')),
    available_at      timestamptz NOT NULL,
    lease_token       uuid,
    leased_at         timestamptz,
    lease_expires_at  timestamptz,
    worker_id         text,
    UNIQUE (execution_id, sequence)
) WITH (fillfactor = 70);
CREATE INDEX tasks_ready ON tasks (queue, priority DESC, available_at, id) WHERE status = 'ready';
CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE status = 'leased';
CREATE INDEX tasks_leased_queue ON tasks (queue) WHERE status = 'leased';

-- Every future thing is a row with a due time, fired by the timer loop.
CREATE TABLE timers (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id  uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('execution_timeout')),
    due_at        timestamptz NOT NULL,
    UNIQUE (execution_id, kind)
);
CREATE INDEX timers_due ON timers (due_at);
