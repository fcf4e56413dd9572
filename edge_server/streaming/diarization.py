"""Who spoke a turn: an enrolled name, a per-session `spk_N` voice, or no label (pure, per session).

A pyannote node embeds each decoded stretch in sliding windows and scores them against the
tenant's enrolled speakers (cosine of unit vectors); turns.py cuts the stretch where the voice
changes. Here each turn is decided:

- **Session voices**: the turn joins the session's clustering (clusters.py: agglomerative,
  redone per turn, with a join level that adapts to how alike the session's voices are). A voice
  that is not an enrolled speaker is `spk_0`, `spk_1`, ... in order of first labelling, and keeps
  its number for the session. A voice heard for less than ``new_voice_s`` borrows the label of
  the closest voice; when it is long enough for its own, it keeps the label it borrowed if it
  carried that label longer than its owner did (a first stretch too short to embed well must not
  leave its speaker with two numbers).
- **Enrolled name** only on clear evidence: the turn's own scores (when it lasts
  ``min_speech_s``) or its session voice's duration-weighted mean scores pass ``accept`` and lead
  the runner-up by ``margin``. Where everyone sounds alike (the session's distinct voices are close
  to each other: a phone line, a reverberant room) scores run high for everybody, so the bar rises
  to ``name_spread`` above how alike they are; if the two name different people, neither name is used. A turn
  scoring ``session_margin`` below the session's best turn for that speaker is someone else.
  A wrong name is worse than no name.
- Scores of speakers erased or not ready are ignored (the caller passes the live names), so an
  erased speaker is never named even if a node has not evicted them yet.

The embeddings live only in this object and die with the session.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from appliance.settings import DiarizationSettings
from edge_server.streaming.clusters import Group, SessionClusters
from edge_server.streaming.evidence import Voice, Window, merge
from edge_server.streaming.turns import SameVoice, Turn, runner_up, split_turns

__all__ = ["Label", "SessionSpeakers", "Turn", "Voice", "Window", "merge", "split_turns"]


@dataclass(frozen=True)
class Label:
    """A delta's speaker fields; ``speaker_id``/``confidence`` only for an enrolled match."""

    label: str
    speaker_id: str | None = None
    confidence: float | None = None


