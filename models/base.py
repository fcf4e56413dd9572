"""The small protocols engines implement; callers never see torch or pyannote types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Word:
    """One word with its times; ``text`` keeps Whisper's leading space."""

    start: float
    end: float
    text: str
    #: How sure the recognizer was (Whisper: the mean probability of the word's tokens); None: not said.
    probability: float | None = None


@dataclass(frozen=True)
class Segment:
    """One transcribed stretch; times in seconds from the start of the audio given."""

    start: float
    end: float
    text: str
    #: Word timings when the engine gives them (Backend A), else empty.
    words: tuple[Word, ...] = ()


class Embedder(Protocol):
    """Speaker embedding engine."""

    #: Human-readable model identity, shown in `GET /nodes`.
    model_name: str
    #: Length of one embedding.
    dimension: int
    #: Windows answered from the cache, and windows the model ran on, since the engine loaded.
    hits: int
    misses: int

    @property
    def window_s(self) -> float:
        """Length of one sliding window of `embed_windows`, in seconds."""
        ...

    def embed(self, samples: np.ndarray, step_s: float | None = None) -> np.ndarray:
        """(n,) float32 speech at 16 kHz -> (dimension,) float32 unit vector (windows ``step_s`` apart)."""
        ...

    def embed_windows(self, samples: np.ndarray, step_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(n,) float32 speech -> (window start seconds (w,), window embeddings (w, dimension))."""
        ...


class Transcriber(Protocol):
    """Speech-to-text engine."""

    #: Human-readable model identity.
    model_name: str

    def transcribe(self, samples: np.ndarray, language: str | None = None, words: bool = True) -> list[Segment]:
        """(n,) float32 at 16 kHz -> segments in order (with word timings when ``words``)."""
        ...
