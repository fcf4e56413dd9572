"""Shared test material: real speech from pyannote.audio's bundled sample, synthesized signals,
and small helpers. Nothing here reads ../shared (a fresh clone does not have it)."""

from __future__ import annotations

import importlib.util
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from models.audio import SAMPLE_RATE, decode, encode

FORMATS = ("wav", "mp3", "flac", "ogg", "m4a")


def sample_dir() -> Path:
    """pyannote.audio's bundled sample folder, found without importing pyannote.audio."""
    spec = importlib.util.find_spec("pyannote.audio")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "sample"


@dataclass(frozen=True)
class Turn:
    """One RTTM speech turn."""

    speaker: str
    start: float
    end: float


@cache
def sample_turns() -> tuple[Turn, ...]:
    """The sample's reference RTTM."""
    turns = []
    for line in (sample_dir() / "sample.rttm").read_text().splitlines():
        parts = line.split()
        start, duration = float(parts[3]), float(parts[4])
        turns.append(Turn(parts[7], start, start + duration))
    return tuple(turns)


@cache
def sample_audio() -> np.ndarray:
    """The whole sample as (n,) float32 at 16 kHz."""
    return decode((sample_dir() / "sample.wav").read_bytes(), 600).samples


def solo_speech(speaker: str) -> np.ndarray:
    """Every stretch where only ``speaker`` talks, concatenated."""
    audio = sample_audio()
    own = np.zeros(len(audio), bool)
    other = np.zeros(len(audio), bool)
    for t in sample_turns():
        span = slice(int(t.start * SAMPLE_RATE), int(t.end * SAMPLE_RATE))
        (own if t.speaker == speaker else other)[span] = True
    return audio[own & ~other]


def sample_speakers() -> list[str]:
    """Speaker labels of the sample's RTTM."""
    return sorted({t.speaker for t in sample_turns()})


def enrollment_audio(speaker: str) -> tuple[np.ndarray, np.ndarray]:
    """(reference, consent) from one sample speaker: the first 70 % and the rest of their speech."""
    speech = solo_speech(speaker)
    cut = int(len(speech) * 0.7)
    pause = np.zeros(SAMPLE_RATE // 2, np.float32)
    return np.concatenate([pause, speech[:cut], pause]), np.concatenate([pause, speech[cut:], pause])


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Real speech of about ``seconds`` from the sample (looped), for size-driven tests."""
    audio = sample_audio()[int(6.5 * SAMPLE_RATE) :]
    reps = int(np.ceil(seconds * SAMPLE_RATE / len(audio)))
    return np.tile(audio, reps)[: int(seconds * SAMPLE_RATE)]


def upsample(samples: np.ndarray, factor: int) -> np.ndarray:
    """Linear interpolation to ``factor`` times the rate (16 kHz -> 48 kHz for "device" audio)."""
    positions = np.arange(len(samples) * factor) / factor
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def noise(seconds: float, level: float = 0.1, seed: int = 0) -> np.ndarray:
    """White noise."""
    return np.random.default_rng(seed).normal(0, level, int(seconds * SAMPLE_RATE)).astype(np.float32)


def wav_bytes(samples: np.ndarray) -> bytes:
    """16 kHz mono WAV in memory."""
    return encode(samples, "wav")


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll ``predicate`` until true or ``timeout_s`` passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


#: What each sample speaker says in the consent part of `enrollment_audio` (the sample's STM words):
#: the consent checks compare the consent recording with the consent text, so tests send these.
CONSENT_SAID = {
    "speaker90": "I'm in New Jersey now though. Oh, I don't hear that in New Jersey now.",
    "speaker91": "At least you know, they all call me a Yankee down here, so what",
}
ENROLL_FIELDS = {
    "display_name": "Alice Example",
    "language_primary": "en",
    "description": "Customer success lead",
    "consent_user_full_name": "Alice Example",
    "consent_stated_purpose": "Meeting transcription diarization for the support team",
    "consent_text": CONSENT_SAID["speaker90"],
}


def enroll_fields(speaker: str, name: str = "Alice Example") -> dict[str, str]:
    """The enrollment form's text fields for a sample speaker enrolled as ``name``."""
    fields = {k: v.replace("Alice Example", name) for k, v in ENROLL_FIELDS.items()}
    return {**fields, "consent_text": CONSENT_SAID[speaker]}


def _solo_labels(deltas: list[dict[str, Any]], turns: tuple[Turn, ...]) -> list[tuple[str, str | None]]:
    """(reference speaker, delta label) of every 10 ms where exactly one reference speaker talks."""
    end = max(t.end for t in turns)
    steps = int(end * 100) + 1
    truth: list[set[str]] = [set() for _ in range(steps)]
    for t in turns:
        for i in range(int(t.start * 100), min(steps, int(t.end * 100))):
            truth[i].add(t.speaker)
    said: list[str | None] = [None] * steps
    for d in deltas:
        for i in range(int(d["start"] * 100), min(steps, int(d["end"] * 100))):
            said[i] = d.get("speaker_label")
    return [(next(iter(s)), said[i]) for i, s in enumerate(truth) if len(s) == 1]


def majority_labels(deltas: list[dict[str, Any]], turns: tuple[Turn, ...]) -> dict[str, str | None]:
    """Each reference speaker -> the label most of their solo speech got."""
    counts: dict[str, dict[str | None, int]] = {}
    for ref, got in _solo_labels(deltas, turns):
        counts.setdefault(ref, {})[got] = counts.setdefault(ref, {}).get(got, 0) + 1
    return {ref: max(labels, key=lambda label: labels[label]) for ref, labels in counts.items()}


def label_agreement(
    deltas: list[dict[str, Any]], turns: tuple[Turn, ...], names: dict[str, str]
) -> tuple[float, float]:
    """Against a reference: (share of solo speech time whose delta names the right speaker,
    share of it given a different enrolled name). ``names`` maps reference labels to display names;
    times where two reference speakers overlap are not scored. Computed on a 10 ms grid."""
    enrolled = set(names.values())
    solo = _solo_labels(deltas, turns)
    right = sum(1 for ref, got in solo if got == names.get(ref))
    wrong = sum(1 for ref, got in solo if got in enrolled and got != names.get(ref))
    return right / len(solo), wrong / len(solo)


def normalise(text: str) -> str:
    """Lower case, no punctuation, single spaces: the form WER is computed on."""
    import jiwer

    return " ".join(str(jiwer.RemovePunctuation()(text.lower())).split())


def reference_text() -> str:
    """The sample's reference transcript (its STM file)."""
    lines = (sample_dir() / "sample.stm").read_text().splitlines()
    return " ".join(" ".join(line.split()[5:]) for line in lines)
