"""The edge server's side of the nodes: who is online, and parallel calls with per-node timeouts."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
from redis.asyncio import Redis

from appliance import node_protocol as proto
from appliance import node_registry
from appliance.contract.documents import NodeOutcome
from appliance.node_registry import NodeInfo


@dataclass(frozen=True)
class NodeResult:
    """Outcome of one call on one node.

    ``refused`` means the node answered and said no (the input is bad for it); a timeout or an
    unreachable node is not a refusal: the node may accept the same speaker later.
    """

    node_id: str
    ok: bool
    error: str | None = None
    refused: bool = False
    body: dict[str, Any] | None = None

    def outcome(self) -> NodeOutcome:
        """``{"ok": true}`` or ``{"ok": false, "error": "..."}`` for the API."""
        return NodeOutcome(ok=True) if self.ok else NodeOutcome(ok=False, error=self.error)


class Cluster:
    """Reads the registry and talks to nodes' internal API with the cluster secret."""

    def __init__(self, redis: Redis, http: aiohttp.ClientSession, secret: bytes, timeout_s: float) -> None:
        self.redis = redis
        self.http = http
        self._auth = {"Authorization": f"Bearer {secret.decode()}"}
        self.timeout_s = timeout_s

    async def candidates(self) -> list[NodeInfo]:
        """Nodes whose heartbeat is current and that run the pyannote engine."""
        return [n for n in await node_registry.candidates(self.redis) if "pyannote" in n.engines]

    async def online_holders(self, speaker_id: str) -> list[str]:
        """Online nodes the warm registry says hold the speaker."""
        online = {n.node_id for n in await self.candidates()}
        return sorted(await node_registry.warm_node_ids(self.redis, speaker_id) & online)

    async def _call(
        self,
        node: NodeInfo,
        method: str,
        path: str,
        body: bytes | None = None,
        json: Any = None,
        extra_headers: dict[str, str] | None = None,
    ) -> NodeResult:
        headers = dict(self._auth) | (extra_headers or {})
        if body is not None:
            headers["Content-Type"] = proto.AUDIO_CONTENT_TYPE
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with self.http.request(
                method, node.url + path, data=body, json=json, headers=headers, timeout=timeout
            ) as resp:
                if resp.status == 200:
                    return NodeResult(node.node_id, ok=True, body=await resp.json())
                try:
                    payload = await resp.json()
                    message = payload["error"]["message"]
                except (aiohttp.ContentTypeError, KeyError, TypeError, ValueError):
                    message = f"HTTP {resp.status}"
                return NodeResult(node.node_id, ok=False, error=message, refused=400 <= resp.status < 500)
        except TimeoutError:
            return NodeResult(node.node_id, ok=False, error="timeout")
        except aiohttp.ClientError:
            return NodeResult(node.node_id, ok=False, error="unreachable")

    def _deadline(self) -> dict[str, str]:
        """The header telling a node when we stop waiting for a hold (it drops the hold after that)."""
        return {proto.HOLD_DEADLINE_HEADER: f"{time.time() + self.timeout_s:.3f}"}

    async def hold(
        self, nodes: list[NodeInfo], tenant_id: str, speaker_id: str, speech: np.ndarray
    ) -> dict[str, NodeResult]:
        """Ask every node in parallel to embed and hold a speaker.

        A node that times out may still apply the hold later; the deadline header makes it drop
        the hold instead once we stopped waiting, and erasure evicts every registered node anyway.
        """
        body = proto.encode_samples(speech)
        path = proto.speaker_path(tenant_id, speaker_id)
        deadline = self._deadline()
        results = await asyncio.gather(*(self._call(n, "PUT", path, body, extra_headers=deadline) for n in nodes))
        return {r.node_id: r for r in results}

    async def push_embeddings(self, node: NodeInfo, model: str, items: list[tuple[str, str, np.ndarray]]) -> NodeResult:
        """Hand a node precomputed embeddings of its own model: ``(tenant_id, speaker_id, vector)``.

        Like `hold`, with a deadline: a node frozen past it drops the request instead of holding
        speakers that may have been erased while we stopped waiting.
        """
        payload = {
            "model": model,
            "items": [{"tenant_id": t, "speaker_id": s, "embedding": proto.encode_vector(v)} for t, s, v in items],
        }
        return await self._call(node, "POST", proto.EMBEDDINGS_PATH, json=payload, extra_headers=self._deadline())

    async def identify(self, node: NodeInfo, tenant_id: str, speech: np.ndarray, turns: bool = False) -> NodeResult:
        """Embed ``speech`` on ``node``; ``body`` has its ``windows`` with per-speaker cosine ``scores``
        (and, with ``turns``, the speaker ``turns`` and each local speaker's voice)."""
        path = proto.identify_path(tenant_id, turns)
        return await self._call(node, "POST", path, proto.encode_samples(speech))

    async def held_by(self, node: NodeInfo, tenant_id: str) -> list[str]:
        """Speaker ids a node process holds in memory for a tenant (asks the node, not Redis)."""
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with self.http.get(
            node.url + proto.speakers_path(tenant_id), headers=self._auth, timeout=timeout
        ) as resp:
            resp.raise_for_status()
            return list((await resp.json())["speaker_ids"])

    async def status(self, node: NodeInfo) -> NodeResult:
        """The node's own status document: identity, model, count held, windows embedded and cached."""
        return await self._call(node, "GET", proto.STATUS_PATH)

    async def holdings(self, node: NodeInfo) -> set[tuple[str, str]]:
        """Every ``(tenant_id, speaker_id)`` the node process holds in memory (asks the node, not Redis)."""
        result = await self._call(node, "GET", proto.HELD_PATH)
        if not result.ok or result.body is None:
            raise ConnectionError(f"{node.node_id} did not list its holdings: {result.error}")
        return {(str(t), str(s)) for t, s in result.body["held"]}

    async def release(self, nodes: list[NodeInfo], tenant_id: str, speaker_id: str) -> dict[str, NodeResult]:
        """Ask every node in parallel to forget a speaker."""
        path = proto.speaker_path(tenant_id, speaker_id)
        results = await asyncio.gather(*(self._call(n, "DELETE", path) for n in nodes))
        return {r.node_id: r for r in results}
