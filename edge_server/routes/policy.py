"""`GET|PUT /policy`: which backend serves the tenant (scope scaiecho:admin)."""

from __future__ import annotations

from aiohttp import web

from appliance.contract import BASE
from appliance.contract.documents import PolicyUpdate
from edge_server import appkeys
from edge_server.access import scopes as auth
from edge_server.access.authorize import authorize
from edge_server.errors import ApiError, invalid_field, json_body, json_response
from edge_server.storage import policies
from edge_server.streaming.policy import unavailable_choice

routes = web.RouteTableDef()


@routes.get(f"{BASE}/policy")
async def read_policy(request: web.Request) -> web.Response:
    """The tenant's transcription policy."""
    principal = authorize(request, auth.ADMIN)
    app = request.app
    return json_response(policies.read(app[appkeys.DB], principal.tenant_id, app[appkeys.SETTINGS].consent))


@routes.put(f"{BASE}/policy")
async def write_policy(request: web.Request) -> web.Response:
    """Change ``backend``, ``consent_checks`` and/or ``retention_days``; every change is logged."""
    principal = authorize(request, auth.ADMIN)
    update = await json_body(request, PolicyUpdate)
    changes = update.model_dump(exclude_none=True)
    if not changes:
        raise invalid_field("backend", "send at least one of backend, consent_checks, retention_days")
    app = request.app
    if update.backend is not None and (why := unavailable_choice(update.backend, app[appkeys.RELAY].configured)):
        raise ApiError(422, "backend_unavailable", why, {"field": "backend"})
    defaults = app[appkeys.SETTINGS].consent
    policy = policies.update(app[appkeys.DB], principal.tenant_id, changes, principal.key_id, defaults)
    return json_response(policy)
