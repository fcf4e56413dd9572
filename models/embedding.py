"""Speaker embeddings of sliding windows, from a pyannote.audio embedding `Model`.

Heavy module (torch, pyannote.audio): imported by the node process only, through
`models.registry.load_embedder`.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hashlib
import threading
import time
from collections import OrderedDict

import numpy as np
import torch
from pyannote.audio import Model

from models.audio import SAMPLE_RATE

#: A trailing partial window is kept only if it is at least this share of a whole one (GE2E's own
#: `embed_utterance` rule); a shorter one gives a noisy embedding.
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
    """Any pyannote.audio embedding `Model` behind the `Embedder` protocol.

    Windows are cut here (not by pyannote's `Inference`) so that each window's embedding depends
    on its own samples only: a trailing partial window is embedded as it is, never padded with
    zeros. That lets a short-lived cache answer for windows seen before: the edge asks for the
    windows of a growing phrase every half second, on a grid fixed to the phrase's start, so most
    windows of a request were embedded by the one before. Entries live ``cache_ttl_s`` at most
    (they are voices of live streams, never stored) and there are at most ``cache_size``.
    """

    def __init__(
        self,
        model: Model,
        model_name: str,
        window_s: float,
        step_s: float,
        target_dbfs: float | None = None,
        cache_size: int = 2048,
        cache_ttl_s: float = 30.0,
    ) -> None:
        torch.set_num_threads(1)  # one core per node process; the box has two
        self.model_name = model_name
        self.dimension = int(model.dimension)  # type: ignore[arg-type]
        self._model = model
        self._target_dbfs = target_dbfs
        self._window_s = window_s
        self._step_s = step_s
        self._cache: OrderedDict[bytes, tuple[float, np.ndarray]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_ttl_s = cache_ttl_s
        #: windows answered from the cache / embedded, since start (benchmarks read them)
        self.hits = 0
        self.misses = 0
        # one inference at a time (shared model in eval mode; one core per node)
        self._lock = threading.Lock()

    @property
    def window_s(self) -> float:
        """Length of one sliding window."""
        return self._window_s

    def _run(self, chunks: list[np.ndarray]) -> np.ndarray:
        """Embeddings (k, dimension) of equally long chunks, one batch."""
        batch = torch.from_numpy(np.ascontiguousarray(np.stack(chunks)))[:, None, :]
        with torch.inference_mode():
            out = self._model(batch)
        return np.asarray(out, dtype=np.float64)

    def _cached(self, key: bytes, now: float) -> np.ndarray | None:
        entry = self._cache.get(key)
        if entry is None or now - entry[0] > self._cache_ttl_s:
            return None
        self._cache.move_to_end(key)
        return entry[1]

    def _remember(self, key: bytes, vector: np.ndarray, now: float) -> None:
        self._cache[key] = (now, vector)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        oldest = next(iter(self._cache.values()), None)
        while oldest is not None and now - oldest[0] > self._cache_ttl_s:
            self._cache.popitem(last=False)
            oldest = next(iter(self._cache.values()), None)

    def embed_windows(self, samples: np.ndarray, step_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(n,) float32 speech -> (start seconds (w,), embeddings (w, dimension)) of its sliding windows.

        Windows are ``window_s`` long, ``step_s`` apart (default: the engine's); a trailing window with less than
        ``MIN_LAST_COVERAGE`` of it left is dropped (the first is always kept, however short).
        """
        if len(samples) == 0:
            raise ValueError("no audio to embed")
        x = samples.astype(np.float32)
        if self._target_dbfs is not None:
            x = normalize_level(x, self._target_dbfs)
        size = round(self._window_s * SAMPLE_RATE)
        step = round((step_s or self._step_s) * SAMPLE_RATE)
        starts = [0]
        while starts[-1] + step + MIN_LAST_COVERAGE * size <= len(x):
            starts.append(starts[-1] + step)
        chunks = [x[s : s + size] for s in starts]
        keys = [hashlib.blake2b(c.tobytes(), digest_size=16).digest() for c in chunks]
        now = time.monotonic()
        with self._lock:
            found = [self._cached(k, now) for k in keys]
            todo = [i for i, v in enumerate(found) if v is None]
            self.hits += len(keys) - len(todo)
            self.misses += len(todo)
            full = [i for i in todo if len(chunks[i]) == size]
            if full:
                for i, vector in zip(full, self._run([chunks[i] for i in full]), strict=True):
                    found[i] = vector
            for i in todo:
                if len(chunks[i]) < size:
                    found[i] = self._run([chunks[i]])[0]
            for i in todo:
                vector = found[i]
                assert vector is not None
                self._remember(keys[i], vector, now)
        data = np.stack([v for v in found if v is not None])
        return np.asarray(starts, dtype=np.float64) / SAMPLE_RATE, data

    def embed(self, samples: np.ndarray, step_s: float | None = None) -> np.ndarray:
        """(n,) float32 speech at 16 kHz -> (dimension,) float32 unit vector (mean of its windows,
        ``step_s`` apart: default the engine's step; ``window_s`` tiles the speech, ~4x cheaper)."""
        _, data = self.embed_windows(samples, step_s)
        mean = data.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        if not np.isfinite(norm) or norm == 0.0:
            raise ValueError("the embedding is degenerate (silent input?)")
        return (mean / norm).astype(np.float32)
