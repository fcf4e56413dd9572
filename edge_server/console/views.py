"""The admin console at /admin: server-rendered pages over the same stores and rules as the API.

Sign-in takes an API key holding `scaiecho:admin` and answers with a session cookie (HttpOnly,
SameSite=Strict, Secure on TLS, path /admin). Every form carries the session's CSRF token; the
sign-in form a double-submit token of its own. Each page checks the scope its API route needs,
and shows only the signed-in key's tenant. No JavaScript.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
from aiohttp import web

from appliance import node_registry
from appliance.clock import relative_time
from appliance.contract.documents import KeyRequest
from edge_server import appkeys
from edge_server.access import scopes as auth
from edge_server.access.authorize import checked_key
from edge_server.access.scopes import missing_scope
from edge_server.access.tenancy import create_key, revoke_key
from edge_server.console import health, sessions
from edge_server.console.sessions import ConsoleSession
from edge_server.errors import ApiError, validated
from edge_server.routes.keys import checked_request, key_rows, revocable
from edge_server.routes.speakers import live_speaker
from edge_server.speakers import store as speaker_store
from edge_server.speakers.erasure import erase
from edge_server.speakers.voices import same_voice_groups
from edge_server.speakers.warming import enrolled_on, rewarm, warming_node_ids
from edge_server.storage.audit import verify
from edge_server.streaming.policy import BACKENDS, get_policy, set_policy, unavailable_choice

routes = web.RouteTableDef()
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
        tenant=_tenant_name(request, session),
        **context,
    )
    return web.Response(text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS)


def _tenant_name(request: web.Request, session: ConsoleSession | None) -> str | None:
    if session is None:
        return None
    row = request.app[appkeys.DB].execute("SELECT name FROM tenants WHERE id = ?", [session.principal.tenant_id])
    found = row.fetchone()
    return found[0] if found else None


def _set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=PREFIX, httponly=True, samesite="Strict", secure=request.secure
    )


def _current(request: web.Request) -> ConsoleSession | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    settings = request.app[appkeys.SETTINGS].console
    return sessions.resume(request.app[appkeys.DB], token, time.time(), settings.idle_timeout_s, settings.max_session_s)


def page(scope: str, form: bool = False) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Wrap a console handler: signed in, CSRF token on forms, ``scope`` held; errors as pages."""

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def run(request: web.Request) -> web.StreamResponse:
            session = _current(request)
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


# -- sign-in ------------------------------------------------------------------------------------


@routes.get(PREFIX)
async def home(request: web.Request) -> web.Response:
    """The console's front door."""
    raise web.HTTPSeeOther(f"{PREFIX}/nodes")


def _signin_page(request: web.Request, status: int = 200, error: str | None = None) -> web.Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, status, signin_token=token, error=error)
    _set_cookie(request, response, SIGNIN_COOKIE, token, SIGNIN_TOKEN_MAX_AGE_S)
    return response


@routes.get(f"{PREFIX}/login")
async def login_form(request: web.Request) -> web.Response:
    """Sign-in with an API key."""
    return _signin_page(request)


@routes.post(f"{PREFIX}/login")
async def login(request: web.Request) -> web.Response:
    """API key -> session cookie; only keys holding scaiecho:admin may sign in."""
    form = await request.post()
    sent, expected = form.get("signin_token"), request.cookies.get(SIGNIN_COOKIE)
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        return _signin_page(request, 403, "The sign-in form expired or did not come from this console; try again.")
    key = form.get("api_key")
    db = request.app[appkeys.DB]
    try:
        principal = checked_key(request, key.strip()) if isinstance(key, str) and key.strip() else None
    except ApiError as exc:  # too many failed sign-ins
        response = _signin_page(request, exc.status, f"Too many failed sign-ins: {exc.message}.")
        response.headers.update(exc.headers)
        return response
    if principal is None:
        return _signin_page(request, 401, "That is not a live API key.")
    if auth.ADMIN not in principal.scopes:
        return _signin_page(request, 403, "That key lacks the scaiecho:admin scope the console needs.")
    console = request.app[appkeys.SETTINGS].console
    now = time.time()
    sessions.sweep(db, now, console.idle_timeout_s, console.max_session_s)
    token, _ = sessions.start(db, principal, now)
    response = web.HTTPSeeOther(f"{PREFIX}/nodes")
    _set_cookie(request, response, SESSION_COOKIE, token, int(console.max_session_s))
    response.del_cookie(SIGNIN_COOKIE, path=PREFIX)
    raise response


