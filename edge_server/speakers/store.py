"""Speakers: status rules (pure), rows to API documents, and list queries with cursors."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import sqlite_utils

from appliance.clock import utc_now
from appliance.contract.consent import ConsentVerification
from appliance.contract.documents import ConsentSummary, Preflight, Speaker
from edge_server.cluster import NodeResult

Status = Literal["pending", "ready", "failed", "evicted", "deleted"]
LISTABLE_STATUSES = ("pending", "ready", "failed", "evicted")
MAX_LIMIT = 200
DEFAULT_LIMIT = 50


def status_after_fanout(results: Mapping[str, NodeResult]) -> tuple[Status, str | None]:
    """Status and reason once an enrollment was offered to ``results``' nodes.

    Any acceptance makes it ready. With no node, or only timeouts and unreachable nodes, it stays
    pending (a later node may accept it). Only when every node that answered refused it, and none
    merely failed to answer, is it failed, with the first refusal as reason.
    """
    if any(r.ok for r in results.values()):
        return "ready", None
    if results and all(r.refused for r in results.values()):
        first = results[sorted(results)[0]]
        return "failed", first.error or "refused by every node"
    return "pending", None


def status_from_holders(current: Status, online_holders: Iterable[str]) -> Status:
    """Status implied by which online nodes hold a speaker now.

    ready/evicted follow the holders; pending turns ready when a node holds it; failed and
    deleted are final here (a re-warm decides those explicitly).
    """
    holds = any(True for _ in online_holders)
    if current in ("ready", "evicted"):
        return "ready" if holds else "evicted"
    if current == "pending" and holds:
        return "ready"
    return current


def status_after_rewarm(current: Status, results: Mapping[str, NodeResult], online_holders: list[str]) -> Status:
    """Status after an explicit re-warm: held anywhere online is ready; otherwise the fan-out rule
    decides for never-ready speakers, and a ready one that no node holds is evicted."""
    if online_holders:
        return "ready"
    if current in ("pending", "failed"):
        return status_after_fanout(results)[0] if results else current
    return "evicted"


def set_status(db: sqlite_utils.Database, speaker_id: str, status: Status, reason: str | None = None) -> None:
    """Persist a status change."""
    with db.atomic():
        db.conn.execute(
            # never resurrect an erased speaker: a fan-out may finish after its tombstone
            "UPDATE speakers SET enrollment_status = ?, status_reason = ?, updated_at = ? "
            "WHERE id = ? AND deleted_at IS NULL",
            [status, reason, utc_now(), speaker_id],
        )


SPEAKER_COLUMNS = (
    "s.id, s.tenant_id, s.display_name, s.language_primary, s.description, s.enrollment_status, "
    "s.status_reason, s.preflight, s.created_at, s.deleted_at, s.erasure_audit_id, c.id AS consent_id, "
    "c.recorded_at, "
    "c.consent_audio_sha256, c.reference_audio_sha256, c.verification, s.last_active_at, "
    "(SELECT COUNT(*) FROM speaker_references r WHERE r.speaker_id = s.id) + 1 AS reference_count"
)
SPEAKER_FROM = "speakers s JOIN consent_records c ON c.id = s.consent_id"


def _rows(db: sqlite_utils.Database, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    return list(db.query(sql, params))


def get_row(db: sqlite_utils.Database, tenant_id: str, speaker_id: str) -> dict[str, Any] | None:
    """One speaker of one tenant (deleted ones included), or None."""
    rows = _rows(
        db,
        f"SELECT {SPEAKER_COLUMNS} FROM {SPEAKER_FROM} WHERE s.id = ? AND s.tenant_id = ?",
        [speaker_id, tenant_id],
    )
    return rows[0] if rows else None


def encode_cursor(row: Mapping[str, Any]) -> str:
    """Opaque cursor pointing after ``row`` in newest-first order."""
    return base64.urlsafe_b64encode(json.dumps([row["created_at"], row["id"]]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    """Inverse of `encode_cursor`; ValueError when it is not one of ours."""
    try:
        created_at, speaker_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ValueError("malformed cursor") from exc
    if not isinstance(created_at, str) or not isinstance(speaker_id, str):
        raise ValueError("malformed cursor")
    return created_at, speaker_id


def list_rows(
    db: sqlite_utils.Database, tenant_id: str, status: str | None, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of a tenant's live speakers, newest first, and the cursor of the next page."""
    where = ["s.tenant_id = ?", "s.deleted_at IS NULL"]
    params: list[Any] = [tenant_id]
    if status is not None:
        where.append("s.enrollment_status = ?")
        params.append(status)
    if cursor is not None:
        created_at, speaker_id = decode_cursor(cursor)
        where.append("(s.created_at < ? OR (s.created_at = ? AND s.id < ?))")
        params += [created_at, created_at, speaker_id]
    sql = (
        f"SELECT {SPEAKER_COLUMNS} FROM {SPEAKER_FROM} WHERE {' AND '.join(where)} "
        "ORDER BY s.created_at DESC, s.id DESC LIMIT ?"
    )
    rows = _rows(db, sql, [*params, limit + 1])
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def document(row: Mapping[str, Any], enrolled_on: list[str]) -> Speaker:
    """The API's speaker document of a row of `get_row` / `list_rows`."""
    return Speaker(
        id=row["id"],
        display_name=row["display_name"],
        language_primary=row["language_primary"],
        description=row["description"],
        enrollment_status=row["enrollment_status"],
        status_reason=row["status_reason"] or None,
        enrolled_on=enrolled_on,
        created_at=row["created_at"],
        consent=ConsentSummary(
            id=row["consent_id"],
            recorded_at=row["recorded_at"],
            consent_audio_sha256=row["consent_audio_sha256"],
            reference_audio_sha256=row["reference_audio_sha256"],
            verification=ConsentVerification.model_validate_json(row["verification"]) if row["verification"] else None,
        ),
        preflight=Preflight.model_validate_json(row["preflight"]),
        reference_count=row["reference_count"],
    )


