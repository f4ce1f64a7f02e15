-- name: token_insert
-- Store a new token (its secret only as a hash).
INSERT INTO tokens (id, name, role, queues, secret_hash, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: token_get_many
-- The tokens of some ids (those that exist), to verify presented secrets against their hashes.
SELECT id, name, role, queues, secret_hash, created_at, expires_at, revoked_at
FROM tokens WHERE id = ANY($1::text[]);

-- name: token_list
-- Every token, newest first (no secrets: only their hashes are stored).
SELECT id, name, role, queues, created_at, expires_at, revoked_at
FROM tokens ORDER BY created_at DESC, id;

-- name: token_revoke
-- Revoke a token (once: a second revoke keeps the first time); returns nothing for an unknown id.
UPDATE tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING revoked_at;
