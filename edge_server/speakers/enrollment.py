"""Enrollment: form -> decode -> preflight -> consent checks -> consent record + blobs -> fan-out.

Order matters. Everything that can reject the request (fields, size, decoding, preflight, the
consent checks of speakers/consent_check.py) runs before anything is stored. Blobs, the speaker
row and the consent record then commit in one SQLite transaction, before any node is asked to
hold the speaker; a failed commit removes the blob files it wrote. So a rejected enrollment leaves
no row, no blob and no node holding anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import web

from appliance.clock import utc_now
from appliance.contract.documents import (
    EnrollmentForm,
    PossibleDuplicate,
    Preflight,
    RecordingPreflight,
    Speaker,
)
from appliance.settings import Settings
from edge_server import appkeys
from edge_server.access.scopes import Principal
from edge_server.access.tenancy import new_id
from edge_server.cluster import NodeResult
from edge_server.errors import ApiError
from edge_server.speakers import consent_check, consents
from edge_server.speakers import store as speaker_store
from edge_server.speakers.erasure import deleted_error
from edge_server.speakers.voices import duplicates_in, record_duplicates
from edge_server.storage import embedding_cache, policies
from edge_server.storage.disk import ensure_room
from models.audio import AudioError, DecodedAudio, decode
from models.preflight import Report, Role, preflight
from models.vad import Region, speech_only, speech_regions

NO_NODE_NOTE = "no pyannote node is online; the profile stays pending until one is"
FANOUT_FAILED_NOTE = (
    "the speaker is stored, but the nodes could not be asked to hold it now; "
    "it stays pending and is offered to them again automatically"
)
REPLAYED_NOTE = "this Idempotency-Key already enrolled this speaker; nothing new was stored"
log = logging.getLogger("scaiecho.enrollment")


@dataclass(frozen=True)
class Analysis:
    """One recording decoded and preflighted."""

    audio: DecodedAudio
    regions: list[Region]
    report: Report

    @property
    def speech(self) -> np.ndarray:
        """The speech regions concatenated: what the nodes embed."""
        return speech_only(self.audio.samples, self.regions)


def analyse(data: bytes, role: Role, settings: Settings) -> Analysis:
    """Decode and preflight one recording (CPU-bound: run it in a thread)."""
    audio = decode(data, settings.preflight.max_duration_s)
    regions = speech_regions(audio.samples)
    return Analysis(audio, regions, preflight(audio, regions, role, settings.preflight))


async def analyse_upload(data: bytes, role: Role, settings: Settings) -> Analysis:
    """`analyse` off the event loop, with decoding errors as 415 naming the field."""
    try:
        return await asyncio.to_thread(analyse, data, role, settings)
    except AudioError as exc:
        raise ApiError(415, exc.code, f"{role}: {exc}", {"field": role}) from exc


def preflight_block(reference: Report, consent: Report) -> Preflight:
    """The API's ``preflight`` object."""
    return Preflight(
        passed=reference.passed and consent.passed,
        reference=RecordingPreflight.model_validate(reference.to_json()),
        consent=RecordingPreflight.model_validate(consent.to_json()),
    )


def fanout_note(status: str, results: dict[str, Any]) -> str | None:
    """What to tell the client about the fan-out, if anything."""
    if not results:
        return NO_NODE_NOTE
    failed = {node: r.error for node, r in sorted(results.items()) if not r.ok}
    if not failed:
        return None
    listed = ", ".join(f"{node} ({error})" for node, error in failed.items())
    if status == "ready":
        return f"not held by {listed}"
    if status == "failed":
        return f"every node refused the profile: {listed}"
    return f"no node accepted the profile yet: {listed}; it stays pending and is offered again"


def is_erased(app: web.Application, speaker_id: str) -> bool:
    """True once the speaker's tombstone is written."""
    return speaker_store.is_erased(app[appkeys.DB], speaker_id)


