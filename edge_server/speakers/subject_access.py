"""Subject access (GDPR Art. 15): everything the box holds about one speaker, as one ZIP archive.

The archive has the profile (``speaker.json``), the consent record with its verification
(``consent_record.json``), the recordings decrypted as they were uploaded (``reference.<fmt>``,
``consent.<fmt>``, ``references/<n>.<fmt>`` for any added later), the audit rows about the
speaker (``audit.json``: earlier exports; the erasure log has none while the speaker lives) and a
``README.txt``. Each export is itself audited (``export_audit``: who, when, the archive's SHA-256
and size); this owns that table.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

import sqlite_utils
from aiohttp import web

from appliance.clock import utc_now
from appliance.contract.documents import ExportAudit
from edge_server import appkeys
from edge_server.access.scopes import Principal
from edge_server.access.tenancy import new_id
from edge_server.errors import not_found
from edge_server.speakers import consents
from edge_server.speakers import store as speaker_store
from edge_server.speakers.erasure import deleted_error
from edge_server.storage.db import newest_first

README = """What ScaiEcho holds about this speaker, exported {exported_at} (export {export_id}).

speaker.json         the speaker profile (name, language, status, preflight of both recordings)
consent_record.json  the immutable consent record: who consented, to what, the recordings' SHA-256,
                     and the checks run at enrollment (voice and words of the consent recording)
reference.{ref}       the reference recording, decrypted, as it was uploaded
consent.{con}         the consent recording, decrypted, as it was uploaded
references/          recordings added to the profile later (POST /speakers/{{id}}/references), if any
audit.json           audit rows about this speaker (earlier exports of these data)

The speaker's voice embedding is derived from the reference recordings on the appliance's nodes
and is not a separate record; it is destroyed with the recordings on erasure.
"""


def _export_rows(app: web.Application, tenant_id: str, speaker_id: str) -> list[dict[str, Any]]:
    return list(
        app[appkeys.DB].query(
            "SELECT id, requested_by_key_id, exported_at, archive_sha256, archive_bytes FROM export_audit "
            "WHERE tenant_id = ? AND speaker_id = ? ORDER BY seq",
            [tenant_id, speaker_id],
        )
    )


def _added_references(app: web.Application, tenant_id: str, speaker_id: str) -> list[tuple[bytes, str]]:
    """(decrypted recording, format) of each reference added after enrollment, oldest first."""
    rows = speaker_store.added_references(app[appkeys.DB], speaker_id)
    blobs = app[appkeys.BLOBS]
    return [(blobs.get(tenant_id, r["blob_id"]), json.loads(r["preflight"]).get("format") or "bin") for r in rows]


def build(app: web.Application, principal: Principal, speaker_id: str) -> tuple[bytes, str]:
    """The archive of one live speaker of the caller's tenant and its export id (CPU and disk: use a thread)."""
    db = app[appkeys.DB]
    tenant_id = principal.tenant_id
    row = speaker_store.get_row(db, tenant_id, speaker_id)
    if row is None:
        raise not_found("speaker")
    if row["deleted_at"] is not None:
        raise deleted_error(row["erasure_audit_id"])
    target = speaker_store.erasure_target(db, tenant_id, speaker_id)
    assert target is not None
    document = speaker_store.document(row, [])
    record = next(
        consents.audit_row(r)
        for r in db.query(f"SELECT {consents.COLUMNS} FROM consent_records WHERE id = ?", [row["consent_id"]])
    )
    blobs = app[appkeys.BLOBS]
    reference = blobs.get(tenant_id, target["reference_blob_id"])
    consent = blobs.get(tenant_id, target["consent_blob_id"])
    export_id = new_id("exp")
    exported_at = utc_now()
    ref_fmt = document.preflight.reference.format or "bin"
    con_fmt = document.preflight.consent.format or "bin"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", README.format(exported_at=exported_at, export_id=export_id, ref=ref_fmt,
                                                     con=con_fmt))  # fmt: skip
        archive.writestr("speaker.json", document.model_dump_json(indent=2, exclude={"enrolled_on"}))
        archive.writestr("consent_record.json", record.model_dump_json(indent=2))
        archive.writestr(f"reference.{ref_fmt}", reference)
        archive.writestr(f"consent.{con_fmt}", consent)
        for n, (added, fmt) in enumerate(_added_references(app, tenant_id, speaker_id), start=2):
            archive.writestr(f"references/{n}.{fmt}", added)
        archive.writestr("audit.json", json.dumps({"exports": _export_rows(app, tenant_id, speaker_id)}, indent=2))
    data = buffer.getvalue()
    db.table("export_audit").insert(
        {"id": export_id, "tenant_id": tenant_id, "speaker_id": speaker_id, "requested_by_key_id": principal.key_id,
         "exported_at": exported_at, "archive_sha256": hashlib.sha256(data).hexdigest(), "archive_bytes": len(data)}
    )  # fmt: skip
    return data, export_id


def page(
    db: sqlite_utils.Database, tenant_id: str, limit: int, before: int | None = None
) -> tuple[list[ExportAudit], int | None]:
    """A tenant's exports newest first, and the sequence number the next page starts before."""
    sql = (
        "SELECT seq, id, speaker_id, requested_by_key_id, exported_at, archive_sha256, archive_bytes "
        "FROM export_audit WHERE tenant_id = ?"
    )
    rows, following = newest_first(db, sql, [tenant_id], "seq", limit, before)
    return [ExportAudit.model_validate(row) for row in rows], following
