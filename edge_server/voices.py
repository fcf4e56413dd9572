"""A session's view of its tenant's voices: live enrolled names, and phrase embedding on a node."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import numpy as np
from aiohttp import web

from appliance import node_protocol as proto
from appliance import node_registry
from edge_server import appkeys
from edge_server.diarization import Window

log = logging.getLogger("scaiecho.voices")

#: Nodes refuse to embed less speech than this (appliance.node.MIN_SPEECH_S).
MIN_EMBED_SAMPLES = 8000
_turn = itertools.count()


def windows_of(body: dict[str, Any]) -> list[Window]:
    """The windows of a node's identify answer."""
    return [
        Window(
            float(w["start"]),
            float(w["end"]),
            proto.decode_vector(w["embedding"]),
            {str(k): float(v) for k, v in w["scores"].items()},
        )
        for w in body["windows"]
    ]


class TenantVoices:
    """Speakers a session may name, and the node call that embeds and scores a phrase."""

    def __init__(self, app: web.Application, tenant_id: str) -> None:
        self.app = app
        self.tenant_id = tenant_id

    def live(self) -> dict[str, str]:
        """Ready speaker ids -> display names; erased, erasing and unready speakers are absent."""
        rows = self.app[appkeys.DB].execute(
            "SELECT id, display_name FROM speakers WHERE tenant_id = ? AND enrollment_status = 'ready' "
            "AND deleted_at IS NULL",
            [self.tenant_id],
        )
        erasing = self.app[appkeys.ERASING]
        return {speaker_id: name for speaker_id, name in rows if speaker_id not in erasing}

    async def identify(self, samples: np.ndarray, live: list[str]) -> list[Window] | None:
        """Windows of ``samples`` embedded and scored on the node holding most of ``live``; None if none can."""
        if len(samples) < MIN_EMBED_SAMPLES:
            return None
        cluster = self.app[appkeys.CLUSTER]
        nodes = await cluster.candidates()
        if not nodes:
            return None
        warm = await node_registry.warm_node_ids_many(self.app[appkeys.REDIS], live) if live else {}
        coverage = {n.node_id: sum(n.node_id in holders for holders in warm.values()) for n in nodes}
        turn = next(_turn)
        order = {node_id: i for i, node_id in enumerate(sorted(coverage))}
        # most coverage first; among equals, take turns so phrases spread over the nodes
        ranked = sorted(nodes, key=lambda n: (-coverage[n.node_id], (order[n.node_id] + turn) % len(nodes)))
        for node in ranked[:2]:
            result = await cluster.identify(node, self.tenant_id, samples)
            if result.ok and result.body is not None:
                return windows_of(result.body)
            log.warning("node %s could not embed a phrase: %s", node.node_id, result.error)
        return None
