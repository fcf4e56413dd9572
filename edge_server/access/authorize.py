"""Who is calling, and may they: bearer-key authentication and scope checks for handlers."""

from __future__ import annotations

from aiohttp import web

from edge_server import appkeys
from edge_server.access.brute_force import key_id_of, too_many_attempts
from edge_server.access.scopes import Principal, missing_scope
from edge_server.access.tenancy import authenticate
from edge_server.errors import ApiError

#: No key in the request: say how to send one.
UNAUTHENTICATED = ApiError(401, "unauthenticated", "a valid API key is required: send 'Authorization: Bearer <key>'")
#: A key was sent but is not valid: say that, not how to send it.
KEY_REJECTED = ApiError(
    401,
    "unauthenticated",
    "this API key is not valid: it is mistyped, revoked, or from another appliance; ask an admin for a new key",
)


def bearer_token(request: web.Request, allow_query: bool = False) -> str | None:
    """The key from the Authorization header (or ``?access_token=`` where allowed)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    if allow_query:
        return request.query.get("access_token")
    return None


def checked_key(request: web.Request, token: str) -> Principal | None:
    """The key's principal, counting failures per address and key id; 429 once they are too many."""
    guard = request.app[appkeys.AUTH_GUARD]
    address, key_id = request.remote, key_id_of(token)
    if wait := guard.retry_after(address, key_id):
        raise too_many_attempts(wait)
    principal = authenticate(request.app[appkeys.DB], token)
    if principal is None:
        guard.failed(address, key_id)
    return principal


def authorize(request: web.Request, scope: str, allow_query: bool = False) -> Principal:
    """The caller's principal if it holds ``scope``; else 401 or 403 per the contract."""
    token = bearer_token(request, allow_query)
    if not token:
        raise UNAUTHENTICATED
    principal = checked_key(request, token)
    if principal is None:
        raise KEY_REJECTED
    lacking = missing_scope(principal.scopes, scope)
    if lacking is not None:
        raise ApiError(403, "forbidden", f"this key lacks the {lacking} scope", {"required_scope": lacking})
    return principal