async def offer_to_nodes(
    app: web.Application,
    tenant_id: str,
    speaker_id: str,
    speech: np.ndarray,
    profile: tuple[str, np.ndarray] | None = None,
) -> dict[str, NodeResult]:
    """Fan a speaker out to every online node, then persist the resulting status.

    ``profile`` is ``(model, vector)`` when a node already embedded this very speech (enrollment's
    checks did): nodes of that model are handed the vector instead of embedding the speech again,
    the others embed the speech themselves.
    """
    cluster = app[appkeys.CLUSTER]
    db, key = app[appkeys.DB], app[appkeys.BLOBS].master_key
    app[appkeys.FANNING_OUT].add(speaker_id)
    try:
        nodes = await cluster.candidates()
        pushed = [n for n in nodes if profile is not None and n.model == profile[0]]
        embedding = [n for n in nodes if n not in pushed]
        results: dict[str, NodeResult] = {}
        if pushed and profile is not None:
            item = [(tenant_id, speaker_id, profile[1])]
            answers = await asyncio.gather(*(cluster.push_embeddings(n, profile[0], item) for n in pushed))
            results.update((r.node_id, r) for r in answers)
        if embedding:
            results.update(await cluster.hold(embedding, tenant_id, speaker_id, speech))
        if is_erased(app, speaker_id):  # an erasure ran while the nodes were embedding
            await cluster.release(nodes, tenant_id, speaker_id)
            return results
        if profile is not None and any(results[n.node_id].ok for n in pushed):
            embedding_cache.store(db, key, tenant_id, speaker_id, profile[0], profile[1])
        else:
            embedding_cache.remember(db, key, tenant_id, speaker_id, results)
        status, reason = speaker_store.status_after_fanout(results)
        speaker_store.set_status(app[appkeys.DB], speaker_id, status, reason)
        return results
    finally:
        app[appkeys.FANNING_OUT].discard(speaker_id)


def request_digest(form: EnrollmentForm) -> str:
    """SHA-256 of everything an enrollment sends: a retry must send the same."""
    fields = form.model_dump(exclude={"reference", "consent"})
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode())
    for data in (form.reference, form.consent):
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def replayed_speaker(app: web.Application, tenant_id: str, key: str, digest: str) -> dict[str, Any] | None:
    """The speaker an earlier request with this key created; 422 when that request was another one."""
    rows = list(
        app[appkeys.DB].query(
            "SELECT request_sha256, speaker_id FROM idempotency_keys WHERE tenant_id = ? AND key = ?",
            [tenant_id, key],
        )
    )
    if not rows:
        return None
    if rows[0]["request_sha256"] != digest:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different enrollment; send a new key for a new request",
            {"field": "Idempotency-Key"},
        )
    row = speaker_store.get_row(app[appkeys.DB], tenant_id, rows[0]["speaker_id"])
    assert row is not None  # the key's row references the speaker
    return row


