"""Voice activity detection with the Silero ONNX model that ships inside faster-whisper."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.audio import SAMPLE_RATE

#: (start, end) sample indices of one speech region at 16 kHz.
Region = tuple[int, int]


def speech_regions(
    samples: np.ndarray, threshold: float = 0.5, min_silence_ms: int = 300, pad_ms: int = 100
) -> list[Region]:
    """Speech regions of (n,) float32 16 kHz audio, as sample index pairs, widened by ``pad_ms``."""
    # Lazy: faster-whisper pulls in ctranslate2 and onnxruntime (no torch).
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if len(samples) == 0:
        return []
    options = VadOptions(threshold=threshold, min_silence_duration_ms=min_silence_ms, speech_pad_ms=pad_ms)
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


#: Silero processes 512-sample (32 ms) chunks, each with the previous chunk's last 64 samples.
CHUNK = 512
CONTEXT = 64
CHUNK_S = CHUNK / SAMPLE_RATE


class StreamingVad:
    """Silero VAD over audio that arrives in pieces of any size.

    Keeps the model's LSTM state and the 64-sample context between calls, so the speech
    probabilities equal those of one offline pass over the whole stream. One instance per stream.
    """

    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session  # shared, read-only ONNX session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """(n,) float32 at 16 kHz -> speech probability of every 32 ms chunk completed by it."""
        audio = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        whole = len(audio) // CHUNK * CHUNK
        self._pending = audio[whole:]
        if whole == 0:
            return np.zeros(0, dtype=np.float32)
        chunks = audio[:whole].reshape(-1, CHUNK)
        contexts = np.concatenate([self._context[None], chunks[:-1, -CONTEXT:]])
        self._context = chunks[-1, -CONTEXT:].copy()
        batch = np.concatenate([contexts, chunks], axis=1)
        out, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        return np.asarray(out, dtype=np.float32).reshape(-1)


@dataclass(frozen=True)
class Phrase:
    """A closed phrase: chunk-aligned sample indices from the start of the stream."""

    start: int
    end: int


#: Audio kept on each side of a phrase that ends in silence.
SPEECH_PAD_S = 0.1


class PhraseSegmenter:
    """Turns per-chunk speech probabilities into phrases (pure: no model, no I/O).

    A phrase opens at the first chunk at or above ``threshold`` and closes once the probability
    has stayed below ``threshold - 0.15`` for ``min_silence_s``, or when it reaches ``max_phrase_s``
    (then it is cut, and the next chunk above ``threshold`` opens the following phrase).
    ``pad_s`` of audio is kept on each side of a phrase that ends in silence.
    """

    def __init__(
        self,
        threshold: float = 0.5,
        min_silence_s: float = 0.4,
        max_phrase_s: float = 15.0,
        pad_s: float = SPEECH_PAD_S,
    ) -> None:
        self.threshold = threshold
        self.off_threshold = threshold - 0.15
        self.min_silence_chunks = max(1, round(min_silence_s / CHUNK_S))
        self.max_chunks = max(1, round(max_phrase_s / CHUNK_S))
        self.pad = int(pad_s * SAMPLE_RATE)
        self._index = 0  # chunks seen
        self._start: int | None = None  # chunk index where the open phrase began
        self._last_speech = 0  # last chunk index at or above the off threshold

    @property
    def open_since(self) -> int | None:
        """Start sample of the phrase being spoken, or None."""
        return None if self._start is None else max(0, self._start * CHUNK - self.pad)

    @property
    def position(self) -> int:
        """Samples consumed so far (whole chunks)."""
        return self._index * CHUNK

    @property
    def in_pause(self) -> bool:
        """A phrase is open and its last chunk was below the off threshold."""
        return self._start is not None and self._last_speech < self._index - 1

    def tentative(self, min_silence_s: float) -> Phrase | None:
        """The phrase as it will close if the silence now under way goes on, or None.

        None unless a phrase is open and has been silent for at least ``min_silence_s``: then the
        phrase's speech is all here already (its end padding may not be), so it can be decoded
        ahead. If speech comes back first, the phrase grows and this guess is void.
        """
        if self._start is None:
            return None
        silent = (self._index - 1 - self._last_speech) * CHUNK
        if silent < min_silence_s * SAMPLE_RATE:
            return None
        start = max(0, self._start * CHUNK - self.pad)
        return Phrase(start, (self._last_speech + 1) * CHUNK + self.pad)

    def push(self, probabilities: np.ndarray) -> list[Phrase]:
        """Consume probabilities of consecutive chunks; return the phrases they closed."""
        closed: list[Phrase] = []
        for p in probabilities:
            i = self._index
            self._index += 1
            if self._start is None:
                if p >= self.threshold:
                    self._start, self._last_speech = i, i
                continue
            if p >= self.off_threshold:
                self._last_speech = i
            if i - self._last_speech >= self.min_silence_chunks:
                closed.append(self._close(self._last_speech + 1))
            elif i + 1 - self._start >= self.max_chunks:
                # cut a long phrase; the next chunk above the threshold opens the following one
                closed.append(self._close(i + 1, padded=False))
        return closed

    def flush(self) -> list[Phrase]:
        """End of stream: close the open phrase, if any."""
        return [self._close(self._last_speech + 1)] if self._start is not None else []

    def _close(self, end_chunk: int, padded: bool = True) -> Phrase:
        assert self._start is not None
        start = max(0, self._start * CHUNK - self.pad)
        end = end_chunk * CHUNK + (self.pad if padded else 0)
        self._start = None
        return Phrase(start, min(end, self._index * CHUNK))