class SessionSpeakers:
    """The labelling state of one session."""

    def __init__(self, settings: DiarizationSettings) -> None:
        self.settings = settings
        #: Profiles of one voice (the caller refreshes it as speakers are enrolled or erased).
        self.same_voice: SameVoice = {}
        self.clusters = SessionClusters(settings.cluster_join, settings.cluster_join_long, settings.cluster_spread)
        self._spk: dict[int, str] = {}  # session voice id -> its spk_N
        self._carried: dict[tuple[int, str], float] = {}  # (voice id, spk_N) -> seconds labelled so
        self._numbers = itertools.count()
        self._best_seen: dict[str, float] = {}  # speaker id -> best score of a long turn named so

    def observe(self, voices: Sequence[tuple[Voice, float]], live: dict[str, str]) -> None:
        """Note the best score each enrolled speaker reaches in a stretch's long-enough turns.

        Call before deciding those turns: a later (or earlier) turn of the same stretch that
        scores far below the session's best for that speaker is another, similar voice.
        """
        for voice, seconds in voices:
            match = self._best(voice.scores, live) if seconds >= self.settings.min_speech_s else None
            if match is not None:
                speaker_id, score = match
                self._best_seen[speaker_id] = max(score, self._best_seen.get(speaker_id, -1.0))

    def _best(self, scores: dict[str, float], live: dict[str, str]) -> tuple[str, float] | None:
        """The best live speaker if it passes ``accept`` and ``margin``."""
        ranked = sorted(((v, k) for k, v in scores.items() if k in live), reverse=True)
        if not ranked:
            return None
        best, speaker_id = ranked[0]
        between = self.clusters.alike
        accept = (
            self.settings.accept if between is None else max(self.settings.accept, between + self.settings.name_spread)
        )
        if best >= accept and best - runner_up(ranked, self.same_voice) >= self.settings.margin:
            return speaker_id, best
        return None

    def _name(self, voice: Voice, seconds: float, group: Group | None, live: dict[str, str]) -> Label | None:
        """An enrolled name for a turn of ``group``, or None."""
        own = self._best(voice.scores, live) if seconds >= self.settings.min_speech_s else None
        shared = None
        if group is not None and group.seconds >= self.settings.min_speech_s:
            shared = self._best(group.scores, live)
        if own is not None and shared is not None and own[0] != shared[0]:
            return None  # the turn and its session voice disagree: in doubt, no name
        match = own or shared
        if match is None:
            return None
        speaker_id, score = match
        floor = self._best_seen.get(speaker_id, -1.0) - self.settings.session_margin
        if score < floor:
            return None  # the session has heard this speaker clearly closer: this is someone else
        if seconds >= self.settings.min_speech_s and voice.scores.get(speaker_id, -1.0) < floor:
            return None  # the same test on the turn's own evidence, when its voice group is mixed
        return Label(live[speaker_id], speaker_id, round(score, 3))

    def _supports(self, voice: Voice, name: Label, live: dict[str, str]) -> bool:
        """The turn's own best live score is ``name``'s, within ``session_margin`` of ``accept``."""
        ranked = sorted(((v, k) for k, v in voice.scores.items() if k in live), reverse=True)
        return (
            bool(ranked)
            and ranked[0][1] == name.speaker_id
            and ranked[0][0] >= (self.settings.accept - self.settings.session_margin)
        )

    def _spk_of(self, group: Group) -> Label:
        """The `spk_N` of a voice that has one, or may now have one: the label it borrowed most
        while young, if it carried that label longer than the voice that owns it (then an early
        stretch too short to embed well, not the voice heard since, was that label's owner: the owner
        gets a new number if heard again), else the next number."""
        if group.id not in self._spk:
            self._spk[group.id] = self._inherited(group) or f"spk_{next(self._numbers)}"
        return Label(self._spk[group.id])

    def _inherited(self, group: Group) -> str | None:
        """The `spk_N` ``group`` takes over from its owner (see `_spk_of`), or None."""
        borrowed = {label: s for (owner, label), s in self._carried.items() if owner == group.id}
        if not borrowed:
            return None
        label = max(borrowed, key=lambda k: borrowed[k])
        owner = next((vid for vid, spk in self._spk.items() if spk == label), None)
        if owner is not None and borrowed[label] <= self._carried.get((owner, label), 0.0):
            return None
        if owner is not None:
            del self._spk[owner]
        return label

    def decide(
        self,
        voice: Voice | None,
        seconds: float,
        live: dict[str, str],
        weight: float | None = None,
        heard: Voice | None = None,
    ) -> Label | None:
        """The label of a turn heard for ``seconds``; ``live`` maps ready speaker ids to display names.

        The session's voices learn ``heard`` (default ``voice``) for ``weight`` seconds (default
        ``seconds``): the part of the turn labelled now, when part of it was counted with an
        earlier delta.
        """
        if voice is None:
            return None
        group = self.clusters.add(heard or voice, seconds if weight is None else weight)
        named = self._name(voice, seconds, group, live)
        if named is not None:
            return named
        label = self._borrow(voice, seconds, group, live) or self._spk_of(group)
        if label.speaker_id is None:
            key = (group.id, label.label)
            self._carried[key] = self._carried.get(key, 0.0) + (seconds if weight is None else weight)
        return label

    def _borrow(self, voice: Voice, seconds: float, group: Group, live: dict[str, str]) -> Label | None:
        """The label of the closest other voice, for a turn whose own voice has none to give yet.

        A group younger than ``new_voice_s`` takes the closest established voice's label when the
        cosine is >= ``cluster_attach`` (rather than opening a `spk_N` on a second of audio). Any
        unnamed group takes a name from a voice within ``cluster_join`` (one person split in two
        groups), in both cases only when the turn's own best score is that person's and within
        ``session_margin`` of ``accept``.
        """
        young = group.id not in self._spk and group.seconds < self.settings.new_voice_s
        others = [
            g
            for g in self.clusters.groups
            if g.id != group.id and (g.id in self._spk or g.seconds >= self.settings.new_voice_s)
        ]
        if not others:
            return None
        nearest = max(others, key=lambda g: float(np.dot(g.centroid, voice.embedding)))
        similarity = float(np.dot(nearest.centroid, voice.embedding))
        name = self._name(voice, seconds, nearest, live)
        if name is not None and not self._supports(voice, name, live):
            name = None  # a name is only borrowed when the turn's own scores lean to it
        if name is not None and similarity >= (self.settings.cluster_attach if young else self.settings.cluster_join):
            return name
        if young and similarity >= self.settings.cluster_attach and nearest.id in self._spk:
            return Label(self._spk[nearest.id])
        return None

    def peek(self, voice: Voice, seconds: float, live: dict[str, str]) -> Label | None:
        """A provisional label for words not final yet, learning nothing: an enrolled name on the
        turn's own evidence, else the label of the session voice it is nearest to, if close enough."""
        group, similarity = self.clusters.nearest(voice)
        if group is None or similarity < self.clusters.join + self.clusters.level():
            return self._name(voice, seconds, None, live)
        named = self._name(voice, seconds, group, live)
        if named is not None:
            return named
        return Label(self._spk[group.id]) if group.id in self._spk else None

    def forget(self) -> None:
        """Drop every embedding (the session ended)."""
        self.clusters.forget()
        self._best_seen.clear()
        self._carried.clear()
