"""Meetings built from ../shared/data for the speaker-label benchmark, split into tuning and held-out speakers.

Speakers: the 5 LibriSpeech test-other speakers (10 utterances each) and the 60 train-clean-100
speakers (one 2-17 s utterance each). Each is put in one half, by a fixed rule, so thresholds
are chosen on one half and reported on the other:

- test-other 1688, 1998 -> tuning; 2033, 2414, 2609 -> held-out;
- train-clean-100 speakers in sorted order, alternately tuning / held-out.

Roles inside a half: every test-other speaker is *enrolled* (reference: first utterances up to
20 s of speech; meeting speech: the rest). A train-clean-100 speaker with at least 12 s of speech
is enrolled in one of every three cases (reference: the first 8 s, meeting speech: the rest,
as a person enrolled from one short excerpt); all others are *unknown* (all their speech goes
to meetings and they are never enrolled). The box holds every enrolled speaker of the half;
each meeting has some of them plus unknown people.

Two conditions:

- ``read``: turns of 2-8 s, 0.3-1.0 s pauses, clean audio (the shape of the old benchmark);
- ``room``: meeting-like: turns of 0.5-3 s, about 15 % of speech overlapped by the next talker,
  in the appliance's meeting room (pyroomacoustics shoebox, RT60 0.3-0.6 s, one microphone;
  each talker at another seat in every meeting) with white noise at 10-20 dB SNR. References
  are recorded in the same room, from another seat, at 25 dB SNR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.audio import SAMPLE_RATE, decode
from models.vad import speech_only, speech_regions

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "librispeech"
TUNING_TEST_OTHER = ("1688", "1998")
REFERENCE_S = 20.0
SHORT_REFERENCE_S = 8.0


@dataclass
class Speaker:
    """One person: their reference (enrolled only) and the speech they say in meetings."""

    name: str
    speech: list[np.ndarray]
    reference: np.ndarray | None = None

    @property
    def enrolled(self) -> bool:
        return self.reference is not None


@dataclass
class Meeting:
    """A mixed recording and who spoke when (turns may overlap)."""

    name: str
    audio: np.ndarray
    turns: list[tuple[float, float, str]] = field(default_factory=list)
    #: Each turn's clean speech, as said before the room and the other talkers (same order as turns).
    speech: list[np.ndarray] = field(default_factory=list)


def _speech(path: Path) -> np.ndarray:
    audio = decode(path.read_bytes(), 600).samples
    return speech_only(audio, speech_regions(audio))


def speakers(half: str) -> list[Speaker]:
    """Everyone of ``half`` ("tuning" or "held-out") with their role."""
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is missing: this benchmark needs ../shared/data")
    tuning = half == "tuning"
    people: list[Speaker] = []
    for folder in sorted((DATA / "test-other").iterdir()):
        if (folder.name in TUNING_TEST_OTHER) != tuning:
            continue
        reference: list[np.ndarray] = []
        rest: list[np.ndarray] = []
        for path in sorted(folder.glob("*.flac")):
            speech = _speech(path)
            (reference if sum(map(len, reference)) < REFERENCE_S * SAMPLE_RATE else rest).append(speech)
        people.append(Speaker(folder.name, rest, np.concatenate(reference)))
    paths = sorted((DATA / "train-clean-100").glob("*.flac"))
    long_enough = 0
    for index, path in enumerate(paths):
        if (index % 2 == 0) != tuning:
            continue
        speech = _speech(path)
        name = path.name.split("-")[0]
        cut = int(SHORT_REFERENCE_S * SAMPLE_RATE)
        if len(speech) >= 12 * SAMPLE_RATE and long_enough % 3 == 0:
            people.append(Speaker(name, [speech[cut:]], speech[:cut]))
        else:
            people.append(Speaker(name, [speech]))
        long_enough += len(speech) >= 12 * SAMPLE_RATE
    return people


def _pieces(speech: list[np.ndarray], low: float, high: float, rng: np.random.Generator) -> list[np.ndarray]:
    """A speaker's speech cut into turns of ``low``-``high`` seconds (a short tail joins the last)."""
    out: list[np.ndarray] = []
    for audio in speech:
        at = 0
        while at < len(audio):
            size = int(rng.uniform(low, high) * SAMPLE_RATE)
            if len(audio) - (at + size) < low * SAMPLE_RATE:
                size = len(audio) - at
            out.append(audio[at : at + size])
            at += size
    return out


