-- 0005_schedules: cron schedules, the slots they fired, and executions linked to them.

CREATE TABLE schedules (
    name                  text PRIMARY KEY,
    workflow_name         text NOT NULL,
    cron                  text NOT NULL,
    timezone              text NOT NULL DEFAULT '',
    input                 jsonb NOT NULL DEFAULT 'null',
    queue                 text,                  -- NULL: the workflow's queue
    priority              integer NOT NULL DEFAULT 0,
    enabled               boolean NOT NULL DEFAULT true,
    catch_up              text NOT NULL DEFAULT 'once' CHECK (catch_up IN ('once', 'skip', 'all')),
    catch_up_limit        integer NOT NULL DEFAULT 10,
    overlap               text NOT NULL DEFAULT 'allow'
                            CHECK (overlap IN ('allow', 'skip', 'cancel_previous')),
    max_failures          integer NOT NULL DEFAULT 5,
    next_fire_at          timestamptz,
    last_fire_at          timestamptz,
    last_execution_id     uuid,
    consecutive_failures  integer NOT NULL DEFAULT 0,
    last_error            text,
    disabled_reason       text,
    declared_by           text,                  -- the workflow whose code declares it
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled;
CREATE INDEX schedules_workflow ON schedules (workflow_name);

-- One row per slot a schedule fired (or skipped, or failed to start): a slot fires once.
CREATE TABLE schedule_fires (
    schedule_name  text NOT NULL REFERENCES schedules (name) ON DELETE CASCADE,
    slot           timestamptz NOT NULL,
    outcome        text NOT NULL CHECK (outcome IN ('started', 'skipped', 'failed')),
    execution_id   uuid,
    fired_at       timestamptz NOT NULL,
    PRIMARY KEY (schedule_name, slot)
);

ALTER TABLE executions ADD COLUMN schedule_name text;
ALTER TABLE executions ADD COLUMN schedule_slot timestamptz;
CREATE INDEX executions_schedule ON executions (schedule_name, created_at DESC)
    WHERE schedule_name IS NOT NULL;
