-- Browser sessions (the `lm_session` cookie), kept here so that a restart of the service signs
-- nobody out. Only the SHA-256 of a session id is stored: the database file holds no usable
-- cookie. A session is valid until `expires_at` (Unix seconds), and only while the service still
-- accepts the credential it was signed in with (`credential`: the auth mode and, for tokens, a
-- fingerprint of the token), so that a rotated token or another `--auth` ends it.
CREATE TABLE sessions (
    id_sha256   TEXT PRIMARY KEY NOT NULL,
    actor       TEXT NOT NULL,
    csrf        TEXT NOT NULL,
    credential  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
