-- Encrypted cache of each speaker's embedding per model, so a node that restarts cold is warm
-- again in seconds without re-embedding every reference. Shredded with the speaker's blobs.

CREATE TABLE speaker_embeddings (
    speaker_id     TEXT NOT NULL REFERENCES speakers(id),
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    model          TEXT NOT NULL,
    ciphertext     BLOB NOT NULL,
    wrapped_key    BLOB NOT NULL,
    master_key_id  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (speaker_id, model)
);
