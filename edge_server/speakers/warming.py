"""Putting speakers on nodes again: explicit re-warm, and re-warm of nodes that (re)join cold.

A joining node first gets the cached embeddings of its model in bulk (edge_server/storage/embedding_cache.py);
whatever is not cached for that model is re-embedded from the encrypted reference recording.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from appliance.contract.documents import WarmResult
from appliance.node_registry import NodeInfo
from edge_server import appkeys
from edge_server.cluster import NodeResult
from edge_server.errors import ApiError
from edge_server.speakers import store as speaker_store
from edge_server.speakers.references import profile_speech
from edge_server.storage import embedding_cache

log = logging.getLogger("scaiecho.warming")

#: Statuses of speakers every node should hold.
WARMABLE = ("ready", "evicted")
#: Cached embeddings sent to a node in one request.
PUSH_BATCH = 250


def _live_reference(app: web.Application, speaker_id: str) -> tuple[str, str] | None:
    return speaker_store.live_reference(app[appkeys.DB], speaker_id)


async def warm(app: web.Application, speaker_id: str, nodes: list[NodeInfo]) -> dict[str, NodeResult]:
    """Embed a speaker's stored references on ``nodes``. An erasure that raced us is undone at once."""
    live = _live_reference(app, speaker_id)
    if live is None or not nodes:
        return {}
    tenant_id, blob_id = live
    speech = await asyncio.to_thread(profile_speech, app, tenant_id, speaker_id, blob_id)
    results = await app[appkeys.CLUSTER].hold(nodes, tenant_id, speaker_id, speech)
    if _live_reference(app, speaker_id) is None:  # erased while we were embedding
        await app[appkeys.CLUSTER].release(nodes, tenant_id, speaker_id)
    else:
        embedding_cache.remember(app[appkeys.DB], app[appkeys.BLOBS].master_key, tenant_id, speaker_id, results)
    return results


async def enrolled_on(app: web.Application, speaker_id: str) -> list[str]:
    """Online nodes the warm registry says hold the speaker."""
    return await app[appkeys.CLUSTER].online_holders(speaker_id)


async def rewarm(app: web.Application, row: dict[str, Any], wanted: list[str]) -> WarmResult:
    """Re-embed a live speaker on the ``wanted`` candidate nodes (all of them when empty).

    Returns the per-node results, the online holders and the status it leaves; 422 for a node id
    that is not a candidate.
    """
    candidates = {n.node_id: n for n in await app[appkeys.CLUSTER].candidates()}
    unknown = sorted(set(wanted) - set(candidates))
    if unknown:
        raise ApiError(
            422,
            "invalid_field",
            f"not a candidate node: {', '.join(unknown)}",
            {"field": "node_ids", "not_candidates": unknown},
        )
    targets = [candidates[n] for n in sorted(set(wanted))] if wanted else list(candidates.values())
    results = await warm(app, row["id"], targets)
    holders = await enrolled_on(app, row["id"])
    status = speaker_store.status_after_rewarm(row["enrollment_status"], results, holders)
    if status != row["enrollment_status"]:
        speaker_store.set_status(app[appkeys.DB], row["id"], status)
    return WarmResult(
        results={n: r.outcome() for n, r in sorted(results.items())}, enrolled_on=holders, enrollment_status=status
    )


async def push_cached(app: web.Application, node: NodeInfo, speaker_ids: list[str]) -> set[str]:
    """Hand ``node`` the cached embeddings of its model it lacks; returns the speakers it took."""
    db = app[appkeys.DB]
    cluster = app[appkeys.CLUSTER]
    cached = await asyncio.to_thread(embedding_cache.load, db, app[appkeys.BLOBS].master_key, speaker_ids, node.model)
    taken: set[str] = set()
    items = [(tenant_id, speaker_id, vector) for speaker_id, (tenant_id, vector) in cached.items()]
    for start in range(0, len(items), PUSH_BATCH):
        batch = items[start : start + PUSH_BATCH]
        if not (await cluster.push_embeddings(node, node.model, batch)).ok:
            break
        taken.update(speaker_id for _, speaker_id, _ in batch)
        for tenant_id, speaker_id, _ in batch:  # an erasure may have raced the push
            if _live_reference(app, speaker_id) is None:
                await cluster.release([node], tenant_id, speaker_id)
    return taken


