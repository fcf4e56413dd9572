"""GDPR Art. 17 erasure as a resumable job: tombstone -> shred -> evict -> audit.

Each step is durable before the next starts and every step is idempotent, so an edge server that
dies anywhere in the middle finishes the job on restart (the reconciler resumes unfinished jobs)
and never leaves a half-deleted speaker. The tombstone comes first: from that instant the speaker
answers 410, is never offered to a node again, and nothing can read its recordings.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from appliance import node_registry
from appliance.clock import utc_now
from appliance.contract.documents import ErasureReceipt
from edge_server import appkeys
from edge_server.access.scopes import Principal
from edge_server.access.tenancy import new_id
from edge_server.errors import ApiError, not_found
from edge_server.speakers import store as speaker_store
from edge_server.speakers.voices import forget_duplicates
from edge_server.storage import audit, embedding_cache
from edge_server.storage.db import purge_wal

log = logging.getLogger("scaiecho.erasure")


def deleted_error(audit_id: str | None) -> ApiError:
    """410 for an erased speaker of the caller's own tenant."""
    return ApiError(410, "speaker_deleted", "this speaker was erased", {"audit_id": audit_id})


def tombstone(app: web.Application, principal: Principal, speaker_id: str, reason: str = "request") -> None:
    """Step 1, one transaction: mark deleted, scrub the profile, record the job (reason: request | retention)."""
    db = app[appkeys.DB]
    row = speaker_store.erasure_target(db, principal.tenant_id, speaker_id)
    if row is None:
        raise not_found("speaker")
    if row["deleted_at"] is not None:
        raise deleted_error(row["erasure_audit_id"])
    now = utc_now()
    blob_ids = [b for b in (row["reference_blob_id"], row["consent_blob_id"]) if b]
    blob_ids += speaker_store.added_reference_blob_ids(db, speaker_id)
    with db.atomic():
        speaker_store.tombstone(db, speaker_id, now)
        db.execute("DELETE FROM idempotency_keys WHERE speaker_id = ?", [speaker_id])
        forget_duplicates(db, speaker_id)
        speaker_store.forget_added_references(db, speaker_id)
        db.table("erasure_jobs").insert(
            {
                "speaker_id": speaker_id,
                "tenant_id": principal.tenant_id,
                "requested_by_key_id": principal.key_id,
                "requested_at": now,
                "state": "tombstoned",
                "blob_ids": json.dumps(blob_ids),
                "reason": reason,
            }
        )


def _job(app: web.Application, speaker_id: str) -> dict[str, Any]:
    return next(app[appkeys.DB].query("SELECT * FROM erasure_jobs WHERE speaker_id = ?", [speaker_id]))


def shred(app: web.Application, job: dict[str, Any]) -> None:
    """Step 2: destroy the wrapped data keys (crypto-shredding) and the cached embeddings, then the
    ciphertext files. ``blob_bytes_deleted`` counts the recordings' ciphertext."""
    db = app[appkeys.DB]
    blob_ids = json.loads(job["blob_ids"])
    with db.atomic():
        size = app[appkeys.BLOBS].destroy_keys(blob_ids)
        embedding_cache.shred(db, job["speaker_id"])
        db.execute(
            "UPDATE erasure_jobs SET state = 'shredded', blob_bytes_deleted = ? WHERE speaker_id = ?",
            [size, job["speaker_id"]],
        )
    app[appkeys.BLOBS].remove_files(job["tenant_id"], blob_ids)


async def evict(app: web.Application, job: dict[str, Any]) -> None:
    """Step 3: every node forgets the speaker; every node that could not confirm owes an eviction.

    Not only the registry's holders: a node that froze or timed out during a hold may apply it
    later without the registry knowing, so every registered node that is not online now (and
    every online one that fails to answer) gets a pending eviction, sent once it answers again.
    """
    db = app[appkeys.DB]
    cluster = app[appkeys.CLUSTER]
    redis = app[appkeys.REDIS]
    speaker_id, tenant_id = job["speaker_id"], job["tenant_id"]
    online = await cluster.candidates()
    maybe_holding = await node_registry.registered_ids(redis) | await node_registry.warm_node_ids(redis, speaker_id)
    results = await cluster.release(online, tenant_id, speaker_id)
    evicted = sorted(n for n, r in results.items() if r.ok)
    errors = {n: r.error or "error" for n, r in results.items() if not r.ok}
    online_ids = {n.node_id for n in online}
    for node_id in maybe_holding - online_ids:
        errors[node_id] = "offline"
    now = utc_now()
    with db.atomic():
        for node_id in errors:
            db.execute(
                "INSERT OR IGNORE INTO pending_evictions VALUES (?, ?, ?, ?)", [node_id, speaker_id, tenant_id, now]
            )
        db.execute(
            "UPDATE erasure_jobs SET state = 'evicted', evicted_from = ?, error_summary = ? WHERE speaker_id = ?",
            [json.dumps(evicted), json.dumps(dict(sorted(errors.items()))), speaker_id],
        )


