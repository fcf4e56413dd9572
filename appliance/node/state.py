"""What every handler of a node shares: the state it holds, the app keys, the cluster-secret check
and the error document."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field

import numpy as np
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.asyncio import Redis

from appliance import node_registry
from appliance.settings import NodeSettings
from models.base import Embedder
from models.segmentation import SpeakerSegmenter


@dataclass
class NodeState:
    """Everything one node process holds: its identity and the embeddings, per tenant."""

    node_id: str
    boot_id: str
    embedder: Embedder
    embeddings: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    #: Cuts a stream's stretches into speaker turns (None: segmentation is off).
    segmenter: SpeakerSegmenter | None = None

    def hold(self, tenant_id: str, speaker_id: str, embedding: np.ndarray) -> None:
        """Keep one speaker's embedding."""
        self.embeddings.setdefault(tenant_id, {})[speaker_id] = embedding

    def release(self, tenant_id: str, speaker_id: str) -> bool:
        """Forget one speaker; True when it was held."""
        held = self.embeddings.get(tenant_id, {})
        return held.pop(speaker_id, None) is not None

    def held(self, tenant_id: str) -> list[str]:
        """Speaker ids held for a tenant."""
        return sorted(self.embeddings.get(tenant_id, {}))

    def pairs(self) -> list[tuple[str, str]]:
        """Every ``(tenant_id, speaker_id)`` held."""
        return sorted((t, s) for t, held in self.embeddings.items() for s in held)


STATE = web.AppKey("state", NodeState)
REDIS = web.AppKey("redis", Redis)
SECRET = web.AppKey("secret", bytes)
INFO = web.AppKey("info", node_registry.NodeInfo)
NODE_SETTINGS = web.AppKey("node_settings", NodeSettings)


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def cluster_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every internal route needs the cluster secret."""
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").encode()
    if not header.startswith("Bearer ") or not hmac.compare_digest(token, request.app[SECRET]):
        return error_response(401, "unauthenticated", "the cluster secret is missing or wrong")
    return await handler(request)


class Refused(web.HTTPException):
    """A request the node answers with an error document (raised, so helpers can refuse)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status_code = status
        super().__init__(
            text=json.dumps({"error": {"code": code, "message": message}}), content_type="application/json"
        )
