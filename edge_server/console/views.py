"""Console pages for people who run speakers: sign-in, nodes, speakers (re-warm, erase)."""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from aiohttp import web

from appliance import node_registry
from appliance.contract.documents import WarmResult
from edge_server import appkeys
from edge_server.access import scopes as auth
from edge_server.access.authorize import checked_key
from edge_server.console import sessions
from edge_server.console.pages import (
    HERE,
    LIST_LIMIT,
    PREFIX,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    SIGNIN_TOKEN_MAX_AGE_S,
    page,
    render,
    set_cookie,
)
from edge_server.console.sessions import ConsoleSession
from edge_server.errors import ApiError
from edge_server.routes.speakers import live_speaker
from edge_server.speakers import store as speaker_store
from edge_server.speakers.erasure import erase
from edge_server.speakers.voices import same_voice_groups
from edge_server.speakers.warming import enrolled_on, rewarm, warming_node_ids

routes = web.RouteTableDef()


# -- sign-in ------------------------------------------------------------------------------------


@routes.get(PREFIX)
async def home(request: web.Request) -> web.Response:
    """The console's front door."""
    raise web.HTTPSeeOther(f"{PREFIX}/nodes")


def _signin_page(request: web.Request, status: int = 200, error: str | None = None) -> web.Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, status, signin_token=token, error=error)
    set_cookie(request, response, SIGNIN_COOKIE, token, SIGNIN_TOKEN_MAX_AGE_S)
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
    set_cookie(request, response, SESSION_COOKIE, token, int(console.max_session_s))
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
    return sorted(speaker_store.live_ids(request.app[appkeys.DB], tenant_id))


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
    request: web.Request, session: ConsoleSession, row: dict[str, Any], notice: WarmResult | None = None
) -> web.Response:
    warm = await node_registry.warm_node_ids(request.app[appkeys.REDIS], row["id"])
    candidates = sorted(n.node_id for n in await request.app[appkeys.CLUSTER].candidates())
    db = request.app[appkeys.DB]
    live_ids = _live_speaker_ids(request, session.principal.tenant_id)
    twins = same_voice_groups(db, session.principal.tenant_id, set(live_ids)).get(row["id"], frozenset())
    names = speaker_store.names(db, session.principal.tenant_id, twins) if twins else {}
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


@routes.get("/")
async def root(request: web.Request) -> web.Response:
    """People who open the appliance's address land on the console."""
    raise web.HTTPFound(PREFIX)


@routes.get("/favicon.ico")
async def favicon(request: web.Request) -> web.FileResponse:
    """The console's icon where browsers look for it first."""
    return web.FileResponse(HERE / "static" / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


routes.static(f"{PREFIX}/static", HERE / "static")
