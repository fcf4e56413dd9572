"""What a pyannote node says about a stretch of audio: sliding windows, the voice of several, and
the turns it cut where the speaker changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Voice:
    """An embedding (unit vector) and its cosine scores against the enrolled speakers a node holds."""

    embedding: np.ndarray
    scores: dict[str, float]


@dataclass(frozen=True)
class Window:
    """One sliding window of a stretch of audio (times in seconds from the stretch's start)."""

    start: float
    end: float
    embedding: np.ndarray
    scores: dict[str, float]


def merge(windows: Sequence[Window]) -> Voice:
    """The voice of several windows: their normalized mean embedding and its exact scores.

    A score is a dot product, so the mean embedding's score is the mean of the windows' scores;
    dividing by the mean's norm gives the cosine to the normalized mean.
    """
    mean = np.mean([w.embedding for w in windows], axis=0)
    norm = float(np.linalg.norm(mean)) or 1.0
    scores = {s: float(np.mean([w.scores.get(s, 0.0) for w in windows])) / norm for s in windows[0].scores}
    return Voice((mean / norm).astype(np.float32), scores)


@dataclass(frozen=True)
class Turn:
    """A stretch taken as one voice; times in seconds from the stretch's start."""

    start: float
    end: float
    voice: Voice
    #: Seconds of speech behind ``voice`` (default: the turn's length); a voice the node heard for a
    #: local speaker covers all of that speaker's speech in the stretch, not this turn only.
    evidence_s: float | None = None

    @property
    def seconds(self) -> float:
        """How much speech the turn's voice was heard over."""
        return self.end - self.start if self.evidence_s is None else self.evidence_s


@dataclass(frozen=True)
class Heard:
    """A node's answer for a stretch: its windows and, when the node segmented it, its turns."""

    windows: list[Window]
    turns: list[Turn] | None = None
