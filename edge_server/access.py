"""Who is calling, and may they: bearer-key authentication and scope checks for handlers."""

from __future__ import annotations

from aiohttp import web

from edge_server import appkeys
from edge_server.auth import Principal, missing_scope
from edge_server.errors import ApiError
from edge_server.tenancy import authenticate

UNAUTHENTICATED = ApiError(401, "unauthenticated", "a valid API key is required: send 'Authorization: Bearer <key>'")


def bearer_token(request: web.Request, allow_query: bool = False) -> str | None:
    """The key from the Authorization header (or ``?access_token=`` where allowed)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    if allow_query:
        return request.query.get("access_token")
    return None


def authorize(request: web.Request, scope: str, allow_query: bool = False) -> Principal:
    """The caller's principal if it holds ``scope``; else 401 or 403 per the contract."""
    token = bearer_token(request, allow_query)
    principal = authenticate(request.app[appkeys.DB], token) if token else None
    if principal is None:
        raise UNAUTHENTICATED
    lacking = missing_scope(principal.scopes, scope)
    if lacking is not None:
        raise ApiError(403, "forbidden", f"this key lacks the {lacking} scope", {"required_scope": lacking})
    return principal
