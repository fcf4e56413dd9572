"""`GET /metrics` in the Prometheus text format, for the operator (not a tenant).

The scraper sends ``Authorization: Bearer <contents of <data-dir>/metrics-token>`` (created 0600
on first use). Labels are routes and outcomes only: never a tenant, speaker, key or any text.
"""

from __future__ import annotations

import hmac
import time

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from appliance.crypto import read_or_create_token
from edge_server import appkeys
from edge_server.access.authorize import bearer_token
from edge_server.errors import ApiError


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by route template and final status (outermost middleware)."""
    metrics = request.app[appkeys.METRICS]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = _route(request)
        metrics.requests.labels(request.method, route, str(status)).inc()
        if not route.endswith("/transcribe/stream"):
            metrics.request_seconds.labels(route).observe(time.perf_counter() - started)


routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics_page(request: web.Request) -> web.Response:
    """Prometheus exposition; 401 without the operator's metrics token."""
    expected = read_or_create_token(request.app[appkeys.SETTINGS].metrics_token_path)
    token = bearer_token(request) or ""
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError(401, "unauthenticated", "send 'Authorization: Bearer <contents of <data-dir>/metrics-token>'")
    metrics = request.app[appkeys.METRICS]
    try:
        metrics.nodes_online.set(len(await request.app[appkeys.CLUSTER].candidates()))
    except Exception:  # Redis down: the other figures still matter
        metrics.nodes_online.set(0)
    scheduler = request.app[appkeys.ASR]
    metrics.asr_load.set(scheduler.load if scheduler is not None else 0.0)
    for (kind, outcome), (count, seconds) in (scheduler.decodes if scheduler is not None else {}).items():
        metrics.asr_decodes.labels(kind, outcome).set(count)
        metrics.asr_decode_seconds.labels(kind, outcome).set(seconds)
    return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
