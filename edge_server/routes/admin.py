"""Tenant admin routes (scope scaiecho:admin): nodes and the audit logs, own tenant only."""

from __future__ import annotations

import base64
import binascii
import json

from aiohttp import web

from appliance import node_registry
from appliance.contract import BASE, DEFAULT_LIMIT, MAX_LIMIT
from appliance.contract.documents import Node, RetentionDue
from edge_server import appkeys
from edge_server.access import scopes as auth
from edge_server.access.authorize import authorize
from edge_server.errors import invalid_field, json_response
from edge_server.speakers import consents, retention, subject_access
from edge_server.storage import audit, policies

routes = web.RouteTableDef()


@routes.get(f"{BASE}/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    """Online nodes, with how many of this tenant's speakers each holds."""
    principal = authorize(request, auth.ADMIN)
    redis = request.app[appkeys.REDIS]
    nodes = []
    for node in await request.app[appkeys.CLUSTER].candidates():
        held = await node_registry.holdings(redis, node.node_id)
        nodes.append(
            Node(
                node_id=node.node_id,
                engines=list(node.engines),
                model=node.model,
                started_at=node.started_at,
                last_heartbeat_at=node.last_heartbeat_at,
                warm_speakers=sum(1 for tenant, _ in held if tenant == principal.tenant_id),
            )
        )
    return json_response(nodes)


def _page_args(request: web.Request) -> tuple[int, int | None]:
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
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


def _cursor(position: int | None) -> str | None:
    return None if position is None else base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


@routes.get(f"{BASE}/audit/consents")
async def consent_log(request: web.Request) -> web.Response:
    """The tenant's immutable consent records, newest first."""
    principal = authorize(request, auth.ADMIN)
    rows, following = consents.page(request.app[appkeys.DB], principal.tenant_id, *_page_args(request))
    return json_response(rows, next_cursor=_cursor(following))


@routes.get(f"{BASE}/audit/policy")
async def policy_log(request: web.Request) -> web.Response:
    """The tenant's policy changes (backend, consent checks, retention), newest first."""
    principal = authorize(request, auth.ADMIN)
    rows, following = policies.change_page(request.app[appkeys.DB], principal.tenant_id, *_page_args(request))
    return json_response(rows, next_cursor=_cursor(following))


@routes.get(f"{BASE}/audit/exports")
async def export_log(request: web.Request) -> web.Response:
    """The tenant's subject-access exports (who took a copy of whose voice data), newest first."""
    principal = authorize(request, auth.ADMIN)
    rows, following = subject_access.page(request.app[appkeys.DB], principal.tenant_id, *_page_args(request))
    return json_response(rows, next_cursor=_cursor(following))


@routes.get(f"{BASE}/retention")
async def retention_due(request: web.Request) -> web.Response:
    """Dry run of the retention job: the tenant's speakers it would erase now, oldest first."""
    principal = authorize(request, auth.ADMIN)
    app = request.app
    rows = retention.due(app[appkeys.DB], principal.tenant_id, app[appkeys.SETTINGS].consent)
    due = [RetentionDue(speaker_id=str(r["id"]), display_name=str(r["display_name"]),
                        last_active_at=str(r["last_active_at"])) for r in rows]  # fmt: skip
    return json_response(due)


@routes.get(f"{BASE}/audit/erasures")
async def erasure_log(request: web.Request) -> web.Response:
    """The tenant's erasure audit rows (hash-chained; `scaiecho-admin audit verify`), newest first."""
    principal = authorize(request, auth.ADMIN)
    rows, following = audit.page(request.app[appkeys.DB], principal.tenant_id, *_page_args(request))
    return json_response(rows, next_cursor=_cursor(following))
