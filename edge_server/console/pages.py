"""The admin console's machinery: templates, filters, cookies, and the `page` decorator every page uses.

The console at /admin: server-rendered pages over the same stores and rules as the API.

Sign-in takes an API key holding `scaiecho:admin` and answers with a session cookie (HttpOnly,
SameSite=Strict, Secure on TLS, path /admin). Every form carries the session's CSRF token; the
sign-in form a double-submit token of its own. Each page checks the scope its API route needs,
and shows only the signed-in key's tenant. No JavaScript.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
from aiohttp import web

from appliance.clock import relative_time
from edge_server import appkeys
from edge_server.access.scopes import missing_scope
from edge_server.console import sessions
from edge_server.console.sessions import ConsoleSession
from edge_server.errors import ApiError

PREFIX = "/admin"
SESSION_COOKIE = "scaiecho_console"
SIGNIN_COOKIE = "scaiecho_signin"
SIGNIN_TOKEN_MAX_AGE_S = 600
LIST_LIMIT = 100
HERE = Path(__file__).parent

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # pages show key secrets once and speakers' names: never cache them
    "Cache-Control": "no-store",
}

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

Handler = Callable[[web.Request, ConsoleSession], Awaitable[web.StreamResponse]]


def _ago(iso: str | None) -> markupsafe.Markup:
    """A relative time that shows the exact UTC time on hover, and never wraps mid-value."""
    if not iso:
        return markupsafe.Markup("—")
    return markupsafe.Markup('<time datetime="{0}" title="{0}">{1}</time>').format(iso, relative_time(iso))


def _node_list(raw: str | list[str] | None) -> str:
    """A JSON list of node ids (as the audit row stores it) for people: ``node-1, node-2``."""
    nodes = json.loads(raw) if isinstance(raw, str) else raw or []
    return ", ".join(nodes) if nodes else "no node"


_templates.filters["ago"] = _ago
_templates.filters["nodes"] = _node_list


def render(
    request: web.Request, template: str, session: ConsoleSession | None, status: int = 200, **context: Any
) -> web.Response:
    """An HTML page with the console's security headers."""
    html = _templates.get_template(template).render(
        session=session,
        path=request.path,
        tenant=tenant_name(request, session),
        **context,
    )
    return web.Response(text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS)


def tenant_name(request: web.Request, session: ConsoleSession | None) -> str | None:
    if session is None:
        return None
    row = request.app[appkeys.DB].execute("SELECT name FROM tenants WHERE id = ?", [session.principal.tenant_id])
    found = row.fetchone()
    return found[0] if found else None


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=PREFIX, httponly=True, samesite="Strict", secure=request.secure
    )


def current_session(request: web.Request) -> ConsoleSession | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    settings = request.app[appkeys.SETTINGS].console
    return sessions.resume(request.app[appkeys.DB], token, time.time(), settings.idle_timeout_s, settings.max_session_s)


def page(scope: str, form: bool = False) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Wrap a console handler: signed in, CSRF token on forms, ``scope`` held; errors as pages."""

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def run(request: web.Request) -> web.StreamResponse:
            session = current_session(request)
            if session is None:
                if request.method == "GET":
                    raise web.HTTPSeeOther(f"{PREFIX}/login")
                return render(
                    request, "error.html", None, 401, message="Your console session has ended: sign in again."
                )
            if form:
                sent = (await request.post()).get("csrf_token")
                if not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf_token):
                    return render(
                        request,
                        "error.html",
                        session,
                        403,
                        message="This form did not come from your console session (missing or stale CSRF token). "
                        "Reload the page and try again.",
                    )
            lacking = missing_scope(session.principal.scopes, scope)
            if lacking is not None:
                return render(request, "error.html", session, 403, message=f"This key lacks the {lacking} scope.")
            try:
                return await handler(request, session)
            except ApiError as exc:
                return render(request, "error.html", session, exc.status, message=exc.message)

        return run

    return wrap
