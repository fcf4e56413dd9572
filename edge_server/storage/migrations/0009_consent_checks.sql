-- Consent that proves itself (docs/consent.md): the checks' evidence on the consent record,
-- the tenant's consent-check policy and retention, an append-only log of policy changes, the
-- reason an erasure ran, when a speaker was last used, and a log of subject-access exports.

-- JSON: speaker score, text heard and match ratio, thresholds, models. NULL on records written
-- before this migration (no check ran). The record stays immutable: set once, at insert.
ALTER TABLE consent_records ADD COLUMN verification TEXT;

-- NULL = the box's default from config.toml ([consent] checks / retention_days).
ALTER TABLE tenant_policies ADD COLUMN consent_checks TEXT CHECK (consent_checks IN ('enforce', 'warn', 'off'));
ALTER TABLE tenant_policies ADD COLUMN retention_days INTEGER CHECK (retention_days > 0);

CREATE TABLE policy_changes (
    seq             INTEGER PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    field           TEXT NOT NULL,
    old_value       TEXT,
    new_value       TEXT,
    changed_by_key_id TEXT NOT NULL,
    changed_at      TEXT NOT NULL
);
CREATE INDEX policy_changes_tenant ON policy_changes(tenant_id, seq);
CREATE TRIGGER policy_changes_immutable_update BEFORE UPDATE ON policy_changes
BEGIN
    SELECT RAISE(ABORT, 'the policy change log is immutable');
END;
CREATE TRIGGER policy_changes_immutable_delete BEFORE DELETE ON policy_changes
BEGIN
    SELECT RAISE(ABORT, 'the policy change log is immutable');
END;

-- 'request' (DELETE /speakers/{id}) or 'retention' (the retention job). Chained into the row's
-- hash when present; rows written before this migration have none and hash as before.
ALTER TABLE erasure_audit ADD COLUMN reason TEXT;
ALTER TABLE erasure_jobs ADD COLUMN reason TEXT NOT NULL DEFAULT 'request';

-- The last interaction with a speaker: enrollment, or being named in a stream (retention counts from it).
ALTER TABLE speakers ADD COLUMN last_active_at TEXT;
UPDATE speakers SET last_active_at = created_at;

CREATE TABLE export_audit (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    tenant_id       TEXT NOT NULL,
    speaker_id      TEXT NOT NULL,
    requested_by_key_id TEXT NOT NULL,
    exported_at     TEXT NOT NULL,
    archive_sha256  TEXT NOT NULL,
    archive_bytes   INTEGER NOT NULL
);
CREATE INDEX export_audit_speaker ON export_audit(tenant_id, speaker_id);
CREATE TRIGGER export_audit_immutable_update BEFORE UPDATE ON export_audit
BEGIN
    SELECT RAISE(ABORT, 'the export audit log is immutable');
END;
CREATE TRIGGER export_audit_immutable_delete BEFORE DELETE ON export_audit
BEGIN
    SELECT RAISE(ABORT, 'the export audit log is immutable');
END;
