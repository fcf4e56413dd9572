"""Unauthenticated system routes: health and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from appliance.contract.documents import Health
from edge_server import appkeys
from edge_server.openapi import spec
from edge_server.speakers.warming import warming_node_ids
from edge_server.storage import disk

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Redis, nodes and ASR at a glance; 200 when all is well, 503 otherwise."""
    redis_ok = True
    online = []
    try:
        await request.app[appkeys.REDIS].ping()
        online = await request.app[appkeys.CLUSTER].candidates()
    except Exception:
        redis_ok = False
    asr_ok = request.app[appkeys.ASR] is not None
    disk_ok = not disk.is_low(request.app[appkeys.SETTINGS])
    warming = warming_node_ids(request.app, online)
    ok = redis_ok and bool(online) and asr_ok and disk_ok
    status = "degraded" if not ok else "warming" if warming else "ok"
    body = Health(
        status=status,
        redis="ok" if redis_ok else "down",
        nodes_online=len(online),
        asr="ok" if asr_ok else "down",
        disk="ok" if disk_ok else "low",
        warming_nodes=warming or None,
    )
    return web.json_response(body.model_dump(mode="json", exclude_none=True), status=200 if status == "ok" else 503)


@routes.get("/v1/modules/scaiecho/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3 description of every HTTP route."""
    return web.json_response(spec())
