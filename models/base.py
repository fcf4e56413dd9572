"""The small protocols engines implement; callers never see torch or pyannote types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Segment:
    """One transcribed stretch; times in seconds from the start of the audio given."""

    start: float
    end: float
    text: str


class Embedder(Protocol):
    """Speaker embedding engine."""

    #: Human-readable model identity, shown in `GET /nodes`.
    model_name: str
    #: Length of one embedding.
    dimension: int

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """(n,) float32 speech at 16 kHz -> (dimension,) float32 unit vector."""
        ...


class Transcriber(Protocol):
    """Speech-to-text engine."""

    #: Human-readable model identity.
    model_name: str

    def transcribe(self, samples: np.ndarray, language: str | None = None) -> list[Segment]:
        """(n,) float32 at 16 kHz -> segments in order."""
        ...
