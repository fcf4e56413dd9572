"""More references of one speaker: `POST /speakers/{id}/references`. Owns ``speaker_references``.

A profile made from one short excerpt names its person less reliably than one made from several
recordings (other days, rooms, moods). Adding one runs what enrollment runs on a reference — the
preflight, then a voice check: a node holding the speaker scores the new recording against the
profile, and it must reach the consent check's `speaker_threshold` (the same question: is this
the enrolled person?). Only then is it stored (encrypted, one transaction) and the profile
embedded again from every reference on every online node. It is covered by the speaker's
consent, listed in the export, and destroyed with the speaker's other recordings on erasure.
The ``speaker_references`` rows are read and written through speakers/store.py.
"""

from __future__ import annotations

import asyncio

import numpy as np
from aiohttp import web

from appliance.clock import utc_now
from appliance.contract.documents import AddedReference, RecordingPreflight, ReferenceForm, Speaker
from edge_server import appkeys
from edge_server.access.scopes import Principal
from edge_server.access.tenancy import new_id
from edge_server.errors import ApiError
from edge_server.speakers import store as speaker_store
from edge_server.speakers.enrollment import analyse, analyse_upload, offer_to_nodes
from edge_server.speakers.voices import TenantVoices
from edge_server.storage.disk import ensure_room
from edge_server.streaming.evidence import merge
from models.audio import SAMPLE_RATE


def profile_speech(app: web.Application, tenant_id: str, speaker_id: str, blob_id: str) -> np.ndarray:
    """The speech of every reference of a speaker (the first is ``blob_id``), concatenated (CPU-bound: a thread)."""
    settings = app[appkeys.SETTINGS]
    blobs = app[appkeys.BLOBS]
    ids = [blob_id, *speaker_store.added_reference_blob_ids(app[appkeys.DB], speaker_id)]
    return np.concatenate([analyse(blobs.get(tenant_id, b), "reference", settings).speech for b in ids])


async def _score(app: web.Application, tenant_id: str, speaker_id: str, speech: np.ndarray) -> float:
    """Cosine of ``speech`` to the speaker's profile, on a node holding it; 503 when none does."""
    windows = await TenantVoices(app, tenant_id).identify(speech, [speaker_id])
    score = merge(windows).scores.get(speaker_id) if windows else None
    if score is None:
        raise ApiError(
            503,
            "reference_check_unavailable",
            "no online node holds this speaker, so the new recording cannot be compared with the profile; "
            "try again once the speaker is ready",
        )
    return round(float(score), 4)


async def add_reference(app: web.Application, principal: Principal, row: dict, form: ReferenceForm) -> Speaker:
    """Check, store and fan out one more reference of a live speaker (``row``: its store row)."""
    settings = app[appkeys.SETTINGS]
    db = app[appkeys.DB]
    tenant_id, speaker_id = principal.tenant_id, str(row["id"])
    recording = await analyse_upload(form.reference, "reference", settings)
    block = RecordingPreflight.model_validate(recording.report.to_json())
    if not recording.report.passed:
        raise ApiError(
            422, "preflight_failed", "the recording failed the quality preflight; see details for what to fix",
            {"reference": block.model_dump()},
        )  # fmt: skip
    threshold = settings.consent.speaker_threshold
    score = await _score(app, tenant_id, speaker_id, recording.speech)
    if score < threshold:
        raise ApiError(
            422,
            "reference_speaker_mismatch",
            f"this recording does not sound like {row['display_name']} (score {score:.2f}, needs {threshold:.2f}); "
            "only recordings of the enrolled person may be added to the profile",
            {"speaker_score": score, "threshold": threshold},
        )
    ensure_room(settings, len(form.reference))
    blobs = app[appkeys.BLOBS]
    stored = await asyncio.to_thread(blobs.put, tenant_id, "reference", form.reference)
    added = AddedReference(
        id=new_id("ref"), speaker_score=score, threshold=threshold, preflight=block, added_at=utc_now()
    )
    try:
        with db.atomic():
            if speaker_store.is_erased(db, speaker_id):  # erased while we were checking
                raise ApiError(410, "speaker_deleted", "this speaker was erased", {"audit_id": None})
            blobs.record([stored])
            db.table("speaker_references").insert(
                {"id": added.id, "speaker_id": speaker_id, "tenant_id": tenant_id, "blob_id": stored.id,
                 "preflight": block.model_dump_json(), "speaker_score": score,
                 "added_by_key_id": principal.key_id, "added_at": added.added_at}
            )  # fmt: skip
    except BaseException:
        blobs.discard(stored)
        raise
    live = speaker_store.live_reference(db, speaker_id)
    if live is None:  # erased just now: the erasure destroys the new blob with the others
        raise ApiError(410, "speaker_deleted", "this speaker was erased", {"audit_id": None})
    speech = await asyncio.to_thread(profile_speech, app, tenant_id, speaker_id, live[1])
    results = await offer_to_nodes(app, tenant_id, speaker_id, speech)
    fresh = speaker_store.get_row(db, tenant_id, speaker_id)
    assert fresh is not None
    held = sorted(node for node, r in results.items() if r.ok)
    seconds = len(speech) / SAMPLE_RATE
    note = f"the profile is now embedded from {fresh['reference_count']} recordings ({seconds:.0f} s of speech)"
    if not held:
        note += "; no node holds it yet: it is offered again automatically"
    return speaker_store.document(fresh, held).model_copy(update={"added_reference": added, "note": note})
