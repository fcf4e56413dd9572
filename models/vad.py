"""Voice activity detection with the Silero ONNX model that ships inside faster-whisper."""

from __future__ import annotations

import numpy as np

from models.audio import SAMPLE_RATE

#: (start, end) sample indices of one speech region at 16 kHz.
Region = tuple[int, int]


def speech_regions(samples: np.ndarray, threshold: float = 0.5, min_silence_ms: int = 300) -> list[Region]:
    """Speech regions of (n,) float32 16 kHz audio, as sample index pairs."""
    # Lazy: faster-whisper pulls in ctranslate2 and onnxruntime (no torch).
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if len(samples) == 0:
        return []
    options = VadOptions(threshold=threshold, min_silence_duration_ms=min_silence_ms, speech_pad_ms=100)
    stamps = get_speech_timestamps(np.ascontiguousarray(samples, dtype=np.float32), options, SAMPLE_RATE)
    return [(int(s["start"]), int(s["end"])) for s in stamps]


def speech_mask(n_samples: int, regions: list[Region]) -> np.ndarray:
    """Boolean (n,) mask that is True inside the regions."""
    mask = np.zeros(n_samples, dtype=bool)
    for start, end in regions:
        mask[max(0, start) : min(n_samples, end)] = True
    return mask


def speech_only(samples: np.ndarray, regions: list[Region]) -> np.ndarray:
    """The speech regions of ``samples`` concatenated: what a speaker embedding should see."""
    if not regions:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([samples[s:e] for s, e in regions]).astype(np.float32)