@routes.post(f"{PREFIX}/logout")
@page(auth.ADMIN, form=True)
async def logout(request: web.Request, session: ConsoleSession) -> web.Response:
    """End the session."""
    sessions.end(request.app[appkeys.DB], request.cookies[SESSION_COOKIE])
    request.app[appkeys.CONSOLE_CREATED].pop(session.token_digest, None)
    response = web.HTTPSeeOther(f"{PREFIX}/login")
    response.del_cookie(SESSION_COOKIE, path=PREFIX)
    raise response


# -- nodes --------------------------------------------------------------------------------------


def _live_speaker_ids(request: web.Request, tenant_id: str) -> list[str]:
    rows = request.app[appkeys.DB].execute(
        "SELECT id FROM speakers WHERE tenant_id = ? AND deleted_at IS NULL", [tenant_id]
    )
    return [r[0] for r in rows.fetchall()]


@routes.get(f"{PREFIX}/nodes")
@page(auth.ADMIN)
async def nodes(request: web.Request, session: ConsoleSession) -> web.Response:
    """Online nodes with this tenant's warm speakers, and registry entries of nodes that are gone."""
    tenant_id = session.principal.tenant_id
    redis = request.app[appkeys.REDIS]
    online = await request.app[appkeys.CLUSTER].candidates()
    warm = await node_registry.warm_node_ids_many(redis, _live_speaker_ids(request, tenant_id))
    rows = []
    for node in online:
        held = await node_registry.holdings(redis, node.node_id)
        rows.append({"node": node, "warm": sum(1 for tenant, _ in held if tenant == tenant_id)})
    online_ids = {n.node_id for n in online}
    stale: dict[str, int] = {}
    for holders in warm.values():
        for node_id in holders - online_ids:
            stale[node_id] = stale.get(node_id, 0) + 1
    return render(request, "nodes.html", session, nodes=rows, stale=sorted(stale.items()))


# -- speakers -----------------------------------------------------------------------------------


@routes.get(f"{PREFIX}/speakers")
@page(auth.ENROLL)
async def speakers(request: web.Request, session: ConsoleSession) -> web.Response:
    """The tenant's speakers with where each is warm."""
    try:
        rows, next_cursor = speaker_store.list_rows(
            request.app[appkeys.DB], session.principal.tenant_id, None, LIST_LIMIT, request.query.get("cursor")
        )
    except ValueError as exc:
        raise ApiError(422, "invalid_field", "that page link is not one this console made") from exc
    online = {n.node_id for n in await request.app[appkeys.CLUSTER].candidates()}
    warm = await node_registry.warm_node_ids_many(request.app[appkeys.REDIS], [r["id"] for r in rows])
    warming = warming_node_ids(request.app, await request.app[appkeys.CLUSTER].candidates())
    listed = [
        {
            "row": row,
            "shown_status": shown_status(row["enrollment_status"], warming),
            "warm": sorted(warm.get(row["id"], set()) & online),
            "stale": sorted(warm.get(row["id"], set()) - online),
        }
        for row in rows
    ]
    return render(request, "speakers.html", session, speakers=listed, next_cursor=next_cursor, warming=warming)


def shown_status(status: str, warming: list[str]) -> str:
    """``evicted`` while nodes are still being re-warmed is ``warming``: it is expected to come back."""
    return "warming" if status == "evicted" and warming else status


