-- name: schema_lock
-- Take the migration lock of one schema (waits for another migrating server).
SELECT pg_advisory_lock(hashtext('durable.migrate.' || $1));

-- name: schema_unlock
-- Release the migration lock of one schema.
SELECT pg_advisory_unlock(hashtext('durable.migrate.' || $1));

-- name: schema_migrations_create
-- Create the table of applied migrations if it does not exist.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: schema_migration_list
-- The versions applied so far.
SELECT version FROM schema_migrations ORDER BY version;

-- name: schema_migration_insert
-- Record an applied migration.
INSERT INTO schema_migrations (version, name) VALUES ($1, $2);
