-- Admin console sign-ins. The cookie carries a random token; only its SHA-256 is stored. A
-- session acts with its API key's scopes, re-read on every request, so revoking the key ends it.

CREATE TABLE console_sessions (
    token_sha256  TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL REFERENCES api_keys(id),
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    csrf_token    TEXT NOT NULL,
    created_at    REAL NOT NULL,
    last_seen_at  REAL NOT NULL
);
CREATE INDEX console_sessions_key ON console_sessions (key_id);
