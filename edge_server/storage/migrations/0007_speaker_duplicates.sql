-- Profiles that are likely one person enrolled twice: found at enrollment by scoring the new
-- reference against the tenant's profiles. Enrollment warns; labelling counts such profiles as
-- one voice, so they never cancel each other's runner-up margin. Gone with either speaker's erasure.

CREATE TABLE speaker_duplicates (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    speaker_id    TEXT NOT NULL REFERENCES speakers(id),
    duplicate_of  TEXT NOT NULL REFERENCES speakers(id),
    score         REAL NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (speaker_id, duplicate_of)
);
CREATE INDEX speaker_duplicates_of ON speaker_duplicates(duplicate_of);