# -- the speakers table's other reads and writes (this module owns the table) -------------------


def insert(db: sqlite_utils.Database, row: dict[str, Any]) -> None:
    """A new speaker row (inside the enrollment's transaction)."""
    db.table("speakers").insert(row)


def erasure_target(db: sqlite_utils.Database, tenant_id: str, speaker_id: str) -> dict[str, Any] | None:
    """What erasure needs of a tenant's speaker: its tombstone state and its blob ids (None: not theirs)."""
    rows = db.query(
        "SELECT deleted_at, erasure_audit_id, reference_blob_id, consent_blob_id FROM speakers "
        "WHERE id = ? AND tenant_id = ?",
        [speaker_id, tenant_id],
    )
    return next(iter(rows), None)


def tombstone(db: sqlite_utils.Database, speaker_id: str, now: str) -> None:
    """Mark erased and scrub the profile (inside the erasure's transaction)."""
    db.execute(
        "UPDATE speakers SET enrollment_status = 'deleted', deleted_at = ?, updated_at = ?, "
        "display_name = '', description = NULL, preflight = '{}', status_reason = NULL WHERE id = ?",
        [now, now, speaker_id],
    )


def set_erasure_audit(db: sqlite_utils.Database, speaker_id: str, audit_id: str) -> None:
    """Point the tombstone at its audit row."""
    db.execute("UPDATE speakers SET erasure_audit_id = ? WHERE id = ?", [audit_id, speaker_id])


def column(db: sqlite_utils.Database, speaker_id: str, name: Literal["consent_id", "deleted_at"]) -> Any:
    """One column of a speaker row (None when there is no such speaker)."""
    row = db.execute(f"SELECT {name} FROM speakers WHERE id = ?", [speaker_id]).fetchone()
    return row[0] if row else None


def is_erased(db: sqlite_utils.Database, speaker_id: str) -> bool:
    """True once the speaker's tombstone is written (or when there is no such speaker)."""
    row = db.execute("SELECT deleted_at FROM speakers WHERE id = ?", [speaker_id]).fetchone()
    return row is None or row[0] is not None


