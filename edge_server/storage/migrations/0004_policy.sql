-- Per-tenant transcription policy: which backend serves streams and files. A tenant without a
-- row uses the default ('auto': Backend A, Backend B when A is unavailable).

CREATE TABLE tenant_policies (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id),
    backend     TEXT NOT NULL CHECK (backend IN ('auto', 'A', 'B')),
    updated_at  TEXT NOT NULL,
    updated_by_key_id TEXT NOT NULL
);
