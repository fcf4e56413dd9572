"""A tenant's voices: live enrolled names, phrase embedding on a node, and profiles of one voice.

Owns the ``speaker_duplicates`` table: profiles that are likely one person enrolled twice.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import numpy as np
import sqlite_utils
from aiohttp import web

from appliance import node_protocol as proto
from appliance import node_registry
from appliance.clock import utc_now
from appliance.contract.documents import PossibleDuplicate
from edge_server import appkeys
from edge_server.speakers import store as speaker_store
from edge_server.streaming.diarization import Window, merge
from edge_server.streaming.evidence import Heard, Turn, Voice

log = logging.getLogger("scaiecho.voices")

#: Nodes refuse to embed less speech than this (appliance.node.speech.MIN_SPEECH_S).
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


def _voice(item: dict[str, Any]) -> Voice:
    return Voice(proto.decode_vector(item["embedding"]), {str(k): float(v) for k, v in item["scores"].items()})


def heard_of(body: dict[str, Any]) -> Heard:
    """A node's identify answer: its windows and, when it segmented the speech, its turns."""
    windows = windows_of(body)
    if not body.get("turns"):
        return Heard(windows)
    voices = {int(item["speaker"]): (_voice(item), float(item["seconds"])) for item in body["speakers"]}
    turns = [Turn(float(t["start"]), float(t["end"]), *voices[int(t["speaker"])]) for t in body["turns"]]
    return Heard(windows, turns)


class TenantVoices:
    """Speakers a session may name, and the node call that embeds and scores a phrase."""

    def __init__(self, app: web.Application, tenant_id: str) -> None:
        self.app = app
        self.tenant_id = tenant_id

    def live(self) -> dict[str, str]:
        """Ready speaker ids -> display names; erased, erasing and unready speakers are absent."""
        erasing = self.app[appkeys.ERASING]
        ready = speaker_store.ready_names(self.app[appkeys.DB], self.tenant_id)
        return {speaker_id: name for speaker_id, name in ready.items() if speaker_id not in erasing}

    def named(self, speaker_ids: set[str]) -> None:
        """These speakers were named in a stream: their retention period starts again."""
        if speaker_ids:
            self.app[appkeys.LAST_USE].touch(speaker_ids)

    def same_voice(self, live: dict[str, str]) -> dict[str, frozenset[str]]:
        """Live speaker id -> its other live profiles of the same voice."""
        return same_voice_groups(self.app[appkeys.DB], self.tenant_id, set(live))

    async def identify(self, samples: np.ndarray, live: list[str]) -> list[Window] | None:
        """Windows of ``samples`` embedded and scored on the node holding most of ``live``; None if none can."""
        body = await self._ask(samples, live, turns=False)
        return None if body is None else windows_of(body)

    async def hear(self, samples: np.ndarray, live: list[str]) -> Heard | None:
        """Like `identify`, with the speaker turns the node cuts (a live stream's stretch); None if none can."""
        body = await self._ask(samples, live, turns=True)
        return None if body is None else heard_of(body)

    async def _ask(self, samples: np.ndarray, live: list[str], turns: bool) -> dict[str, Any] | None:
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
            result = await cluster.identify(node, self.tenant_id, samples, turns)
            if result.ok and result.body is not None:
                return dict(result.body)
            log.warning("node %s could not embed a phrase: %s", node.node_id, result.error)
        return None


def duplicates_in(app: web.Application, tenant_id: str, windows: list[Window]) -> list[PossibleDuplicate]:
    """The tenant's live profiles that a reference's windows (as a node scored them) reach ``duplicate_warn`` against.

    The node scored the windows against every profile it holds (a duplicate that no online node
    holds is not found; the check is best effort and never blocks enrollment).
    """
    threshold = app[appkeys.SETTINGS].diarization.duplicate_warn
    if not windows or not windows[0].scores:
        return []
    scores = merge(windows).scores
    close = {s: v for s, v in scores.items() if v >= threshold}
    if not close:
        return []
    known = speaker_store.names(app[appkeys.DB], tenant_id, close)
    found = [PossibleDuplicate(speaker_id=s, display_name=name, score=round(close[s], 3)) for s, name in known.items()]
    return sorted(found, key=lambda d: -d.score)


def record_duplicates(
    db: sqlite_utils.Database, tenant_id: str, speaker_id: str, found: list[PossibleDuplicate]
) -> None:
    """Remember that ``speaker_id`` is likely the same voice as each of ``found`` (inside the caller's transaction)."""
    now = utc_now()
    db.table("speaker_duplicates").insert_all(
        {"tenant_id": tenant_id, "speaker_id": speaker_id, "duplicate_of": d.speaker_id, "score": d.score,
         "created_at": now}
        for d in found
    )  # fmt: skip


def forget_duplicates(db: sqlite_utils.Database, speaker_id: str) -> None:
    """An erased speaker is nobody's duplicate any more."""
    db.execute("DELETE FROM speaker_duplicates WHERE speaker_id = ? OR duplicate_of = ?", [speaker_id, speaker_id])


def same_voice_groups(db: sqlite_utils.Database, tenant_id: str, live: set[str]) -> dict[str, frozenset[str]]:
    """Each live speaker in a duplicate group -> the other live members (groups join transitively)."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for row in db.query("SELECT speaker_id, duplicate_of FROM speaker_duplicates WHERE tenant_id = ?", [tenant_id]):
        a, b = row["speaker_id"], row["duplicate_of"]
        if a in live and b in live:
            parent[root(a)] = root(b)
    groups: dict[str, set[str]] = {}
    for member in parent:
        groups.setdefault(root(member), set()).add(member)
    return {m: frozenset(g - {m}) for g in groups.values() if len(g) > 1 for m in g}
