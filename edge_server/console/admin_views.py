"""Console pages for tenant admins: audit, API keys, policy, health."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance.contract.documents import KeyRequest, PolicyUpdate
from edge_server import appkeys
from edge_server.access import scopes as auth
from edge_server.access.tenancy import create_key, key_rows, revoke_key
from edge_server.console import health
from edge_server.console.pages import LIST_LIMIT, PREFIX, page, render
from edge_server.console.sessions import ConsoleSession
from edge_server.errors import ApiError, validated
from edge_server.routes.keys import checked_request, revocable
from edge_server.speakers import consents, retention, subject_access
from edge_server.storage import audit as erasure_log
from edge_server.storage import policies
from edge_server.streaming.policy import BACKENDS, unavailable_choice

routes = web.RouteTableDef()


# -- audit --------------------------------------------------------------------------------------


@routes.get(f"{PREFIX}/audit")
@page(auth.ADMIN)
async def audit(request: web.Request, session: ConsoleSession) -> web.Response:
    """The tenant's consent records, erasure rows and exports, and whether the erasure hash chain holds."""
    db, tenant_id = request.app[appkeys.DB], session.principal.tenant_id
    consent_rows, _ = consents.page(db, tenant_id, LIST_LIMIT)
    exports, _ = subject_access.page(db, tenant_id, LIST_LIMIT)
    erasures, _ = erasure_log.page(db, tenant_id, LIST_LIMIT)
    chain = erasure_log.verify(db, request.app[appkeys.AUDIT_SEAL])
    broken = chain.broken_seq
    own_break = broken if broken is not None and erasure_log.owns_row(db, broken, tenant_id) else None
    return render(
        request, "audit.html", session, consents=consent_rows, erasures=erasures, exports=exports, chain=chain,
        own_break=own_break,
    )  # fmt: skip


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
    app = request.app
    settings = app[appkeys.SETTINGS]
    tenant_id = session.principal.tenant_id
    changes, _ = policies.change_page(app[appkeys.DB], tenant_id, LIST_LIMIT)
    return render(
        request,
        "policy.html",
        session,
        policy=policies.read(app[appkeys.DB], tenant_id, settings.consent),
        backends=BACKENDS,
        unavailable={b: unavailable_choice(b, app[appkeys.RELAY].configured) for b in BACKENDS},
        thresholds=settings.diarization.model_dump(),
        due=retention.due(app[appkeys.DB], tenant_id, settings.consent),
        changes=changes,
        notice=notice,
    )


@routes.get(f"{PREFIX}/policy")
@page(auth.ADMIN)
async def policy(request: web.Request, session: ConsoleSession) -> web.Response:
    """The tenant's backend, consent checks and retention (with its dry run), and the thresholds in force."""
    return _policy_page(request, session)


@routes.post(f"{PREFIX}/policy")
@page(auth.ADMIN, form=True)
async def policy_update(request: web.Request, session: ConsoleSession) -> web.Response:
    """Change the tenant's policy fields (each change is audited)."""
    form = await request.post()
    fields = {name: form.get(name) for name in policies.FIELDS if form.get(name) not in (None, "")}
    update = validated(PolicyUpdate, {k: str(v) for k, v in fields.items()})
    if update.backend is not None and (
        why := unavailable_choice(update.backend, request.app[appkeys.RELAY].configured)
    ):
        return _policy_page(request, session, notice=f"Not changed: {why}.")
    app = request.app
    before = policies.read(app[appkeys.DB], session.principal.tenant_id, app[appkeys.SETTINGS].consent)
    after = policies.update(
        app[appkeys.DB], session.principal.tenant_id, update.model_dump(exclude_none=True), session.principal.key_id,
        app[appkeys.SETTINGS].consent,
    )  # fmt: skip
    said = {"backend": "Backend set to {}.", "consent_checks": "Consent checks set to {}.",
            "retention_days": "Retention set to {} days."}  # fmt: skip
    changed = [said[f].format(getattr(after, f)) for f in policies.FIELDS if getattr(before, f) != getattr(after, f)]
    return _policy_page(request, session, notice=" ".join(changed) or "No change.")


# -- health -------------------------------------------------------------------------------------


@routes.get(f"{PREFIX}/health")
@page(auth.ADMIN)
async def health_page(request: web.Request, session: ConsoleSession) -> web.Response:
    """Redis, nodes, disk, blob store, ASR, models, TLS."""
    checks = await health.gather(request.app, session.principal.tenant_id)
    return render(request, "health.html", session, checks=checks)