async def enroll(app: web.Application, principal: Principal, form: EnrollmentForm, key: str | None) -> Speaker:
    """Run a whole enrollment; returns the speaker document and the optional note.

    Once the speaker is committed the answer is 201 whatever happens next: a fan-out that fails
    (Redis down, nodes unreachable) leaves it pending, and the reconciler offers it again. With an
    ``Idempotency-Key`` a retry of the same request returns the same speaker instead of a second one.
    """
    settings = app[appkeys.SETTINGS]
    db = app[appkeys.DB]
    blobs = app[appkeys.BLOBS]
    digest = request_digest(form)
    if key is not None and (earlier := replayed_speaker(app, principal.tenant_id, key, digest)) is not None:
        return await _existing(app, earlier)
    reference = await analyse_upload(form.reference, "reference", settings)
    consent = await analyse_upload(form.consent, "consent", settings)
    block = preflight_block(reference.report, consent.report)
    if not block.passed:
        raise ApiError(
            422,
            "preflight_failed",
            "a recording failed the quality preflight; see details for what to fix",
            block.model_dump(),
        )

    tenant_id = principal.tenant_id
    ensure_room(settings, len(form.reference) + len(form.consent))
    policy = policies.read(db, tenant_id, settings.consent).consent_checks
    if policy == "off":
        embedded = await _embedded(app, tenant_id, reference.speech)
        verification = consent_check.skipped_by_policy(policy, settings.consent, form.language_primary)
    else:  # the two recordings on two nodes and the words on Whisper, all at once
        embedded, consent_embedded, text = await asyncio.gather(
            _embedded(app, tenant_id, reference.speech, first=0),
            _embedded(app, tenant_id, consent.speech, first=1),
            consent_check.text_check(app, form, consent.audio.samples),
        )
        verification = consent_check.verification(policy, settings.consent, embedded, consent_embedded, text)
    if (refused := consent_check.refusal(verification)) is not None:
        raise refused
    duplicates = duplicates_in(app, tenant_id, embedded.windows) if embedded is not None else []
    speaker_id = new_id("spk")
    consent_id = new_id("cns")
    now = utc_now()
    stored = []
    try:
        stored.append(await asyncio.to_thread(blobs.put, tenant_id, "reference", form.reference))
        stored.append(await asyncio.to_thread(blobs.put, tenant_id, "consent", form.consent))
        with db.atomic():
            blobs.record(stored)
            speaker_store.insert(
                db,
                {
                    "id": speaker_id,
                    "tenant_id": tenant_id,
                    "display_name": form.display_name,
                    "language_primary": form.language_primary,
                    "description": form.description,
                    "enrollment_status": "pending",
                    "status_reason": None,
                    "reference_blob_id": stored[0].id,
                    "consent_blob_id": stored[1].id,
                    "consent_id": consent_id,
                    "preflight": block.model_dump_json(),
                    "created_by_key_id": principal.key_id,
                    "created_at": now,
                    "updated_at": now,
                    "last_active_at": now,
                    "deleted_at": None,
                },
            )
            consents.record(
                db,
                consent_id=consent_id,
                tenant_id=tenant_id,
                speaker_id=speaker_id,
                user_full_name=form.consent_user_full_name,
                stated_purpose=form.consent_stated_purpose,
                consent_text=form.consent_text,
                consent_audio=form.consent,
                reference_audio=form.reference,
                verification=verification,
                enrolled_by_key_id=principal.key_id,
                recorded_at=now,
            )
            record_duplicates(db, tenant_id, speaker_id, duplicates)
            if key is not None:
                db.table("idempotency_keys").insert(
                    {"tenant_id": tenant_id, "key": key, "request_sha256": digest, "speaker_id": speaker_id,
                     "created_at": now}
                )  # fmt: skip
    except sqlite3.IntegrityError:
        for blob in stored:
            blobs.discard(blob)
        # the same key committed meanwhile by a concurrent retry: answer with its speaker
        earlier = replayed_speaker(app, tenant_id, key, digest) if key is not None else None
        if earlier is None:
            raise
        return await _existing(app, earlier)
    except BaseException:
        for blob in stored:
            blobs.discard(blob)
        raise

    note: str | None = None
    try:
        profile = (embedded.model, embedded.profile) if embedded is not None and embedded.profile is not None else None
        results = await offer_to_nodes(app, tenant_id, speaker_id, reference.speech, profile)
    except Exception as exc:  # committed: never report failure for it
        log.warning("fan-out of %s failed (%s); it stays pending and is offered again", speaker_id, exc)
        results, note = {}, FANOUT_FAILED_NOTE
    row = speaker_store.get_row(db, tenant_id, speaker_id)
    assert row is not None
    enrolled_on = sorted(node for node, r in results.items() if r.ok)
    notes = [note or fanout_note(row["enrollment_status"], results), consent_check.note(verification)]
    if duplicates:
        notes.append(duplicate_note(duplicates))
    return speaker_store.document(row, enrolled_on).model_copy(
        update={"possible_duplicates": duplicates or None, "note": " ".join(n for n in notes if n) or None}
    )


def duplicate_note(found: list[PossibleDuplicate]) -> str:
    """What a person should know when the voice is already enrolled."""
    names = ", ".join(f"{d.display_name} ({d.score:.2f})" for d in found)
    return (
        f"this voice is very close to an enrolled profile: {names}. It may be the same person enrolled twice; "
        "both profiles count as one voice when naming speakers. Erase the one you do not need."
    )


async def _embedded(
    app: web.Application, tenant_id: str, speech: np.ndarray, first: int = 0
) -> consent_check.Embedded | None:
    """A recording embedded and scored by a node (consent check, duplicates); None when no node can."""
    try:
        return await consent_check.embed_on_node(app, tenant_id, speech, first)
    except Exception as exc:  # Redis or the nodes unreachable: the policy decides what that means
        log.warning("no node could embed a recording: %s", exc)
        return None


async def _existing(app: web.Application, row: dict[str, Any]) -> Speaker:
    """The document of a speaker an earlier request with the same key enrolled (410 once erased)."""
    if row["deleted_at"] is not None:
        raise deleted_error(row["erasure_audit_id"])
    document = speaker_store.document(row, await app[appkeys.CLUSTER].online_holders(row["id"]))
    return document.model_copy(update={"note": REPLAYED_NOTE})
