"""Speaker embeddings through pyannote.audio's sliding-window `Inference`.

Heavy module (torch, pyannote.audio): imported by the node process only, through
`models.registry.load_embedder`.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import threading

import numpy as np
import torch
from pyannote.audio import Inference, Model
from pyannote.core import SlidingWindowFeature

from models.audio import SAMPLE_RATE

#: A trailing partial window is kept only if at least this share of it is real audio
#: (GE2E's own `embed_utterance` rule); the rest would be mostly zero padding.
MIN_LAST_COVERAGE = 0.75


def normalize_level(samples: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Raise (never lower) the level of (n,) float32 audio to ``target_dbfs`` RMS."""
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0
    if rms <= 0.0:
        return samples
    change_db = target_dbfs - 20.0 * np.log10(rms)
    if change_db <= 0:
        return samples
    return (samples * (10.0 ** (change_db / 20.0))).astype(np.float32)


class PyannoteEmbedder:
    """Any pyannote.audio embedding `Model` behind the `Embedder` protocol."""

    def __init__(
        self,
        model: Model,
        model_name: str,
        window_s: float,
        step_s: float,
        target_dbfs: float | None = None,
    ) -> None:
        torch.set_num_threads(1)  # one core per node process; the box has two
        self.model_name = model_name
        self.dimension = int(model.dimension)  # type: ignore[arg-type]
        self._target_dbfs = target_dbfs
        self._window_s = window_s
        self._step_s = step_s
        self._inference = Inference(model, window="sliding", duration=window_s, step=step_s)
        # Inference is not re-entrant (shared model in eval mode, batch buffers): one at a time.
        self._lock = threading.Lock()

    @property
    def window_s(self) -> float:
        """Length of one sliding window."""
        return self._window_s

    def embed_windows(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n,) float32 speech -> (start seconds (w,), embeddings (w, dimension)) of its sliding windows.

        Windows are ``window_s`` long, ``step_s`` apart; a trailing window mostly made of padding
        is dropped (the first is always kept).
        """
        if len(samples) == 0:
            raise ValueError("no audio to embed")
        x = samples.astype(np.float32)
        if self._target_dbfs is not None:
            x = normalize_level(x, self._target_dbfs)
        waveform = torch.from_numpy(np.ascontiguousarray(x))[None]
        with self._lock:
            windows = self._inference({"waveform": waveform, "sample_rate": SAMPLE_RATE})
        assert isinstance(windows, SlidingWindowFeature)
        data = np.asarray(windows.data, dtype=np.float64)
        duration = len(x) / SAMPLE_RATE
        starts = np.arange(len(data)) * self._step_s
        keep = starts + MIN_LAST_COVERAGE * self._window_s <= duration
        keep[0] = True
        return starts[keep], data[keep]

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """(n,) float32 speech at 16 kHz -> (dimension,) float32 unit vector (mean of its windows)."""
        _, data = self.embed_windows(samples)
        mean = data.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        if not np.isfinite(norm) or norm == 0.0:
            raise ValueError("the embedding is degenerate (silent input?)")
        return (mean / norm).astype(np.float32)
