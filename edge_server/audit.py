"""The erasure audit log: append-only, immutable by triggers, and hash-chained.

Each row's hash covers its sequence number, its content and the previous row's hash, so editing a
row, deleting one, or swapping two breaks the chain at that row. (Truncating the newest rows is
indistinguishable from those rows never being written; operators who need that guarantee copy the
head hash printed by `scaiecho-admin audit verify` somewhere else.)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

GENESIS = "0" * 64
#: Columns covered by the hash, in a fixed order.
CHAINED = (
    "seq",
    "id",
    "tenant_id",
    "speaker_id",
    "consent_id",
    "requested_by_key_id",
    "requested_at",
    "completed_at",
    "blob_ids",
    "blob_bytes_deleted",
    "evicted_from",
    "error_summary",
)


def row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the row's chained columns (canonical JSON)."""
    content = json.dumps([row[c] for c in CHAINED], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}|{content}".encode()).hexdigest()


def append(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    """Add one erasure audit row after the current head; call inside the caller's transaction."""
    last = db.execute("SELECT seq, row_hash FROM erasure_audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    full = {**row, "seq": seq, "prev_hash": prev}
    full["row_hash"] = row_hash(prev, full)
    db.table("erasure_audit").insert(full)
    return full


@dataclass(frozen=True)
class Verification:
    """Outcome of walking the chain."""

    ok: bool
    rows: int
    head: str
    broken_seq: int | None = None
    reason: str | None = None


def verify(db: sqlite_utils.Database) -> Verification:
    """Walk every row in sequence order and report the first broken link."""
    cursor = db.execute(f"SELECT {', '.join(CHAINED)}, prev_hash, row_hash FROM erasure_audit ORDER BY seq")
    names = [d[0] for d in cursor.description]
    prev = GENESIS
    expected_seq = 1
    count = 0
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        count += 1
        if row["seq"] != expected_seq:
            return Verification(False, count, prev, expected_seq, f"missing (the next row is {row['seq']})")
        if row["prev_hash"] != prev:
            return Verification(False, count, prev, row["seq"], "does not follow the previous row")
        if row_hash(prev, row) != row["row_hash"]:
            return Verification(False, count, prev, row["seq"], "content does not match its hash")
        prev = row["row_hash"]
        expected_seq += 1
    return Verification(True, count, prev)
