"""The pyannote node: one OS process that holds enrolled speaker embeddings in memory.

It computes an embedding from the reference speech the edge server sends, keeps it per tenant,
records in Redis which speakers it holds, and heartbeats so that the edge server knows it is a
candidate. It starts cold: whatever a previous process of the same node id held is forgotten.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from aiohttp import web
from redis.asyncio import Redis

from appliance import logs, node_registry
from appliance import node_protocol as proto
from appliance.clock import utc_now
from appliance.crypto import cluster_token
from appliance.node.speech import embed_body, identify
from appliance.node.state import (
    INFO,
    NODE_SETTINGS,
    REDIS,
    SECRET,
    STATE,
    NodeState,
    Refused,
    cluster_auth,
    error_response,
)
from appliance.periodic import running_every
from appliance.settings import NodeSettings, Settings, load_settings

log = logging.getLogger("scaiecho.node")


def _check_deadline(request: web.Request) -> None:
    """Refuse a hold whose caller has given up waiting (`proto.HOLD_DEADLINE_HEADER`)."""
    raw = request.headers.get(proto.HOLD_DEADLINE_HEADER)
    if raw is None:
        return
    try:
        deadline = float(raw)
    except ValueError as exc:
        raise Refused(400, "bad_request", f"{proto.HOLD_DEADLINE_HEADER} must be a Unix time") from exc
    if time.time() > deadline:
        raise Refused(409, "hold_expired", "the caller stopped waiting for this hold; it was not applied")


async def hold_speaker(request: web.Request) -> web.Response:
    """PUT reference speech -> compute and hold the embedding (unless its deadline passed meanwhile)."""
    state = request.app[STATE]
    tenant_id, speaker_id = request.match_info["tenant_id"], request.match_info["speaker_id"]
    _check_deadline(request)
    embedding = await embed_body(request)
    _check_deadline(request)  # checked again: the process may have been frozen while embedding
    state.hold(tenant_id, speaker_id, embedding)
    await node_registry.mark_held(request.app[REDIS], state.node_id, tenant_id, speaker_id)
    log.info("holding speaker %s of tenant %s", speaker_id, tenant_id)
    # The edge server keeps the embedding (encrypted) to re-warm restarted nodes quickly.
    return web.json_response(
        {
            "ok": True,
            "node_id": state.node_id,
            "model": state.embedder.model_name,
            "embedding": proto.encode_vector(embedding),
        }
    )


async def hold_embeddings(request: web.Request) -> web.Response:
    """POST precomputed embeddings of the node's own model -> hold them all (bulk re-warm)."""
    state = request.app[STATE]
    try:
        body = await request.json()
        items = [
            (item["tenant_id"], item["speaker_id"], proto.decode_vector(item["embedding"])) for item in body["items"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        return error_response(400, "bad_request", f"malformed embeddings: {exc}")
    if body.get("model") != state.embedder.model_name:
        return error_response(409, "model_mismatch", f"this node runs {state.embedder.model_name}")
    if any(vector.shape != (state.embedder.dimension,) for _, _, vector in items):
        return error_response(422, "wrong_dimension", f"embeddings must have {state.embedder.dimension} values")
    _check_deadline(request)  # the process may have been frozen since the caller gave up
    for tenant_id, speaker_id, vector in items:
        state.hold(tenant_id, speaker_id, vector)
    await node_registry.mark_held_many(
        request.app[REDIS], state.node_id, [(tenant_id, speaker_id) for tenant_id, speaker_id, _ in items]
    )
    return web.json_response({"ok": True, "node_id": state.node_id, "held": len(items)})


async def release_speaker(request: web.Request) -> web.Response:
    """DELETE -> forget the embedding (idempotent)."""
    state = request.app[STATE]
    tenant_id, speaker_id = request.match_info["tenant_id"], request.match_info["speaker_id"]
    was_held = state.release(tenant_id, speaker_id)
    await node_registry.mark_released(request.app[REDIS], state.node_id, tenant_id, speaker_id)
    return web.json_response({"ok": True, "node_id": state.node_id, "was_held": was_held})


async def list_speakers(request: web.Request) -> web.Response:
    """GET -> the speaker ids this process holds for a tenant (from memory, not Redis)."""
    state = request.app[STATE]
    return web.json_response({"node_id": state.node_id, "speaker_ids": state.held(request.match_info["tenant_id"])})


async def list_held(request: web.Request) -> web.Response:
    """GET -> every ``[tenant_id, speaker_id]`` this process holds (the edge reconciles against it)."""
    state = request.app[STATE]
    return web.json_response({"node_id": state.node_id, "held": [list(pair) for pair in state.pairs()]})


async def status(request: web.Request) -> web.Response:
    """GET -> identity and counts."""
    state = request.app[STATE]
    held = sum(len(v) for v in state.embeddings.values())
    embedder = state.embedder
    return web.json_response(
        {
            "node_id": state.node_id,
            "boot_id": state.boot_id,
            "model": embedder.model_name,
            "held": held,
            "segmentation": state.segmenter is not None,
            "windows": {"embedded": embedder.misses, "from_cache": embedder.hits},
        }
    )


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[REDIS].aclose()


async def _heartbeat_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[NODE_SETTINGS]
    redis = app[REDIS]

    async def beat() -> None:
        info = replace(app[INFO], last_heartbeat_at=utc_now())
        await node_registry.heartbeat(redis, info, settings.heartbeat_ttl_s)
        # A Redis that restarted empty (or lost writes) learns again what this process holds.
        await node_registry.assert_holdings(redis, info.node_id, app[STATE].pairs)

    async with running_every(settings.heartbeat_interval_s, beat, log, delay_first=True):
        yield
    try:
        await node_registry.deregister(redis, app[STATE].node_id)
    except Exception:
        log.warning("could not deregister cleanly", exc_info=True)


def create_node_app(
    state: NodeState, redis: Redis, secret: bytes, info: node_registry.NodeInfo, settings: NodeSettings
) -> web.Application:
    """The node's internal API; heartbeats run for the app's lifetime."""
    app = web.Application(middlewares=[cluster_auth], client_max_size=64 * 1024 * 1024)
    app[STATE] = state
    app[REDIS] = redis
    app[SECRET] = secret
    app[INFO] = info
    app[NODE_SETTINGS] = settings
    app.cleanup_ctx.extend([_redis_ctx, _heartbeat_ctx])
    app.router.add_get(proto.STATUS_PATH, status)
    app.router.add_get(proto.HELD_PATH, list_held)
    app.router.add_post(proto.EMBEDDINGS_PATH, hold_embeddings)
    app.router.add_get(proto.speakers_path("{tenant_id}"), list_speakers)
    app.router.add_post(proto.identify_path("{tenant_id}"), identify)
    app.router.add_put(proto.speaker_path("{tenant_id}", "{speaker_id}"), hold_speaker)
    app.router.add_delete(proto.speaker_path("{tenant_id}", "{speaker_id}"), release_speaker)
    return app


async def serve(settings: Settings, node_id: str, redis_url: str, secret: bytes, port: int) -> None:
    """Load the model, bind, register, and serve until cancelled."""
    from models.registry import load_embedder, load_segmenter

    embedder = await asyncio.to_thread(load_embedder, settings.models)
    try:
        segmenter = await asyncio.to_thread(load_segmenter, settings.models)
    except (RuntimeError, OSError) as exc:  # streams still get turns, cut from the windows
        log.warning("speaker segmentation is off: %s", exc)
        segmenter = None
    boot_id = secrets.token_hex(8)
    state = NodeState(node_id=node_id, boot_id=boot_id, embedder=embedder, segmenter=segmenter)
    sock = socket.create_server((settings.nodes.host, port))
    host, bound_port = sock.getsockname()[:2]
    now = utc_now()
    info = node_registry.NodeInfo(
        node_id=node_id,
        url=f"http://{host}:{bound_port}",
        boot_id=boot_id,
        engines=("pyannote", "segmentation") if segmenter is not None else ("pyannote",),
        model=embedder.model_name,
        started_at=now,
        last_heartbeat_at=now,
    )
    redis = Redis.from_url(redis_url, decode_responses=True)
    app = create_node_app(state, redis, secret, info, settings.nodes)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    await node_registry.register(redis, info, settings.nodes.heartbeat_ttl_s)
    log.info("node %s (boot %s) serving on %s", node_id, boot_id, info.url)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """`scaiecho-node --node-id ID --redis-url URL --cluster-secret-file F`."""
    parser = argparse.ArgumentParser(prog="scaiecho-node", description="One ScaiEcho pyannote node.")
    parser.add_argument("--node-id", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--cluster-secret-file", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=None, help="where config.toml is looked up")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--port", type=int, default=0, help="internal API port (0 = any free port)")
    args = parser.parse_args(argv)
    settings = load_settings(args.data_dir, args.config)
    logs.setup(args.node_id, settings.logging.format, settings.logging.level)
    secret = cluster_token(args.cluster_secret_file)
    import signal

    loop = asyncio.new_event_loop()
    task = loop.create_task(serve(settings, args.node_id, args.redis_url, secret, args.port))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass
    finally:
        loop.close()


if __name__ == "__main__":
    main()
