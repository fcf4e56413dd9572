"""Tenant admin routes (scope scaiecho:admin): nodes and the audit logs, own tenant only."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from appliance import node_registry
from appliance.contract import BASE
from edge_server import appkeys
from edge_server.access import scopes as auth
from edge_server.access.authorize import authorize
from edge_server.errors import invalid_field, json_response

routes = web.RouteTableDef()
MAX_LIMIT = 200


@routes.get(f"{BASE}/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    """Online nodes, with how many of this tenant's speakers each holds."""
    principal = authorize(request, auth.ADMIN)
    redis = request.app[appkeys.REDIS]
    nodes = []
    for node in await request.app[appkeys.CLUSTER].candidates():
        held = await node_registry.holdings(redis, node.node_id)
        nodes.append(
            {
                "node_id": node.node_id,
                "engines": list(node.engines),
                "model": node.model,
                "started_at": node.started_at,
                "last_heartbeat_at": node.last_heartbeat_at,
                "warm_speakers": sum(1 for tenant, _ in held if tenant == principal.tenant_id),
            }
        )
    return json_response(nodes)


def _page_args(request: web.Request) -> tuple[int, int | None]:
    raw = request.query.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise invalid_field("limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    cursor = request.query.get("cursor")
    if cursor is None:
        return int(raw), None
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error) as exc:
        raise invalid_field("cursor", "cursor is not one this server issued") from exc
    if not isinstance(position, int):
        raise invalid_field("cursor", "cursor is not one this server issued")
    return int(raw), position


def _page(
    request: web.Request, sql: str, params: list[Any], key: str, shape: Callable[[dict[str, Any]], dict[str, Any]]
) -> web.Response:
    """Newest first by the integer column ``key``; ``sql`` has an ``{after}`` slot for the cursor."""
    limit, before = _page_args(request)
    after = f"AND {key} < ?" if before is not None else ""
    rows = list(
        request.app[appkeys.DB].query(
            sql.format(after=after) + f" ORDER BY {key} DESC LIMIT ?",
            [*params, *([before] if before is not None else []), limit + 1],
        )
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = base64.urlsafe_b64encode(json.dumps(rows[-1][key]).encode()).decode()
    return json_response([shape(row) for row in rows], next_cursor=next_cursor)


def _consent(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("rowid")
    return row


def _erasure(row: dict[str, Any]) -> dict[str, Any]:
    for column in ("blob_ids", "evicted_from", "error_summary"):
        row[column] = json.loads(row[column])
    return row


@routes.get(f"{BASE}/audit/consents")
async def consent_log(request: web.Request) -> web.Response:
    """The tenant's immutable consent records, newest first."""
    principal = authorize(request, auth.ADMIN)
    return _page(
        request,
        "SELECT rowid, id, speaker_id, user_full_name, stated_purpose, consent_text, consent_audio_sha256, "
        "reference_audio_sha256, enrolled_by_key_id, recorded_at FROM consent_records WHERE tenant_id = ? {after}",
        [principal.tenant_id],
        "rowid",
        _consent,
    )


@routes.get(f"{BASE}/audit/erasures")
async def erasure_log(request: web.Request) -> web.Response:
    """The tenant's erasure audit rows (hash-chained; `scaiecho-admin audit verify`), newest first."""
    principal = authorize(request, auth.ADMIN)
    return _page(
        request,
        "SELECT seq, id, speaker_id, consent_id, requested_by_key_id, requested_at, completed_at, blob_ids, "
        "blob_bytes_deleted, evicted_from, error_summary, prev_hash, row_hash FROM erasure_audit "
        "WHERE tenant_id = ? {after}",
        [principal.tenant_id],
        "seq",
        _erasure,
    )
