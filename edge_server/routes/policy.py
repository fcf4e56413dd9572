"""`GET|PUT /policy`: which backend serves the tenant (scope scaiecho:admin)."""

from __future__ import annotations

from aiohttp import web

from appliance.contract import BASE
from appliance.contract.documents import PolicyUpdate
from edge_server import appkeys
from edge_server.access import scopes as auth
from edge_server.access.authorize import authorize
from edge_server.errors import ApiError, json_body, json_response
from edge_server.streaming.policy import get_policy, set_policy, unavailable_choice

routes = web.RouteTableDef()


@routes.get(f"{BASE}/policy")
async def read_policy(request: web.Request) -> web.Response:
    """The tenant's transcription policy."""
    principal = authorize(request, auth.ADMIN)
    return json_response(get_policy(request.app[appkeys.DB], principal.tenant_id))


@routes.put(f"{BASE}/policy")
async def write_policy(request: web.Request) -> web.Response:
    """Set ``{"backend": "auto" | "A" | "B"}``."""
    principal = authorize(request, auth.ADMIN)
    backend = (await json_body(request, PolicyUpdate)).backend
    if (why := unavailable_choice(backend, request.app[appkeys.RELAY].configured)) is not None:
        raise ApiError(422, "backend_unavailable", why, {"field": "backend"})
    return json_response(set_policy(request.app[appkeys.DB], principal.tenant_id, backend, principal.key_id))
