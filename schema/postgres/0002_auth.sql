-- aurora-node, version 2: pairing and tokens.

-- The node's identity and signing key, shared by every node process on this database: `node_id` tells a
-- laptop it reached the node it paired with; `jwt_secret` signs access tokens (HS256, one fixed algorithm).
CREATE TABLE node_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- One-time pairing codes (`aurora-node devices add NAME`): only a hash is kept, each is used once and
-- expires in minutes.
CREATE TABLE pairing_codes (
    code_hash  text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    device_id  text REFERENCES devices (id)
);

-- Rotating refresh tokens, kept as hashes. Each refresh uses one token and issues the next in the same
-- family; a token presented a second time means it leaked, so its whole family is revoked.
CREATE TABLE refresh_tokens (
    token_hash text PRIMARY KEY,
    device_id  text NOT NULL REFERENCES devices (id),
    family_id  text NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_device ON refresh_tokens (device_id);
