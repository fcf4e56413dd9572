"""The small protocols engines implement; callers never see torch or pyannote types."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """Speaker embedding engine."""

    #: Human-readable model identity, shown in `GET /nodes`.
    model_name: str
    #: Length of one embedding.
    dimension: int

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """(n,) float32 speech at 16 kHz -> (dimension,) float32 unit vector."""
        ...
