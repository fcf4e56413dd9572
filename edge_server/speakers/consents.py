"""Consent records: the one owner of the ``consent_records`` table (immutable, append-only)."""

from __future__ import annotations

import hashlib

import sqlite_utils

from appliance.contract.consent import ConsentVerification
from appliance.contract.documents import ConsentAudit
from edge_server.storage.db import newest_first

COLUMNS = (
    "rowid, id, speaker_id, user_full_name, stated_purpose, consent_text, consent_audio_sha256, "
    "reference_audio_sha256, enrolled_by_key_id, recorded_at, verification"
)


def record(
    db: sqlite_utils.Database,
    *,
    consent_id: str,
    tenant_id: str,
    speaker_id: str,
    user_full_name: str,
    stated_purpose: str,
    consent_text: str,
    consent_audio: bytes,
    reference_audio: bytes,
    verification: ConsentVerification,
    enrolled_by_key_id: str,
    recorded_at: str,
) -> None:
    """Insert one consent record; call inside the enrollment's transaction."""
    db.table("consent_records").insert(
        {
            "id": consent_id,
            "tenant_id": tenant_id,
            "speaker_id": speaker_id,
            "user_full_name": user_full_name,
            "stated_purpose": stated_purpose,
            "consent_text": consent_text,
            "consent_audio_sha256": hashlib.sha256(consent_audio).hexdigest(),
            "reference_audio_sha256": hashlib.sha256(reference_audio).hexdigest(),
            "enrolled_by_key_id": enrolled_by_key_id,
            "recorded_at": recorded_at,
            "verification": verification.model_dump_json(),
        }
    )


def page(
    db: sqlite_utils.Database, tenant_id: str, limit: int, before: int | None = None
) -> tuple[list[ConsentAudit], int | None]:
    """A tenant's consent records newest first, and the position the next page starts before."""
    sql = f"SELECT {COLUMNS} FROM consent_records WHERE tenant_id = ?"
    rows, following = newest_first(db, sql, [tenant_id], "rowid", limit, before)
    return [audit_row(row) for row in rows], following


def audit_row(row: dict[str, object]) -> ConsentAudit:
    """A ``consent_records`` row as the API shows it."""
    fields = {k: v for k, v in row.items() if k not in ("rowid", "verification")}
    raw = row.get("verification")
    verification = ConsentVerification.model_validate_json(str(raw)) if raw else None
    return ConsentAudit.model_validate({**fields, "verification": verification})
