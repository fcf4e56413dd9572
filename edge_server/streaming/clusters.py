"""A session's voices grouped by agglomerative clustering, redone as each turn arrives (pure).

Every labelled stretch of a turn becomes an *item* (its voice, its seconds). After each new item
all items are clustered again, bottom-up: the two groups whose centroids (duration-weighted mean
embeddings) lie furthest above the level their sizes call for merge, until no pair reaches it.
Redoing it (rather than putting each turn in the nearest cluster once and for all) lets later
evidence correct early guesses: two groups that turn out to be one voice merge, a group that
swallowed two voices splits.

The join level depends on the evidence: ``join`` for stretches of a second or so, rising to
``join_long`` for groups of 6 s or more (a long group's centroid is steady, so two people on one
channel, whose long centroids are ~0.8 alike, stay apart while short noisy stretches of one voice
still join). It also adapts to the session: where its distinct voices are alike on average
(a phone line, a reverberant room), every level rises to ``spread`` above that mean.

Identities stay stable: every item keeps the cluster id it was labelled under, and after each
clustering a group takes the id most of its earlier seconds carried (the larger group wins an id
two groups claim; the other takes a new one). Frames already sent are never relabelled; a merge
only means later turns of the merged group carry the surviving id.

Memory is bounded: past ``max_items`` the oldest half collapses into one item per cluster (and
if that is not enough, the oldest items go).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge_server.streaming.evidence import Voice

#: The cosine two groups need to merge, from the seconds of the smaller one.
Level = Callable[[np.ndarray], np.ndarray]
#: Seconds of the smaller group at which the join level starts rising, and stops.
RISE_FROM_S, RISE_TO_S = 1.0, 6.0


@dataclass
class Item:
    """One labelled stretch: its voice, how long it is, and the cluster id it got."""

    voice: Voice
    seconds: float
    cluster: int = -1


@dataclass(frozen=True)
class Group:
    """A cluster as it stands now: its id, items, seconds, centroid and mean enrolled scores."""

    id: int
    members: tuple[int, ...]
    seconds: float
    centroid: np.ndarray
    scores: dict[str, float]


def _centroid_linkage(vectors: np.ndarray, weights: np.ndarray, level: Level) -> list[list[int]]:
    """Merge the two groups whose centroids (duration-weighted mean embeddings) lie furthest above
    the level their sizes call for, while any pair is at or above it."""
    n = len(weights)
    groups: list[list[int]] = [[i] for i in range(n)]
    sums = vectors.astype(np.float64) * weights[:, None]
    units = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    seconds = weights.astype(np.float64).copy()
    lead = units @ units.T - level(np.minimum.outer(seconds, seconds))
    np.fill_diagonal(lead, -np.inf)
    alive = np.ones(n, dtype=bool)
    while alive.sum() > 1:
        a, b = divmod(int(np.argmax(lead)), n)
        if a == b or not lead[a, b] >= 0:
            break
        alive[b] = False
        sums[a] += sums[b]
        seconds[a] += seconds[b]
        units[a] = sums[a] / max(float(np.linalg.norm(sums[a])), 1e-12)
        row = np.where(alive, units @ units[a] - level(np.minimum(seconds, seconds[a])), -np.inf)
        row[a] = -np.inf
        lead[a, :] = row
        lead[:, a] = row
        lead[b, :] = -np.inf
        lead[:, b] = -np.inf
        groups[a].extend(groups[b])
        groups[b] = []
    return [g for g in groups if g]


class SessionClusters:
    """The clustering state of one session."""

    def __init__(self, join: float, join_long: float, spread: float, max_items: int = 160) -> None:
        self.join = join
        self.join_long = join_long
        self.spread = spread
        self.max_items = max_items
        self.items: list[Item] = []
        self.groups: list[Group] = []
        #: `between` of the session's groups now (kept from the last clustering).
        self.alike: float | None = None
        self._ids = itertools.count()

    def between(self, groups: list[list[int]]) -> float | None:
        """How alike the voices of ``groups`` sound: the mean cosine between those of ``RISE_TO_S``
        or more (None with fewer than two). High on a phone line or in a reverberant room."""
        big = [g for g in groups if sum(self.items[i].seconds for i in g) >= RISE_TO_S]
        if len(big) < 2:
            return None
        centroids = np.stack([self._centroid(g) for g in big])
        pairs = centroids @ centroids.T
        return float(pairs[np.triu_indices(len(big), 1)].mean())

    def level(self, groups: list[list[int]] | None = None) -> float:
        """How far the join levels rise for ``groups`` (default: the session's groups now): to
        ``spread`` above `between` when that is higher than ``join`` (0 otherwise)."""
        between = self.alike if groups is None else self.between(groups)
        return 0.0 if between is None else max(0.0, between + self.spread - self.join)

    def levels(self, rise: float = 0.0) -> Level:
        """Join level by the smaller group's seconds: ``join`` for short stretches, rising to
        ``join_long`` for groups of ``RISE_TO_S`` or more (their centroids are steadier), plus ``rise``."""

        def level(seconds: np.ndarray) -> np.ndarray:
            share = np.clip((seconds - RISE_FROM_S) / (RISE_TO_S - RISE_FROM_S), 0.0, 1.0)
            return self.join + rise + (self.join_long - self.join) * share

        return level

    def _centroid(self, members: list[int]) -> np.ndarray:
        total = sum(self.items[i].voice.embedding * self.items[i].seconds for i in members)
        return np.asarray(total / (np.linalg.norm(total) or 1.0), dtype=np.float32)

    def add(self, voice: Voice, seconds: float) -> Group:
        """Add a stretch, cluster again, and return the group it ended in (with its stable id)."""
        self.items.append(Item(voice, max(seconds, 0.01)))
        if len(self.items) > self.max_items:
            self._compact()
        vectors = np.stack([item.voice.embedding for item in self.items])
        weights = np.array([item.seconds for item in self.items])
        # cluster at the base level first, then again at the level those groups call for
        groups = _centroid_linkage(vectors, weights, self.levels())
        rise = self.level(groups)
        if rise > 0:
            groups = _centroid_linkage(vectors, weights, self.levels(rise))
        self.groups = self._identify(groups)
        self.alike = self.between(groups)
        newest = len(self.items) - 1
        return next(g for g in self.groups if newest in g.members)

    def _identify(self, groups: list[list[int]]) -> list[Group]:
        """Give each group the id most of its earlier seconds carried; the larger group wins a contested id."""
        claims: list[tuple[float, int, int]] = []  # (seconds, group index, id)
        for index, members in enumerate(groups):
            carried: dict[int, float] = {}
            for i in members:
                cid = self.items[i].cluster
                if cid >= 0:
                    carried[cid] = carried.get(cid, 0.0) + self.items[i].seconds
            claims.extend((seconds, index, cid) for cid, seconds in carried.items())
        ids: dict[int, int] = {}
        taken: set[int] = set()
        for _, index, cid in sorted(claims, reverse=True):
            if index not in ids and cid not in taken:
                ids[index] = cid
                taken.add(cid)
        out = []
        for index, members in enumerate(groups):
            cid = ids[index] if index in ids else next(self._ids)
            for i in members:
                self.items[i].cluster = cid
            seconds = sum(self.items[i].seconds for i in members)
            speakers = set().union(*(self.items[i].voice.scores for i in members))
            scores = {
                s: sum(self.items[i].voice.scores.get(s, 0.0) * self.items[i].seconds for i in members) / seconds
                for s in speakers
            }
            out.append(Group(cid, tuple(members), seconds, self._centroid(members), scores))
        return out

    def _compact(self) -> None:
        """Collapse the oldest half of the items into one item per cluster (bounded memory)."""
        half = len(self.items) // 2
        old, recent = self.items[:half], self.items[half:]
        by_id: dict[int, list[Item]] = {}
        for item in old:
            by_id.setdefault(item.cluster, []).append(item)
        collapsed = []
        for cid, items in by_id.items():
            seconds = sum(i.seconds for i in items)
            total = sum(i.voice.embedding * i.seconds for i in items)
            speakers = set().union(*(i.voice.scores for i in items))
            scores = {s: sum(i.voice.scores.get(s, 0.0) * i.seconds for i in items) / seconds for s in speakers}
            embedding = np.asarray(total / (np.linalg.norm(total) or 1.0), dtype=np.float32)
            collapsed.append(Item(Voice(embedding, scores), seconds, cid))
        # voices heard once and never again may still outnumber the bound: the oldest go
        self.items = (collapsed + recent)[-self.max_items :]

    def nearest(self, voice: Voice) -> tuple[Group | None, float]:
        """The group whose centroid is closest to ``voice`` (learning nothing), and its cosine."""
        best: tuple[Group | None, float] = (None, -1.0)
        for group in self.groups:
            similarity = float(np.dot(group.centroid, voice.embedding))
            if similarity > best[1]:
                best = (group, similarity)
        return best

    def forget(self) -> None:
        """Drop every embedding."""
        self.items.clear()
        self.groups.clear()
        self.alike = None
