-- 0009_tokens: API tokens. Only a SHA-256 hash of each secret is kept, never the secret.

CREATE TABLE tokens (
    id           text PRIMARY KEY,
    name         text NOT NULL DEFAULT '',
    role         text NOT NULL CHECK (role IN ('worker', 'client', 'admin')),
    queues       text[] NOT NULL DEFAULT '{}',  -- worker tokens: the queues it may use; empty: all
    secret_hash  bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz
);
