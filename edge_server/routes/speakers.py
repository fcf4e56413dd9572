"""`/speakers`: enroll, list, read."""

from __future__ import annotations

from aiohttp import web

from appliance import node_registry
from edge_server import appkeys, auth
from edge_server import speakers as speaker_store
from edge_server.access import authorize
from edge_server.enrollment import enroll
from edge_server.errors import ApiError, invalid_field, json_response, not_found

routes = web.RouteTableDef()
BASE = "/v1/modules/scaiecho"


async def enrolled_on(request: web.Request, speaker_id: str) -> list[str]:
    """Online nodes the warm registry says hold the speaker."""
    online = {n.node_id for n in await request.app[appkeys.CLUSTER].candidates()}
    return sorted(await node_registry.warm_node_ids(request.app[appkeys.REDIS], speaker_id) & online)


@routes.post(f"{BASE}/speakers")
async def create_speaker(request: web.Request) -> web.Response:
    """Enroll a speaker from reference and consent recordings."""
    principal = authorize(request, auth.ENROLL)
    speaker, note = await enroll(request, principal)
    data = dict(speaker)
    if note:
        data["note"] = note
    return json_response(data, status=201)


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
    docs = [speaker_store.to_json(row, await enrolled_on(request, row["id"])) for row in rows]
    return json_response(docs, next_cursor=next_cursor)


@routes.get(f"{BASE}/speakers/{{speaker_id}}")
async def get_speaker(request: web.Request) -> web.Response:
    """One speaker of the caller's tenant."""
    principal = authorize(request, auth.ENROLL)
    row = speaker_store.get_row(request.app[appkeys.DB], principal.tenant_id, request.match_info["speaker_id"])
    if row is None:
        raise not_found("speaker")
    if row["deleted_at"] is not None:
        raise ApiError(410, "speaker_deleted", "this speaker was erased", {"deleted_at": row["deleted_at"]})
    return json_response(speaker_store.to_json(row, await enrolled_on(request, row["id"])))
