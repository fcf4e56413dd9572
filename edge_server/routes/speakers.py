"""`/speakers`: enroll, list, read."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance import node_registry
from appliance.contract import BASE
from appliance.contract.documents import Warm, WarmRequest
from edge_server import appkeys
from edge_server.access import scopes as auth
from edge_server.access.authorize import authorize
from edge_server.access.scopes import Principal
from edge_server.errors import ApiError, invalid_field, json_body, json_response, not_found
from edge_server.routes.forms import idempotency_key, read_form, read_reference_form
from edge_server.speakers import store as speaker_store
from edge_server.speakers import subject_access
from edge_server.speakers.enrollment import enroll
from edge_server.speakers.erasure import deleted_error, erase
from edge_server.speakers.references import add_reference
from edge_server.speakers.warming import enrolled_on, rewarm

routes = web.RouteTableDef()


@routes.post(f"{BASE}/speakers")
async def create_speaker(request: web.Request) -> web.Response:
    """Enroll a speaker from reference and consent recordings."""
    principal = authorize(request, auth.ENROLL)
    outcomes = request.app[appkeys.METRICS].enrollments
    try:
        key = idempotency_key(request)
        form = await read_form(request, request.app[appkeys.SETTINGS])
        speaker = await enroll(request.app, principal, form, key)
    except ApiError:
        outcomes.labels("rejected").inc()
        raise
    outcomes.labels(speaker.enrollment_status).inc()
    return json_response(speaker, status=201)


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", str(speaker_store.DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= speaker_store.MAX_LIMIT:
        raise invalid_field("limit", f"limit must be an integer from 1 to {speaker_store.MAX_LIMIT}")
    return int(raw)


@routes.get(f"{BASE}/speakers")
async def list_speakers(request: web.Request) -> web.Response:
    """The tenant's speakers, newest first."""
    principal = authorize(request, auth.ENROLL)
    status = request.query.get("status")
    if status is not None and status not in speaker_store.LISTABLE_STATUSES:
        raise invalid_field("status", f"status must be one of {', '.join(speaker_store.LISTABLE_STATUSES)}")
    try:
        rows, next_cursor = speaker_store.list_rows(
            request.app[appkeys.DB], principal.tenant_id, status, _limit(request), request.query.get("cursor")
        )
    except ValueError as exc:
        raise invalid_field("cursor", "cursor is not one this server issued") from exc
    docs = [speaker_store.document(row, await enrolled_on(request.app, row["id"])) for row in rows]
    return json_response(docs, next_cursor=next_cursor)


def live_speaker(request: web.Request, principal: Principal) -> dict[str, Any]:
    """The path's speaker in the caller's tenant: 404 when absent or foreign, 410 when erased."""
    row = speaker_store.get_row(request.app[appkeys.DB], principal.tenant_id, request.match_info["speaker_id"])
    if row is None:
        raise not_found("speaker")
    if row["deleted_at"] is not None:
        raise deleted_error(row["erasure_audit_id"])
    return row


@routes.get(f"{BASE}/speakers/{{speaker_id}}")
async def get_speaker(request: web.Request) -> web.Response:
    """One speaker of the caller's tenant."""
    principal = authorize(request, auth.ENROLL)
    row = live_speaker(request, principal)
    return json_response(speaker_store.document(row, await enrolled_on(request.app, row["id"])))


@routes.delete(f"{BASE}/speakers/{{speaker_id}}")
async def delete_speaker(request: web.Request) -> web.Response:
    """GDPR Art. 17 erasure; answers once the erasure is durable."""
    principal = authorize(request, auth.ENROLL)
    receipt = await erase(request.app, principal, request.match_info["speaker_id"])
    return json_response(receipt)


@routes.post(f"{BASE}/speakers/{{speaker_id}}/references")
async def post_reference(request: web.Request) -> web.Response:
    """Add another recording of the enrolled person to the profile (checked, encrypted, fanned out)."""
    principal = authorize(request, auth.ENROLL)
    row = live_speaker(request, principal)
    form = await read_reference_form(request, request.app[appkeys.SETTINGS])
    return json_response(await add_reference(request.app, principal, row, form), status=201)


@routes.get(f"{BASE}/speakers/{{speaker_id}}/export")
async def export_speaker(request: web.Request) -> web.Response:
    """GDPR Art. 15: everything held about the speaker, as one ZIP archive (the export is audited)."""
    principal = authorize(request, auth.ENROLL)
    data, export_id = subject_access.build(request.app, principal, request.match_info["speaker_id"])
    return web.Response(
        body=data,
        content_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{request.match_info["speaker_id"]}-{export_id}.zip"',
            "Cache-Control": "no-store",
        },
    )


@routes.get(f"{BASE}/speakers/{{speaker_id}}/warm")
async def get_warm(request: web.Request) -> web.Response:
    """Where the speaker is warm, which nodes could hold it, and stale registry entries."""
    principal = authorize(request, auth.ENROLL)
    row = live_speaker(request, principal)
    warm = await node_registry.warm_node_ids(request.app[appkeys.REDIS], row["id"])
    candidates = {n.node_id for n in await request.app[appkeys.CLUSTER].candidates()}
    return json_response(
        Warm(
            speaker_id=row["id"],
            warm_node_ids=sorted(warm),
            candidate_node_ids=sorted(candidates),
            stale_node_ids=sorted(warm - candidates),
        )
    )


async def _node_ids_field(request: web.Request) -> list[str]:
    """The re-warm body's node ids; an empty body is ``{"node_ids": []}``."""
    if not request.can_read_body:
        return []
    return (await json_body(request, WarmRequest)).node_ids


@routes.post(f"{BASE}/speakers/{{speaker_id}}/warm")
async def post_warm(request: web.Request) -> web.Response:
    """Embed the speaker again on every candidate node, or on the listed ones."""
    principal = authorize(request, auth.ENROLL)
    row = live_speaker(request, principal)
    return json_response(await rewarm(request.app, row, await _node_ids_field(request)))
