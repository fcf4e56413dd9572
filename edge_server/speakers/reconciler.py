"""Background reconciliation of the database with the warm registry.

Every tick: pending speakers are offered to the online nodes (so a speaker enrolled while no
node ran turns ready by itself once one starts), and ready/evicted speakers follow which online
nodes hold them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from appliance import node_registry
from appliance.periodic import running_every
from edge_server import appkeys
from edge_server.speakers import store as speaker_store
from edge_server.speakers.enrollment import offer_to_nodes
from edge_server.speakers.erasure import purge_owed_wal, resume_unfinished, settle_pending_evictions
from edge_server.speakers.references import profile_speech
from edge_server.speakers.warming import heal_nodes

log = logging.getLogger("scaiecho.reconciler")


async def offer_pending(app: web.Application) -> None:
    """Offer every pending speaker to the online nodes, one speaker at a time."""
    for row in speaker_store.with_status(app[appkeys.DB], ["pending"]):
        if row["id"] in app[appkeys.FANNING_OUT] or not await app[appkeys.CLUSTER].candidates():
            continue
        try:
            speech = await asyncio.to_thread(profile_speech, app, row["tenant_id"], row["id"], row["reference_blob_id"])
            await offer_to_nodes(app, row["tenant_id"], row["id"], speech)
        except Exception:  # one unreadable reference must not starve the others
            log.exception("could not offer pending speaker %s", row["id"])


async def follow_holders(app: web.Application) -> None:
    """Move ready/evicted speakers to the status their online holders imply."""
    db = app[appkeys.DB]
    online = {n.node_id for n in await app[appkeys.CLUSTER].candidates()}
    rows = speaker_store.with_status(db, ["ready", "evicted"])
    warm = await node_registry.warm_node_ids_many(app[appkeys.REDIS], [row["id"] for row in rows])
    for row in rows:
        speaker_id, status = row["id"], row["enrollment_status"]
        if speaker_id in app[appkeys.FANNING_OUT]:
            continue
        new_status = speaker_store.status_from_holders(status, warm[speaker_id] & online)
        if new_status != status:
            log.info("speaker %s: %s -> %s", speaker_id, status, new_status)
            speaker_store.set_status(db, speaker_id, new_status)


STAGES = (resume_unfinished, purge_owed_wal, settle_pending_evictions, heal_nodes, offer_pending, follow_holders)


async def reconcile_once(app: web.Application) -> None:
    """One tick: finish erasures first, so nothing erased is ever offered or re-warmed.

    Each stage runs even when an earlier one failed: a fault in one never stalls the others.
    """
    for stage in STAGES:
        try:
            await stage(app)
        except Exception:
            log.exception("reconcile stage %s failed", stage.__name__)


async def reconciler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run `reconcile_once` every ``enrollment.reconcile_interval_s`` for the app's lifetime."""
    interval = app[appkeys.SETTINGS].enrollment.reconcile_interval_s
    async with running_every(interval, lambda: reconcile_once(app), log):
        yield
    for task in app[appkeys.REWARMING].values():
        task.cancel()
    await asyncio.gather(*app[appkeys.REWARMING].values(), return_exceptions=True)
