-- name: workflow_version_insert
-- Store a definition version; returns true when it was new.
INSERT INTO workflow_versions (version, name, definition)
VALUES ($1, $2, $3)
ON CONFLICT (version) DO NOTHING
RETURNING true AS created;

-- name: workflow_latest_upsert
-- Point a workflow name at the version new executions will use.
INSERT INTO workflows (name, latest_version, updated_at)
VALUES ($1, $2, now())
ON CONFLICT (name) DO UPDATE
SET latest_version = EXCLUDED.latest_version, updated_at = now()
WHERE workflows.latest_version IS DISTINCT FROM EXCLUDED.latest_version;

-- name: workflow_latest_get
-- The version new executions of a workflow use, or nothing if it was never registered.
SELECT latest_version FROM workflows WHERE name = $1;

-- name: workflow_version_get
-- One stored definition by version.
SELECT version, name, definition FROM workflow_versions WHERE version = $1;

-- name: workflow_claim
-- Record a workflow name registered for the first time, at its version; returns true when the name was new.
INSERT INTO workflows (name, latest_version, updated_at)
VALUES ($1, $2, now())
ON CONFLICT (name) DO NOTHING
RETURNING true AS created;

-- name: workflow_latest_lock
-- The version new executions of a workflow use, its row locked until the transaction ends.
SELECT latest_version FROM workflows WHERE name = $1 FOR UPDATE;
