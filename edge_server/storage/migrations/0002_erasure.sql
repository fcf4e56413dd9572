-- GDPR Art. 17 erasure: a resumable job per speaker, an immutable hash-chained audit log, and
-- evictions still owed by nodes that could not be reached.

CREATE TABLE erasure_jobs (
    speaker_id           TEXT PRIMARY KEY REFERENCES speakers(id),
    tenant_id            TEXT NOT NULL REFERENCES tenants(id),
    requested_by_key_id  TEXT NOT NULL,
    requested_at         TEXT NOT NULL,
    state                TEXT NOT NULL CHECK (state IN ('tombstoned', 'shredded', 'evicted', 'done')),
    blob_ids             TEXT NOT NULL,               -- JSON array
    blob_bytes_deleted   INTEGER NOT NULL DEFAULT 0,
    evicted_from         TEXT NOT NULL DEFAULT '[]',  -- JSON array
    error_summary        TEXT NOT NULL DEFAULT '{}',  -- JSON object node -> error
    audit_id             TEXT
);

CREATE TABLE erasure_audit (
    seq                  INTEGER PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    tenant_id            TEXT NOT NULL,
    speaker_id           TEXT NOT NULL,
    consent_id           TEXT NOT NULL,
    requested_by_key_id  TEXT NOT NULL,
    requested_at         TEXT NOT NULL,
    completed_at         TEXT NOT NULL,
    blob_ids             TEXT NOT NULL,
    blob_bytes_deleted   INTEGER NOT NULL,
    evicted_from         TEXT NOT NULL,
    error_summary        TEXT NOT NULL,
    prev_hash            TEXT NOT NULL,
    row_hash             TEXT NOT NULL
);
CREATE INDEX erasure_audit_tenant ON erasure_audit(tenant_id, seq);

CREATE TRIGGER erasure_audit_immutable_update BEFORE UPDATE ON erasure_audit
BEGIN
    SELECT RAISE(ABORT, 'the erasure audit log is immutable');
END;

CREATE TRIGGER erasure_audit_immutable_delete BEFORE DELETE ON erasure_audit
BEGIN
    SELECT RAISE(ABORT, 'the erasure audit log is immutable');
END;

CREATE TABLE pending_evictions (
    node_id     TEXT NOT NULL,
    speaker_id  TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (node_id, speaker_id)
);

ALTER TABLE speakers ADD COLUMN erasure_audit_id TEXT;