def _order(turns: dict[str, list[np.ndarray]], rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """Interleave the speakers' turns at random, never the same speaker twice in a row when avoidable."""
    queue = {name: list(items) for name, items in turns.items()}
    out: list[tuple[str, np.ndarray]] = []
    last = None
    while any(queue.values()):
        names = [n for n, items in queue.items() if items and n != last] or [n for n, items in queue.items() if items]
        weights = np.array([len(queue[n]) for n in names], dtype=float)
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        out.append((name, queue[name].pop(0)))
        last = name
    return out


class Room:
    """A shoebox room with one microphone; each talker gets their own spot (impulse response)."""

    def __init__(self, rng: np.random.Generator) -> None:
        import pyroomacoustics as pra

        self.size = np.array([rng.uniform(5, 8), rng.uniform(4, 6), 3.0])
        rt60 = rng.uniform(0.3, 0.6)
        absorption, max_order = pra.inverse_sabine(rt60, self.size)
        self._pra = pra
        self._materials = pra.Material(absorption)
        self._max_order = min(max_order, 12)
        self.mic = np.array([self.size[0] / 2, self.size[1] / 2, 0.8])
        self._rng = rng
        self._rirs: dict[str, np.ndarray] = {}
        self.rt60 = rt60

    def rir(self, seat: str) -> np.ndarray:
        """The impulse response from ``seat`` (any name: one place in the room) to the microphone."""
        if seat not in self._rirs:
            room = self._pra.ShoeBox(self.size, fs=SAMPLE_RATE, materials=self._materials, max_order=self._max_order)
            angle = self._rng.uniform(0, 2 * np.pi)
            distance = self._rng.uniform(0.8, 2.0)
            spot = self.mic + np.array([np.cos(angle) * distance, np.sin(angle) * distance, 0.4])
            spot[:2] = np.clip(spot[:2], 0.3, self.size[:2] - 0.3)
            room.add_source(spot)
            room.add_microphone(self.mic)
            room.compute_rir()
            self._rirs[seat] = np.asarray(room.rir[0][0], dtype=np.float32)
        return self._rirs[seat]

    def record(self, seat: str, audio: np.ndarray) -> np.ndarray:
        """``audio`` spoken from ``seat`` as the microphone hears it (no noise)."""
        wet = np.convolve(audio, self.rir(seat))[: len(audio)]
        return (wet / (np.max(np.abs(wet)) or 1.0) * np.max(np.abs(audio))).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at ``snr_db`` below the level of the loud (speech) part of ``audio``."""
    loud = audio[np.abs(audio) > 0.01]
    power = float(np.mean(loud**2)) if len(loud) else 1e-4
    noise = rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(audio))
    return (audio + noise).astype(np.float32)


def meeting(name: str, present: list[Speaker], condition: str, rng: np.random.Generator, room: Room | None) -> Meeting:
    """Mix ``present`` into one recording under ``condition`` ("read", "room" or "call")."""
    low, high = {"read": (2.0, 8.0), "room": (0.5, 3.0), "call": (1.5, 6.0)}[condition]
    turns = _order({p.name: _pieces(p.speech, low, high, rng) for p in present}, rng)
    placed: list[tuple[int, str, np.ndarray]] = []
    at = int(0.5 * SAMPLE_RATE)
    for speaker, audio in turns:
        placed.append((at, speaker, audio))
        if condition != "read" and rng.random() < 0.3:
            overlap = min(rng.uniform(0.3, 1.0), 0.5 * len(audio) / SAMPLE_RATE)
            at += len(audio) - int(overlap * SAMPLE_RATE)
        else:
            gap = rng.uniform(0.3, 1.0) if condition == "read" else rng.uniform(0.1, 0.6)
            at += len(audio) + int(gap * SAMPLE_RATE)
    total = max(start + len(audio) for start, _, audio in placed) + int(0.5 * SAMPLE_RATE)
    mix = np.zeros(total, dtype=np.float32)
    result = Meeting(name, mix)
    for start, speaker, audio in placed:
        heard = room.record(f"{speaker}@{name}", audio) if room is not None else audio
        mix[start : start + len(audio)] += heard
        result.turns.append((start / SAMPLE_RATE, (start + len(audio)) / SAMPLE_RATE, speaker))
        result.speech.append(audio)
    if room is not None:
        result.audio = add_noise(mix, rng.uniform(10, 20), rng)
    if condition == "call":
        result.audio = add_noise(telephone(mix), rng.uniform(25, 35), rng)
    return result


def telephone(audio: np.ndarray) -> np.ndarray:
    """``audio`` as a phone line carries it: 8 kHz, 300-3400 Hz, back at 16 kHz."""
    from scipy.signal import butter, resample_poly, sosfilt

    narrow = resample_poly(audio, 1, 2)
    band = sosfilt(butter(4, [300, 3400], btype="bandpass", fs=8000, output="sos"), narrow)
    return np.asarray(resample_poly(band, 2, 1), dtype=np.float32)[: len(audio)]


def calls(half: str, count: int, seed: int = 17) -> list[Meeting]:
    """``count`` phone calls between two people of ``half``: 1.5-6 s turns, 30 % of them overlapped
    by the next talker for 0.3-1 s, a phone line's band and 25-35 dB of noise."""
    rng = np.random.default_rng(seed + (0 if half == "tuning" else 1000))
    people = [p for p in speakers(half) if sum(map(len, p.speech)) >= 12 * SAMPLE_RATE]
    out = []
    for k in range(count):
        a, b = people[(2 * k) % len(people)], people[(2 * k + 1) % len(people)]
        out.append(meeting(f"{half}-call-{k}", [a, b], "call", rng, None))
    return out


@dataclass
class Box:
    """What a meeting set runs against: the enrolled references (as heard) and the meetings."""

    references: dict[str, np.ndarray]
    meetings: list[Meeting]


def build(half: str, condition: str, count: int, seed: int = 11) -> Box:
    """``count`` meetings of ``half`` under ``condition``; each has 2-3 enrolled and 3-4 unknown people."""
    rng = np.random.default_rng(seed + (0 if half == "tuning" else 1000) + (0 if condition == "read" else 500))
    people = speakers(half)
    enrolled = [p for p in people if p.enrolled]
    unknown = [p for p in people if not p.enrolled]
    rng.shuffle(unknown)
    per_meeting = max(3, len(unknown) // count)
    # the appliance's meeting room: references are recorded there too, each from its own seat
    room = Room(rng) if condition == "room" else None
    references: dict[str, np.ndarray] = {}
    for p in enrolled:
        assert p.reference is not None
        heard = room.record(f"{p.name}@enrollment", p.reference) if room is not None else p.reference
        references[p.name] = add_noise(heard, 25.0, rng) if room is not None else heard
    meetings = []
    for k in range(count):
        guests = [enrolled[(k + j) % len(enrolled)] for j in range(2 + k % 2)]
        others = unknown[k * per_meeting : (k + 1) * per_meeting] or unknown[:per_meeting]
        # each enrolled person brings part of their speech to each meeting they are in
        present = [Speaker(g.name, [s for i, s in enumerate(g.speech) if i % 2 == k % 2] or g.speech) for g in guests]
        meetings.append(meeting(f"{half}-{condition}-{k}", present + others, condition, rng, room))
    return Box(references, meetings)
