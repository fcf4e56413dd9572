"""Who spoke a phrase: an enrolled name, a per-session `spk_N` cluster, or no label.

A pyannote node embeds each phrase and scores it against the tenant's enrolled speakers (cosine
of unit vectors). The decision here is pure and per session:

- **Enrolled name** only on clear evidence: the phrase has at least ``min_speech_s`` of audio,
  its best score reaches ``accept`` and leads the runner-up by ``margin``; or the phrase is
  shorter but belongs to a session cluster whose accumulated evidence (duration-weighted mean
  scores over all its phrases) passes the same test. A wrong name is worse than no name.
- **Session clusters** group phrases of one voice: a phrase joins the cluster whose centroid
  is nearest, if the cosine reaches ``cluster_join``, else starts a new one. A cluster that is
  not an enrolled speaker is labelled `spk_0`, `spk_1`, ... in order of first labelling, and
  keeps its number for the session.
- Scores of speakers erased or not ready are ignored (the caller passes the live names), so an
  erased speaker is never named even if a node has not evicted them yet.

The embeddings live only in this object and die with the session.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import numpy as np

from appliance.settings import DiarizationSettings


@dataclass(frozen=True)
class Voice:
    """A phrase's embedding and its scores against the enrolled speakers a node holds."""

    embedding: np.ndarray
    scores: dict[str, float]


@dataclass(frozen=True)
class Window:
    """One sliding window of a phrase (times in seconds from the phrase start)."""

    start: float
    end: float
    embedding: np.ndarray
    scores: dict[str, float]


def merge(windows: Sequence[Window]) -> Voice:
    """The voice of consecutive windows: their normalized mean embedding and its exact scores.

    A score is a dot product, so the mean embedding's score is the mean of the windows' scores;
    dividing by the mean's norm gives the cosine to the normalized mean.
    """
    mean = np.mean([w.embedding for w in windows], axis=0)
    norm = float(np.linalg.norm(mean)) or 1.0
    scores = {s: float(np.mean([w.scores.get(s, 0.0) for w in windows])) / norm for s in windows[0].scores}
    return Voice((mean / norm).astype(np.float32), scores)


@dataclass(frozen=True)
class Turn:
    """A stretch of a phrase taken as one voice; times in seconds from the phrase start."""

    start: float
    end: float
    voice: Voice


#: speaker id -> the other profiles of the same voice (one person enrolled more than once).
SameVoice = Mapping[str, AbstractSet[str]]


def runner_up(ranked: Sequence[tuple[float, str]], same_voice: SameVoice) -> float:
    """The best score of another person than ``ranked[0]``'s: profiles of the same voice are skipped,
    so a person enrolled twice is not held back by a margin against herself."""
    top = ranked[0][1]
    twins = same_voice.get(top, frozenset())
    return next((score for score, speaker in ranked[1:] if speaker not in twins), -1.0)


def split_turns(
    windows: Sequence[Window],
    duration_s: float,
    live: Iterable[str],
    settings: DiarizationSettings,
    same_voice: SameVoice | None = None,
) -> list[Turn]:
    """Cut a phrase where its windows change speaker.

    Each window gets a provisional speaker: the best live enrolled speaker when its own score
    reaches ``window_accept`` with ``margin``, else "someone else". Runs shorter than
    ``min_turn_windows`` are absorbed by the run before them (or after, at the start), so one
    odd window never makes a turn. Turn boundaries lie halfway between the centres of the last
    window of one run and the first of the next. The label of each turn is decided later, on
    the turn's merged evidence, with the full thresholds.
    """
    if not windows:
        return []
    allowed = set(live)
    guesses: list[str | None] = []
    for window in windows:
        ranked = sorted(((v, k) for k, v in window.scores.items() if k in allowed), reverse=True)
        if not ranked:
            guesses.append(None)
            continue
        best, speaker = ranked[0]
        ok = best >= settings.window_accept and best - runner_up(ranked, same_voice or {}) >= settings.margin
        guesses.append(speaker if ok else None)
    runs: list[list[int]] = []  # window indices
    for i, guess in enumerate(guesses):
        if runs and guesses[runs[-1][0]] == guess:
            runs[-1].append(i)
        else:
            runs.append([i])
    merged: list[tuple[str | None, list[int]]] = []
    for run in runs:
        guess = guesses[run[0]]
        if merged and (len(run) < settings.min_turn_windows or merged[-1][0] == guess):
            merged[-1][1].extend(run)
            continue
        if merged and len(merged[-1][1]) < settings.min_turn_windows:  # a short first run
            run = merged.pop()[1] + run
        merged.append((guess, run))
    turns = []
    start = 0.0
    for k, (_, run) in enumerate(merged):
        if k + 1 < len(merged):
            last, following = windows[run[-1]], windows[merged[k + 1][1][0]]
            end = ((last.start + last.end) / 2 + (following.start + following.end) / 2) / 2
        else:
            end = duration_s
        turns.append(Turn(start, end, merge([windows[i] for i in run])))
        start = end
    return turns


