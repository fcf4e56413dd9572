-- More consented references of one speaker (POST /speakers/{id}/references): each is an encrypted
-- blob like the first one (speakers.reference_blob_id); the profile is embedded from all of them.
-- Rows go with the speaker's erasure (its blobs are destroyed with the others).

CREATE TABLE speaker_references (
    id              TEXT PRIMARY KEY,
    speaker_id      TEXT NOT NULL REFERENCES speakers(id),
    tenant_id       TEXT NOT NULL,
    blob_id         TEXT NOT NULL REFERENCES blobs(id),
    preflight       TEXT NOT NULL,          -- JSON, the recording's preflight
    speaker_score   REAL NOT NULL,          -- cosine to the profile before it was added
    added_by_key_id TEXT NOT NULL,
    added_at        TEXT NOT NULL
);
CREATE INDEX speaker_references_speaker ON speaker_references(speaker_id, added_at);
