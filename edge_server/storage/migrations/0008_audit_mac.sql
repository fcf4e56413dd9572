-- A keyed MAC on every new erasure audit row: HMAC-SHA256 of its row_hash with the audit key,
-- which lives outside the database (<data-dir>/audit-key). A re-hashed chain or a forged row
-- fails without that key. Rows written before this migration have none: they may only precede
-- the first keyed row.

ALTER TABLE erasure_audit ADD COLUMN mac TEXT;