async def _speaker_page(
    request: web.Request, session: ConsoleSession, row: dict[str, Any], notice: dict[str, Any] | None = None
) -> web.Response:
    warm = await node_registry.warm_node_ids(request.app[appkeys.REDIS], row["id"])
    candidates = sorted(n.node_id for n in await request.app[appkeys.CLUSTER].candidates())
    db = request.app[appkeys.DB]
    live_ids = _live_speaker_ids(request, session.principal.tenant_id)
    twins = same_voice_groups(db, session.principal.tenant_id, set(live_ids)).get(row["id"], frozenset())
    rows = db.query("SELECT id, display_name FROM speakers WHERE tenant_id = ?", [session.principal.tenant_id])
    names = {r["id"]: r["display_name"] for r in rows} if twins else {}
    return render(
        request,
        "speaker.html",
        session,
        speaker=speaker_store.document(row, await enrolled_on(request.app, row["id"])),
        candidates=candidates,
        stale=sorted(warm - set(candidates)),
        same_voice=sorted((names[t], t) for t in twins),
        notice=notice,
    )


@routes.get(f"{PREFIX}/speakers/{{speaker_id}}")
@page(auth.ENROLL)
async def speaker(request: web.Request, session: ConsoleSession) -> web.Response:
    """One speaker: status, consent, where warm; re-warm and delete."""
    return await _speaker_page(request, session, live_speaker(request, session.principal))


@routes.post(f"{PREFIX}/speakers/{{speaker_id}}/warm")
@page(auth.ENROLL, form=True)
async def speaker_warm(request: web.Request, session: ConsoleSession) -> web.Response:
    """Re-warm on the ticked nodes (all candidates when none is ticked)."""
    row = live_speaker(request, session.principal)
    wanted = [str(n) for n in (await request.post()).getall("node_id", [])]
    outcome = await rewarm(request.app, row, wanted)
    fresh = live_speaker(request, session.principal)
    return await _speaker_page(request, session, fresh, notice=outcome)


@routes.post(f"{PREFIX}/speakers/{{speaker_id}}/delete")
@page(auth.ENROLL, form=True)
async def speaker_delete(request: web.Request, session: ConsoleSession) -> web.Response:
    """GDPR Art. 17 erasure, the same as DELETE /speakers/{id}; shows the receipt."""
    row = live_speaker(request, session.principal)
    if (await request.post()).get("confirm") != "erase":
        raise ApiError(422, "invalid_field", "Tick the box that confirms the erasure; nothing was deleted.")
    receipt = await erase(request.app, session.principal, row["id"])
    return render(request, "receipt.html", session, receipt=receipt, display_name=row["display_name"])


# -- audit --------------------------------------------------------------------------------------