def live_reference(db: sqlite_utils.Database, speaker_id: str) -> tuple[str, str] | None:
    """(tenant id, reference blob id) of a speaker not erased."""
    row = db.execute(
        "SELECT tenant_id, reference_blob_id FROM speakers WHERE id = ? AND deleted_at IS NULL", [speaker_id]
    ).fetchone()
    return (row[0], row[1]) if row else None


def added_references(db: sqlite_utils.Database, speaker_id: str) -> list[dict[str, Any]]:
    """blob_id and preflight (JSON) of the references added to a speaker after enrollment, oldest first."""
    sql = "SELECT blob_id, preflight FROM speaker_references WHERE speaker_id = ? ORDER BY added_at, id"
    return list(db.query(sql, [speaker_id]))


def added_reference_blob_ids(db: sqlite_utils.Database, speaker_id: str) -> list[str]:
    """Blob ids of the references added to a speaker after enrollment, oldest first."""
    return [row["blob_id"] for row in added_references(db, speaker_id)]


def forget_added_references(db: sqlite_utils.Database, speaker_id: str) -> None:
    """Drop an erased speaker's added-reference rows (inside the erasure's transaction; the blobs go with it)."""
    db.execute("DELETE FROM speaker_references WHERE speaker_id = ?", [speaker_id])


def live_ids(db: sqlite_utils.Database, tenant_id: str | None = None) -> set[str]:
    """Ids of speakers not erased (of one tenant, or all)."""
    if tenant_id is None:
        return {row["id"] for row in db.query("SELECT id FROM speakers WHERE deleted_at IS NULL")}
    sql = "SELECT id FROM speakers WHERE tenant_id = ? AND deleted_at IS NULL"
    return {row["id"] for row in db.query(sql, [tenant_id])}


def with_status(db: sqlite_utils.Database, statuses: Iterable[str]) -> list[dict[str, Any]]:
    """id, tenant_id, enrollment_status and reference_blob_id of live speakers in ``statuses``, oldest first."""
    wanted = list(statuses)
    marks = ",".join("?" * len(wanted))
    return list(
        db.query(
            f"SELECT id, tenant_id, enrollment_status, reference_blob_id FROM speakers "
            f"WHERE enrollment_status IN ({marks}) AND deleted_at IS NULL ORDER BY created_at",
            wanted,
        )
    )


def names(db: sqlite_utils.Database, tenant_id: str, ids: Iterable[str] | None = None) -> dict[str, str]:
    """Speaker id -> display name of a tenant's live speakers (all, or those in ``ids``)."""
    rows = db.query("SELECT id, display_name FROM speakers WHERE tenant_id = ? AND deleted_at IS NULL", [tenant_id])
    wanted = None if ids is None else set(ids)
    return {r["id"]: r["display_name"] for r in rows if wanted is None or r["id"] in wanted}


def ready_names(db: sqlite_utils.Database, tenant_id: str) -> dict[str, str]:
    """Speaker id -> display name of a tenant's ready speakers (the ones a stream may name)."""
    rows = db.query(
        "SELECT id, display_name FROM speakers WHERE tenant_id = ? AND enrollment_status = 'ready' "
        "AND deleted_at IS NULL",
        [tenant_id],
    )
    return {r["id"]: r["display_name"] for r in rows}


#: A speaker's last use is written at most this often (seconds): retention counts in days.
TOUCH_EVERY_S = 3600.0


class LastUse:
    """Writes a speaker's last interaction when a stream names it, at most once an hour per speaker."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self._written: dict[str, float] = {}

    def touch(self, speaker_ids: Iterable[str]) -> None:
        """These speakers were just named."""
        now = time.monotonic()
        stale = [s for s in speaker_ids if now - self._written.get(s, -TOUCH_EVERY_S) >= TOUCH_EVERY_S]
        if not stale:
            return
        stamp = utc_now()
        with self.db.atomic():
            for speaker_id in stale:
                self.db.execute(
                    "UPDATE speakers SET last_active_at = ? WHERE id = ? AND deleted_at IS NULL", [stamp, speaker_id]
                )
                self._written[speaker_id] = now
