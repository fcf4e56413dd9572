"""The erasure audit log: append-only, immutable by triggers, hash-chained, keyed and anchored.

- Each row's hash covers its sequence number, its content and the previous row's hash, so editing
  a row, deleting one, or swapping two breaks the chain at that row.
- Each row also carries an HMAC of its hash with the audit key, kept outside the database
  (``<data-dir>/audit-key``): re-hashing the whole chain, or appending a forged row, needs that key.
- After every append the head (sequence number, hash) is written, MAC'd, to ``<data-dir>/audit-anchor``
  and to the log, so deleting the newest rows is caught: the anchored row must still be there.
- A speaker whose ``erasure_audit_id`` names a row that is not in the log is caught too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from appliance.contract.documents import ErasureAudit
from appliance.crypto import read_or_create_secret
from edge_server.storage.db import newest_first

log = logging.getLogger("scaiecho.audit")

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
    """SHA-256 over the previous hash and the row's chained columns (canonical JSON).

    ``reason`` (added with migration 0009) is chained when present, so older rows hash as they did.
    """
    values = [row[c] for c in CHAINED]
    if row.get("reason") is not None:
        values.append(row["reason"])
    content = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}|{content}".encode()).hexdigest()


@dataclass(frozen=True)
class Anchor:
    """The newest row the appliance itself wrote: its sequence number and hash."""

    seq: int
    row_hash: str


class AuditSeal:
    """The audit key (outside the database) and the anchor file next to it."""

    def __init__(self, key: bytes, anchor_path: Path) -> None:
        self._key = key
        self.anchor_path = anchor_path

    @classmethod
    def load_or_create(cls, data_dir: Path) -> AuditSeal:
        """The data dir's audit key (created 0600 on first use) and anchor."""
        return cls(read_or_create_secret(data_dir / "audit-key"), data_dir / "audit-anchor")

    def mac(self, text: str) -> str:
        """HMAC-SHA256 of ``text`` with the audit key, hex."""
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def anchor(self) -> Anchor | None:
        """The anchored head, or None before the first erasure; ValueError when forged or corrupt."""
        if not self.anchor_path.exists():
            return None
        try:
            data = json.loads(self.anchor_path.read_text())
            anchor = Anchor(int(data["seq"]), str(data["row_hash"]))
            valid = hmac.compare_digest(str(data["mac"]), self.mac(f"anchor|{anchor.seq}|{anchor.row_hash}"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError("the audit anchor file is unreadable") from exc
        if not valid:
            raise ValueError("the audit anchor file does not carry a valid MAC")
        return anchor

    def move_anchor(self, seq: int, head: str) -> None:
        """Anchor a newer head (atomically; never moves backwards) and say so in the log."""
        current = self.anchor()
        if current is not None and current.seq >= seq:
            return
        body = json.dumps({"seq": seq, "row_hash": head, "mac": self.mac(f"anchor|{seq}|{head}")})
        tmp = self.anchor_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, body.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.anchor_path)
        log.info("erasure audit head: seq %d, hash %s", seq, head)


def append(db: sqlite_utils.Database, row: dict[str, Any], seal: AuditSeal) -> dict[str, Any]:
    """Add one erasure audit row after the current head; call inside the caller's transaction,
    then `AuditSeal.move_anchor` once it committed."""
    last = db.execute("SELECT seq, row_hash FROM erasure_audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    full = {**row, "seq": seq, "prev_hash": prev}
    full["row_hash"] = row_hash(prev, full)
    full["mac"] = seal.mac(full["row_hash"])
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


def _walk(db: sqlite_utils.Database, seal: AuditSeal) -> Verification:
    prev = GENESIS
    expected_seq = 1
    count = 0
    keyed = False
    for row in db.query(
        f"SELECT {', '.join(CHAINED)}, reason, prev_hash, row_hash, mac FROM erasure_audit ORDER BY seq"
    ):
        count += 1
        if any(
            not isinstance(row[c], str | int | type(None)) for c in (*CHAINED, "reason", "prev_hash", "row_hash", "mac")
        ):
            return Verification(False, count, prev, row["seq"], "holds a value of the wrong type")
        if row["seq"] != expected_seq:
            return Verification(False, count, prev, expected_seq, f"missing (the next row is {row['seq']})")
        if row["prev_hash"] != prev:
            return Verification(False, count, prev, row["seq"], "does not follow the previous row")
        if row_hash(prev, row) != row["row_hash"]:
            return Verification(False, count, prev, row["seq"], "content does not match its hash")
        if row["mac"] is None:
            if keyed:
                return Verification(False, count, prev, row["seq"], "has no MAC after keyed rows (forged?)")
        elif not hmac.compare_digest(row["mac"], seal.mac(row["row_hash"])):
            return Verification(False, count, prev, row["seq"], "MAC does not match: not written by this appliance")
        else:
            keyed = True
        prev = row["row_hash"]
        expected_seq += 1
    return Verification(True, count, prev)


def verify(db: sqlite_utils.Database, seal: AuditSeal) -> Verification:
    """Walk every row in order, then check the anchor and the speakers' references to the log."""
    walked = _walk(db, seal)
    if not walked.ok:
        return walked
    try:
        anchor = seal.anchor()
    except ValueError as exc:
        return Verification(False, walked.rows, walked.head, None, str(exc))
    if anchor is not None:
        found = list(db.query("SELECT row_hash FROM erasure_audit WHERE seq = ?", [anchor.seq]))
        if not found:
            reason = f"the newest rows were deleted: row {anchor.seq} was anchored, the log ends at {walked.rows}"
            return Verification(False, walked.rows, walked.head, anchor.seq, reason)
        if found[0]["row_hash"] != anchor.row_hash:
            return Verification(False, walked.rows, walked.head, anchor.seq, "differs from the anchored row")
    dangling = list(
        db.query(
            "SELECT id, erasure_audit_id FROM speakers WHERE erasure_audit_id IS NOT NULL "
            "AND erasure_audit_id NOT IN (SELECT id FROM erasure_audit) LIMIT 1"
        )
    )
    if dangling:
        reason = f"speaker {dangling[0]['id']} names erasure row {dangling[0]['erasure_audit_id']}, which is gone"
        return Verification(False, walked.rows, walked.head, None, reason)
    return walked


def anchor_forward(db: sqlite_utils.Database, seal: AuditSeal) -> None:
    """At start: anchor rows a crash committed before their anchor was written (never backwards)."""
    walked = _walk(db, seal)
    if walked.ok and walked.rows:
        seal.move_anchor(walked.rows, walked.head)


def page(
    db: sqlite_utils.Database, tenant_id: str, limit: int, before: int | None = None
) -> tuple[list[ErasureAudit], int | None]:
    """A tenant's erasure rows newest first, and the sequence number the next page starts before."""
    sql = (
        "SELECT seq, id, speaker_id, consent_id, requested_by_key_id, requested_at, completed_at, blob_ids, "
        "blob_bytes_deleted, evicted_from, error_summary, reason, prev_hash, row_hash FROM erasure_audit "
        "WHERE tenant_id = ?"
    )
    rows, following = newest_first(db, sql, [tenant_id], "seq", limit, before)
    for row in rows:
        for column in ("blob_ids", "evicted_from", "error_summary"):
            row[column] = json.loads(str(row[column]))
    return [ErasureAudit.model_validate(row) for row in rows], following


def owns_row(db: sqlite_utils.Database, seq: int, tenant_id: str) -> bool:
    """Whether erasure row ``seq`` belongs to ``tenant_id``."""
    found = db.execute("SELECT 1 FROM erasure_audit WHERE seq = ? AND tenant_id = ?", [seq, tenant_id])
    return found.fetchone() is not None
