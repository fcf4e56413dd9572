"""Per-word latency of a live stream: when each word was spoken, and when it arrived final.

When a word was spoken comes from Whisper's own word timings of the same audio decoded offline
(faster-whisper, whole file, word timestamps). The streamed words are aligned with those by
their normalized text (difflib); a streamed word that aligns with none (a different guess of the
streaming decode) takes its time from its delta, interpolated by its position among the delta's
words. A word's latency is the arrival of the delta that made it final minus the end of the word.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from models.base import Transcriber
from tests.stream_client import StreamResult
from tests.support import normalise


@dataclass(frozen=True)
class Spoken:
    """A word of the offline transcript and when it ended (seconds from the audio start)."""

    text: str
    end: float


def spoken_words(transcriber: Transcriber, audio: np.ndarray) -> list[Spoken]:
    """The offline transcript of ``audio`` with word end times."""
    found: list[Spoken] = []
    for segment in transcriber.transcribe(audio, "en", words=True):
        for word in segment.words:
            text = normalise(word.text)
            if text:
                found.extend(Spoken(part, word.end) for part in text.split())
    return found


def word_latencies(result: StreamResult, spoken: list[Spoken]) -> tuple[list[float], float]:
    """Latency of every streamed word, and the share of them aligned with an offline word."""
    streamed: list[tuple[str, float, float]] = []  # (word, arrival, interpolated end)
    for frame, arrival in zip(result.frames, result.arrivals, strict=True):
        if frame["type"] != "delta":
            continue
        parts = normalise(frame["text"]).split()
        for k, part in enumerate(parts):
            end = frame["start"] + (k + 1) / len(parts) * (frame["end"] - frame["start"])
            streamed.append((part, arrival, end))
    ends = [s[2] for s in streamed]
    matcher = difflib.SequenceMatcher(a=[s[0] for s in streamed], b=[w.text for w in spoken], autojunk=False)
    aligned = 0
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            ends[block.a + k] = spoken[block.b + k].end
            aligned += 1
    latencies = [arrival - end for (_, arrival, _), end in zip(streamed, ends, strict=True)]
    return latencies, aligned / max(1, len(streamed))
