"""API keys of the caller's tenant (scope scaiecho:admin): list, create, revoke.

A key never grants a scope its creator lacks. Secrets are shown once, at creation; only their
digest is stored. Revocation takes effect at once, open streams included (they re-check their
key every `stream.key_check_interval_s`).
"""

from __future__ import annotations

import sqlite_utils
from aiohttp import web

from appliance.contract import BASE
from appliance.contract.documents import CreatedKey, KeyRequest
from edge_server import appkeys
from edge_server.access import scopes as auth
from edge_server.access.authorize import authorize
from edge_server.access.scopes import Principal
from edge_server.access.tenancy import create_key, key_rows, revoke_key
from edge_server.errors import ApiError, invalid_field, json_body, json_response, not_found

routes = web.RouteTableDef()
MAX_NAME_CHARS = 200


@routes.get(f"{BASE}/keys")
async def list_keys(request: web.Request) -> web.Response:
    """The tenant's keys, newest first, revoked ones included; never a secret."""
    principal = authorize(request, auth.ADMIN)
    return json_response(key_rows(request.app[appkeys.DB], principal.tenant_id))


@routes.post(f"{BASE}/keys")
async def create(request: web.Request) -> web.Response:
    """``{"name": "...", "scopes": [...]}`` -> 201 with the secret, shown only here."""
    principal = authorize(request, auth.ADMIN)
    name, scopes = checked_request(principal, await json_body(request, KeyRequest))
    db = request.app[appkeys.DB]
    issued = create_key(db, principal.tenant_id, scopes, name, principal.key_id)
    created = key_rows(db, principal.tenant_id, issued.id)[0]
    return json_response(CreatedKey(**created.model_dump(), key=issued.token), status=201)


def checked_request(principal: Principal, body: KeyRequest) -> tuple[str, list[str]]:
    """The name and scopes of a new key; 403 for a scope the creator lacks (a key never escalates)."""
    name = body.name.strip()
    if not name:
        raise invalid_field("name", f"name must be 1 to {MAX_NAME_CHARS} characters")
    scopes: list[str] = list(dict.fromkeys(body.scopes))
    if lacking := auth.ungrantable_scopes(principal.scopes, scopes):
        raise ApiError(
            403,
            "forbidden",
            f"a key cannot grant {lacking[0]}, which its creator lacks",
            {"required_scope": lacking[0]},
        )
    return name, scopes


def revocable(db: sqlite_utils.Database, principal: Principal, key_id: str) -> None:
    """404 for a key that is not the tenant's; 409 for the caller's own key (nobody locks themselves out)."""
    if not key_rows(db, principal.tenant_id, key_id):
        raise not_found("key")
    if key_id == principal.key_id:
        raise ApiError(
            409,
            "own_key",
            "a key cannot revoke itself; revoke it with another key that holds scaiecho:admin",
            {"key_id": key_id},
        )


@routes.delete(f"{BASE}/keys/{{key_id}}")
async def revoke(request: web.Request) -> web.Response:
    """Revoke at once (idempotent); another tenant's key is a 404 like a missing one, the caller's own a 409."""
    principal = authorize(request, auth.ADMIN)
    key_id = request.match_info["key_id"]
    db = request.app[appkeys.DB]
    revocable(db, principal, key_id)
    revoke_key(db, key_id, principal.tenant_id)
    return json_response(key_rows(db, principal.tenant_id, key_id)[0])