@dataclass(frozen=True)
class Label:
    """A delta's speaker fields; ``speaker_id``/``confidence`` only for an enrolled match."""

    label: str
    speaker_id: str | None = None
    confidence: float | None = None


@dataclass
class _Cluster:
    weighted: np.ndarray  # sum of embedding * seconds
    seconds: float
    score_sums: dict[str, float] = field(default_factory=dict)  # speaker -> sum of score * seconds
    spk: str | None = None

    @property
    def centroid(self) -> np.ndarray:
        return self.weighted / (np.linalg.norm(self.weighted) or 1.0)

    def add(self, voice: Voice, seconds: float) -> None:
        self.weighted = self.weighted + voice.embedding * seconds
        self.seconds += seconds
        for speaker_id, score in voice.scores.items():
            self.score_sums[speaker_id] = self.score_sums.get(speaker_id, 0.0) + score * seconds

    def mean_scores(self) -> dict[str, float]:
        return {s: total / self.seconds for s, total in self.score_sums.items()}


class SessionSpeakers:
    """The labelling state of one session."""

    def __init__(self, settings: DiarizationSettings) -> None:
        self.settings = settings
        #: Profiles of one voice (the caller refreshes it as speakers are enrolled or erased).
        self.same_voice: SameVoice = {}
        self._clusters: list[_Cluster] = []
        self._next_spk = 0
        self._best_seen: dict[str, float] = {}  # speaker id -> best score of a long turn named so

    def observe(self, voices: Sequence[tuple[Voice, float]], live: dict[str, str]) -> None:
        """Note the best score each enrolled speaker reaches in a phrase's long-enough turns.

        Call before deciding those turns: a later (or earlier) turn of the same phrase that
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
        if best >= self.settings.accept and best - runner_up(ranked, self.same_voice) >= self.settings.margin:
            return speaker_id, best
        return None

    def _cluster_for(self, voice: Voice, seconds: float) -> _Cluster:
        nearest, similarity = None, -1.0
        for cluster in self._clusters:
            value = float(np.dot(cluster.centroid, voice.embedding))
            if value > similarity:
                nearest, similarity = cluster, value
        if nearest is None or similarity < self.settings.cluster_join:
            nearest = _Cluster(np.zeros_like(voice.embedding), 0.0)
            self._clusters.append(nearest)
        nearest.add(voice, seconds)
        return nearest

    def decide(
        self, voice: Voice | None, seconds: float, live: dict[str, str], weight: float | None = None
    ) -> Label | None:
        """The label of a turn heard for ``seconds``; ``live`` maps ready speaker ids to display names.

        ``weight`` is the seconds it adds to its session cluster (default ``seconds``): less when
        part of the turn's audio was already counted with an earlier delta.
        """
        if voice is None:
            return None
        cluster = self._cluster_for(voice, seconds if weight is None else weight)
        match = self._best(voice.scores, live) if seconds >= self.settings.min_speech_s else None
        if match is None and cluster.seconds >= self.settings.min_speech_s:
            match = self._best(cluster.mean_scores(), live)
        if match is not None and match[1] < self._best_seen.get(match[0], -1.0) - self.settings.session_margin:
            match = None  # the session has heard this speaker clearly closer: this is someone else
        if match is not None:
            speaker_id, score = match
            return Label(live[speaker_id], speaker_id, round(score, 3))
        if cluster.spk is None:
            cluster.spk = f"spk_{self._next_spk}"
            self._next_spk += 1
        return Label(cluster.spk)

    def peek(self, voice: Voice, seconds: float, live: dict[str, str]) -> Label | None:
        """A provisional label for words not final yet, learning nothing: an enrolled name on the
        turn's own evidence, else the nearest labelled cluster it would join, else None."""
        match = self._best(voice.scores, live) if seconds >= self.settings.min_speech_s else None
        if match is not None and match[1] >= self._best_seen.get(match[0], -1.0) - self.settings.session_margin:
            return Label(live[match[0]], match[0], round(match[1], 3))
        best: tuple[float, str | None] = (-1.0, None)
        for cluster in self._clusters:
            similarity = float(np.dot(cluster.centroid, voice.embedding))
            if cluster.spk is not None and similarity > best[0]:
                best = (similarity, cluster.spk)
        return Label(best[1]) if best[1] is not None and best[0] >= self.settings.cluster_join else None

    def forget(self) -> None:
        """Drop every embedding (the session ended)."""
        self._clusters.clear()
        self._best_seen.clear()