def _live_speakers(app: web.Application) -> tuple[set[str], dict[str, str], set[str]]:
    """(tenant ids, warmable speaker id -> tenant id, every live speaker id) from the database."""
    db = app[appkeys.DB]
    tenants = {row["id"] for row in db.query("SELECT id FROM tenants")}
    warmable = {row["id"]: row["tenant_id"] for row in speaker_store.with_status(db, WARMABLE)}
    return tenants, warmable, speaker_store.live_ids(db)


async def rewarm_node(app: web.Application, node: NodeInfo) -> None:
    """Make what a node process really holds match the database, both ways.

    Its own list is the truth (not the warm registry, which a frozen node or a restarted Redis
    leaves wrong): speakers of our tenants that are erased or unknown are released; warmable
    speakers it lacks are pushed (cached embeddings first) or re-embedded. Speakers that an
    enrollment or erasure is working on right now are left to that path.
    """
    cluster = app[appkeys.CLUSTER]
    held = await cluster.holdings(node)
    tenants, warmable, live = _live_speakers(app)
    busy = {*app[appkeys.FANNING_OUT], *app[appkeys.ERASING]}
    stale = sorted((t, s) for t, s in held if t in tenants and s not in live and s not in busy)
    for tenant_id, speaker_id in stale:
        log.warning("%s held erased or unknown speaker %s; releasing it", node.node_id, speaker_id)
        await cluster.release([node], tenant_id, speaker_id)
    if not app[appkeys.SETTINGS].enrollment.rewarm_on_join:
        return
    held_ids = {s for _, s in held}
    missing = [s for s in warmable if s not in held_ids and s not in busy]
    if not missing:
        return
    log.info("re-warming %s with %d speakers", node.node_id, len(missing))
    taken = await push_cached(app, node, missing)
    missing = [speaker_id for speaker_id in missing if speaker_id not in taken]
    gate = asyncio.Semaphore(app[appkeys.SETTINGS].enrollment.rewarm_concurrency)

    async def one(speaker_id: str) -> None:
        async with gate:
            try:
                await warm(app, speaker_id, [node])
            except Exception:  # an unreadable reference must not keep the others off the node
                log.exception("could not re-warm speaker %s on %s", speaker_id, node.node_id)

    await asyncio.gather(*(one(s) for s in missing))
    log.info("re-warmed %s", node.node_id)


async def heal_nodes(app: web.Application) -> None:
    """Reconcile every online node with the database: at once for a new boot, else periodically.

    A node that froze (SIGSTOP, swap) keeps its boot id but may have missed holds and releases;
    checking its real holdings every ``enrollment.holdings_check_interval_s`` heals it both ways.
    A failed check is retried on the next tick.
    """
    known = app[appkeys.KNOWN_BOOTS]
    tasks = app[appkeys.REWARMING]
    due_at = app[appkeys.NEXT_HEALTH_CHECK]
    now = time.monotonic()
    for node in await app[appkeys.CLUSTER].candidates():
        running = tasks.get(node.node_id)
        if running is not None and not running.done():
            continue
        if known.get(node.node_id) == node.boot_id and now < due_at.get(node.node_id, 0.0):
            continue
        tasks[node.node_id] = asyncio.create_task(_heal(app, node))


async def _heal(app: web.Application, node: NodeInfo) -> None:
    try:
        await rewarm_node(app, node)
    except Exception:
        log.warning("could not reconcile %s yet; retrying on a later tick", node.node_id, exc_info=True)
        return
    app[appkeys.KNOWN_BOOTS][node.node_id] = node.boot_id
    interval = app[appkeys.SETTINGS].enrollment.holdings_check_interval_s
    app[appkeys.NEXT_HEALTH_CHECK][node.node_id] = time.monotonic() + interval


def warming_node_ids(app: web.Application, online: list[NodeInfo]) -> list[str]:
    """Online nodes whose current boot has not been reconciled yet while there are speakers to hold.

    Right after a start or a node restart the speakers are being put back on the nodes: names
    are not served reliably until this is empty (/healthz says ``warming``).
    """
    known = app[appkeys.KNOWN_BOOTS]
    pending = [n.node_id for n in online if known.get(n.node_id) != n.boot_id]
    if not pending:
        return []
    return sorted(pending) if speaker_store.with_status(app[appkeys.DB], WARMABLE) else []