def record(app: web.Application, job: dict[str, Any]) -> None:
    """Step 4: the immutable, hash-chained audit row; the job is done."""
    db = app[appkeys.DB]
    consent_id = speaker_store.column(db, job["speaker_id"], "consent_id")
    audit_id = new_id("era")
    seal = app[appkeys.AUDIT_SEAL]
    with db.atomic():
        row = audit.append(
            db,
            {
                "id": audit_id,
                "tenant_id": job["tenant_id"],
                "speaker_id": job["speaker_id"],
                "consent_id": consent_id,
                "requested_by_key_id": job["requested_by_key_id"],
                "requested_at": job["requested_at"],
                "completed_at": utc_now(),
                "blob_ids": job["blob_ids"],
                "blob_bytes_deleted": job["blob_bytes_deleted"],
                "evicted_from": job["evicted_from"],
                "error_summary": job["error_summary"],
                "reason": job["reason"],
            },
            seal,
        )
        db.execute(
            "UPDATE erasure_jobs SET state = 'done', audit_id = ? WHERE speaker_id = ?", [audit_id, job["speaker_id"]]
        )
        speaker_store.set_erasure_audit(db, job["speaker_id"], audit_id)
    seal.move_anchor(row["seq"], row["row_hash"])
    app[appkeys.METRICS].audit_head.set(row["seq"])


async def complete(app: web.Application, speaker_id: str) -> ErasureReceipt:
    """Run the remaining steps of a tombstoned speaker's job (idempotent) and return its receipt."""
    app[appkeys.ERASING].add(speaker_id)
    try:
        job = _job(app, speaker_id)
        if job["state"] == "tombstoned":
            shred(app, job)
            job = _job(app, speaker_id)
        if job["state"] == "shredded":
            await evict(app, job)
            job = _job(app, speaker_id)
        if job["state"] == "evicted":
            record(app, job)
            job = _job(app, speaker_id)
    finally:
        app[appkeys.ERASING].discard(speaker_id)
    purge_freed_pages(app)
    deleted_at = speaker_store.column(app[appkeys.DB], speaker_id, "deleted_at")
    return ErasureReceipt(
        speaker_id=speaker_id,
        audit_id=job["audit_id"],
        blob_bytes_deleted=job["blob_bytes_deleted"],
        evicted_from=json.loads(job["evicted_from"]),
        error_summary=json.loads(job["error_summary"]),
        deleted_at=deleted_at,
    )


def purge_freed_pages(app: web.Application) -> None:
    """Leave no copy of destroyed key material in the WAL: checkpoint it into the main file
    (where ``secure_delete`` zeroed the freed cells) and truncate it to nothing.

    A busy checkpoint (a long reader) is owed and retried by the reconciler until it succeeds.
    """
    if purge_wal(app[appkeys.DB]):
        app[appkeys.WAL_PURGE_OWED].clear()
    else:
        app[appkeys.WAL_PURGE_OWED].add("erasure")
        log.warning("the WAL could not be truncated after an erasure yet; retrying")


async def purge_owed_wal(app: web.Application) -> None:
    """Reconciler stage: retry a WAL purge an erasure could not finish."""
    if app[appkeys.WAL_PURGE_OWED]:
        purge_freed_pages(app)


async def erase(app: web.Application, principal: Principal, speaker_id: str, reason: str = "request") -> ErasureReceipt:
    """The whole erasure of one speaker, acknowledged only once every step is durable."""
    tombstone(app, principal, speaker_id, reason)
    receipt = await complete(app, speaker_id)
    app[appkeys.METRICS].erasures.inc()
    return receipt


async def resume_unfinished(app: web.Application) -> None:
    """Finish jobs a crashed process left behind."""
    rows = app[appkeys.DB].execute("SELECT speaker_id FROM erasure_jobs WHERE state != 'done'").fetchall()
    for (speaker_id,) in rows:
        if speaker_id not in app[appkeys.ERASING]:
            try:
                await complete(app, speaker_id)
            except Exception:  # retried next tick; the other jobs go on
                log.exception("could not finish the erasure of %s yet", speaker_id)


async def settle_pending_evictions(app: web.Application) -> None:
    """Evict erased speakers from nodes that could not be reached at the time, once they answer."""
    db = app[appkeys.DB]
    rows = db.execute("SELECT node_id, speaker_id, tenant_id FROM pending_evictions").fetchall()
    if not rows:
        return
    cluster = app[appkeys.CLUSTER]
    online = {n.node_id: n for n in await cluster.candidates()}
    for node_id, speaker_id, tenant_id in rows:
        node = online.get(node_id)
        if node is None:
            continue
        result = (await cluster.release([node], tenant_id, speaker_id))[node_id]
        if result.ok:
            with db.atomic():
                db.execute("DELETE FROM pending_evictions WHERE node_id = ? AND speaker_id = ?", [node_id, speaker_id])