def _query(request: web.Request, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    return list(request.app[appkeys.DB].query(sql, params))


@routes.get(f"{PREFIX}/audit")
@page(auth.ADMIN)
async def audit(request: web.Request, session: ConsoleSession) -> web.Response:
    """The tenant's consent records and erasure rows, and whether the erasure hash chain holds."""
    tenant_id = session.principal.tenant_id
    consents = _query(
        request,
        "SELECT id, speaker_id, user_full_name, stated_purpose, consent_audio_sha256, recorded_at "
        "FROM consent_records WHERE tenant_id = ? ORDER BY rowid DESC LIMIT ?",
        [tenant_id, LIST_LIMIT],
    )
    erasures = _query(
        request,
        "SELECT seq, id, speaker_id, consent_id, requested_at, completed_at, blob_bytes_deleted, evicted_from, "
        "row_hash FROM erasure_audit WHERE tenant_id = ? ORDER BY seq DESC LIMIT ?",
        [tenant_id, LIST_LIMIT],
    )
    chain = verify(request.app[appkeys.DB], request.app[appkeys.AUDIT_SEAL])
    own_break = None
    if chain.broken_seq is not None:
        found = request.app[appkeys.DB].execute(
            "SELECT 1 FROM erasure_audit WHERE seq = ? AND tenant_id = ?", [chain.broken_seq, tenant_id]
        )
        own_break = chain.broken_seq if found.fetchone() else None
    return render(
        request, "audit.html", session, consents=consents, erasures=erasures, chain=chain, own_break=own_break
    )


# -- keys ---------------------------------------------------------------------------------------


def _keys_page(request: web.Request, session: ConsoleSession, status: int = 200, **context: Any) -> web.Response:
    keys = key_rows(request.app[appkeys.DB], session.principal.tenant_id)
    context = {"created": None, "error": None, **context}
    return render(request, "keys.html", session, status, keys=keys, all_scopes=auth.ALL_SCOPES, **context)


@routes.get(f"{PREFIX}/keys")
@page(auth.ADMIN)
async def keys(request: web.Request, session: ConsoleSession) -> web.Response:
    """The tenant's keys; create and revoke. A key just created is shown here once."""
    return _keys_page(request, session, created=request.app[appkeys.CONSOLE_CREATED].pop(session.token_digest, None))


@routes.post(f"{PREFIX}/keys")
@page(auth.ADMIN, form=True)
async def key_create(request: web.Request, session: ConsoleSession) -> web.Response:
    """Create a key; its secret is on this one page and nowhere else."""
    form = await request.post()
    body = {"name": str(form.get("name", "")), "scopes": [str(s) for s in form.getall("scope", [])]}
    try:
        name, scopes = checked_request(session.principal, validated(KeyRequest, body))
    except ApiError as exc:
        return _keys_page(request, session, exc.status, error=exc.message)
    issued = create_key(request.app[appkeys.DB], session.principal.tenant_id, scopes, name, session.principal.key_id)
    # redirect, so that reloading the page that shows the secret does not create another key
    request.app[appkeys.CONSOLE_CREATED][session.token_digest] = issued
    raise web.HTTPSeeOther(f"{PREFIX}/keys")


@routes.post(f"{PREFIX}/keys/{{key_id}}/revoke")
@page(auth.ADMIN, form=True)
async def key_revoke(request: web.Request, session: ConsoleSession) -> web.Response:
    """Revoke at once; another tenant's key id is 'no such key', like a missing one."""
    key_id = request.match_info["key_id"]
    db = request.app[appkeys.DB]
    revocable(db, session.principal, key_id)
    revoke_key(db, key_id, session.principal.tenant_id)
    raise web.HTTPSeeOther(f"{PREFIX}/keys")


# -- policy -------------------------------------------------------------------------------------


def _policy_page(request: web.Request, session: ConsoleSession, notice: str | None = None) -> web.Response:
    settings = request.app[appkeys.SETTINGS]
    return render(
        request,
        "policy.html",
        session,
        policy=get_policy(request.app[appkeys.DB], session.principal.tenant_id),
        backends=BACKENDS,
        unavailable={b: unavailable_choice(b, request.app[appkeys.RELAY].configured) for b in BACKENDS},
        thresholds=settings.diarization.model_dump(),
        notice=notice,
    )


@routes.get(f"{PREFIX}/policy")
@page(auth.ADMIN)
async def policy(request: web.Request, session: ConsoleSession) -> web.Response:
    """Which backend serves the tenant, and the diarization thresholds in force."""
    return _policy_page(request, session)


@routes.post(f"{PREFIX}/policy")
@page(auth.ADMIN, form=True)
async def policy_update(request: web.Request, session: ConsoleSession) -> web.Response:
    """Change the tenant's backend."""
    backend = (await request.post()).get("backend")
    if backend not in BACKENDS:
        raise ApiError(422, "invalid_field", f"backend must be one of {', '.join(BACKENDS)}")
    if (why := unavailable_choice(str(backend), request.app[appkeys.RELAY].configured)) is not None:
        return _policy_page(request, session, notice=f"Not changed: {why}.")
    set_policy(request.app[appkeys.DB], session.principal.tenant_id, str(backend), session.principal.key_id)
    return _policy_page(request, session, notice=f"Backend set to {backend}.")


# -- health -------------------------------------------------------------------------------------


@routes.get(f"{PREFIX}/health")
@page(auth.ADMIN)
async def health_page(request: web.Request, session: ConsoleSession) -> web.Response:
    """Redis, nodes, disk, blob store, ASR, models, TLS."""
    checks = await health.gather(request.app, session.principal.tenant_id)
    return render(request, "health.html", session, checks=checks)


@routes.get("/")
async def root(request: web.Request) -> web.Response:
    """People who open the appliance's address land on the console."""
    raise web.HTTPFound(PREFIX)


@routes.get("/favicon.ico")
async def favicon(request: web.Request) -> web.FileResponse:
    """The console's icon where browsers look for it first."""
    return web.FileResponse(HERE / "static" / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


routes.static(f"{PREFIX}/static", HERE / "static")
