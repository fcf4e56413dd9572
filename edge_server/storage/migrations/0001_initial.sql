-- Tenants, API keys, encrypted blobs, speakers and their immutable consent records.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id),
    name               TEXT NOT NULL,
    secret_sha256      TEXT NOT NULL,
    scopes             TEXT NOT NULL,          -- JSON array
    created_at         TEXT NOT NULL,
    created_by_key_id  TEXT,                   -- NULL: created by the operator CLI
    revoked_at         TEXT
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);

-- Ciphertext lives in files; the wrapped data key lives here. Destroying a blob sets
-- wrapped_key to NULL (secure_delete is on), which makes any surviving ciphertext useless.
CREATE TABLE blobs (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    kind           TEXT NOT NULL CHECK (kind IN ('reference', 'consent')),
    size           INTEGER NOT NULL,           -- ciphertext bytes on disk
    wrapped_key    BLOB,
    master_key_id  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    destroyed_at   TEXT
);

CREATE TABLE speakers (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    display_name        TEXT NOT NULL,
    language_primary    TEXT NOT NULL,
    description         TEXT,
    enrollment_status   TEXT NOT NULL
        CHECK (enrollment_status IN ('pending', 'ready', 'failed', 'evicted', 'deleted')),
    status_reason       TEXT,
    reference_blob_id   TEXT REFERENCES blobs(id),
    consent_blob_id     TEXT REFERENCES blobs(id),
    consent_id          TEXT NOT NULL,
    preflight           TEXT NOT NULL,          -- JSON, as returned at enrollment
    created_by_key_id   TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    deleted_at          TEXT
);
CREATE INDEX speakers_tenant_created ON speakers(tenant_id, created_at DESC, id DESC);
CREATE INDEX speakers_status ON speakers(enrollment_status);

CREATE TABLE consent_records (
    id                      TEXT PRIMARY KEY,
    tenant_id               TEXT NOT NULL REFERENCES tenants(id),
    speaker_id              TEXT NOT NULL,
    user_full_name          TEXT NOT NULL,
    stated_purpose          TEXT NOT NULL,
    consent_text            TEXT NOT NULL,
    consent_audio_sha256    TEXT NOT NULL,
    reference_audio_sha256  TEXT NOT NULL,
    enrolled_by_key_id      TEXT NOT NULL,
    recorded_at             TEXT NOT NULL
);
CREATE INDEX consent_records_tenant ON consent_records(tenant_id, recorded_at);

CREATE TRIGGER consent_records_immutable_update BEFORE UPDATE ON consent_records
BEGIN
    SELECT RAISE(ABORT, 'consent records are immutable');
END;

CREATE TRIGGER consent_records_immutable_delete BEFORE DELETE ON consent_records
BEGIN
    SELECT RAISE(ABORT, 'consent records are immutable');
END;
