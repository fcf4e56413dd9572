-- Idempotency-Key of POST /speakers: a retried enrollment (after a timeout or a 5xx) returns the
-- speaker the first attempt created instead of enrolling the same person twice. Only a digest of
-- the request is kept; the row goes with the speaker's erasure.

CREATE TABLE idempotency_keys (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    key             TEXT NOT NULL,
    request_sha256  TEXT NOT NULL,
    speaker_id      TEXT NOT NULL REFERENCES speakers(id),
    created_at      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
