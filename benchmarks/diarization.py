"""Speaker labels on meetings: held-out speakers, meeting-like rooms, and the pyannote sample (DER).

Runs the session's own labelling code (edge_server/streaming/labelling.py and diarization.py)
on audio replayed the way a stream is decoded, without Whisper: Silero VAD cuts phrases as the
session does; each phrase is committed in steps of ``--step`` seconds, each step's decode buffer
holding 1 s of already-final audio before and 1 s of still-open audio after the words it makes
final; the buffer is embedded with the node's model (``--embedding``, CAM++ by default; windows
on the phrase's grid, as the session asks for them) and scored against the enrolled profiles.
Words are 0.3 s tiles of the phrase's speech (Whisper's words are about that long), so every
stretch of speech gets the label a word spoken there would get.

Scoring (10 ms grid, reference turns of the meeting):

- enrolled solo speech: right name / another enrolled name / `spk_N` / no label;
- unknown solo speech given an enrolled name;
- `spk_N` purity: share of spk_N-labelled solo speech that belongs to its cluster's main talker;
- DER and identification error rate (pyannote.metrics, collar 0.25 s, overlap scored).

    python -m benchmarks.diarization [--half held-out] [--condition read room] [--meetings 6] [--nobody]
    python -m benchmarks.diarization --sample        # the pyannote sample: 0, 1, 2 enrolled
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from appliance.settings import DiarizationSettings, Settings
from benchmarks.meetings import Box, Meeting, build, calls
from edge_server.streaming.diarization import Label, SessionSpeakers, Voice, Window
from edge_server.streaming.evidence import Turn
from edge_server.streaming.labelling import label_words
from models.audio import SAMPLE_RATE
from models.base import Embedder, Word
from models.registry import load_embedder, load_segmenter
from models.segmentation import SpeakerSegmenter, hear_speakers
from models.settings import ModelSettings
from models.vad import CHUNK, PhraseSegmenter, StreamingVad

TILE_S = 0.3
CONTEXT_S = 1.0
OPEN_S = 1.0
GRID = 0.01
MAX_GAP_S = 0.6


def phrases(audio: np.ndarray, settings: Settings) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The session's phrases (sample ranges) and the VAD's per-chunk speech probabilities."""
    vad = StreamingVad()
    probabilities = vad.feed(audio)
    segmenter = PhraseSegmenter(
        threshold=settings.stream.vad_threshold,
        min_silence_s=settings.stream.min_silence_s,
        max_phrase_s=settings.stream.max_phrase_s,
    )
    closed = segmenter.push(probabilities) + segmenter.flush()
    return [(p.start, p.end) for p in closed], probabilities


def tiles(start: int, end: int, probabilities: np.ndarray, threshold: float) -> list[Word]:
    """0.3 s pseudo-words over the phrase's speech chunks (stream seconds)."""
    words = []
    at = start / SAMPLE_RATE
    while at + TILE_S / 2 < end / SAMPLE_RATE:
        middle = int((at + TILE_S / 2) * SAMPLE_RATE) // CHUNK
        if middle < len(probabilities) and probabilities[middle] >= threshold - 0.15:
            words.append(Word(at, min(at + TILE_S, end / SAMPLE_RATE), " w"))
        at += TILE_S
    return words


@dataclass
class Replay:
    """One session over one recording: the labelled words it produced."""

    labelled: list[tuple[Word, Label | None]] = field(default_factory=list)


def replay(
    audio: np.ndarray,
    embedder: Embedder,
    profiles: dict[str, np.ndarray],
    settings: Settings,
    step_s: float,
    segmenter: SpeakerSegmenter | None = None,
) -> Replay:
    """Label ``audio`` as a stream would be labelled (turns cut by ``segmenter`` as a node does, if given)."""
    live = {name: name for name in profiles}
    names = list(profiles)
    matrix = np.stack([profiles[n] for n in names]) if names else np.zeros((0, 1))
    speakers = SessionSpeakers(settings.diarization)
    out = Replay()
    spans, probabilities = phrases(audio, settings)
    for start, end in spans:
        words = tiles(start, end, probabilities, settings.stream.vad_threshold)
        at = start / SAMPLE_RATE
        stop = end / SAMPLE_RATE
        while words and at < stop:
            upto = min(stop, at + step_s) if at + step_s < stop - 0.5 else stop
            final = [w for w in words if at <= (w.start + w.end) / 2 < upto]
            # the session's rule: the voice is embedded from the phrase's window grid
            grid = settings.models.embedding_step_s
            behind = max(0.0, at - CONTEXT_S - start / SAMPLE_RATE)
            buffer_start = start / SAMPLE_RATE + math.ceil(behind / grid - 1e-9) * grid
            buffer_end = min(stop, upto + OPEN_S)
            samples = audio[int(buffer_start * SAMPLE_RATE) : int(buffer_end * SAMPLE_RATE)]
            if final:
                windows, turns = _heard(embedder, segmenter, samples, matrix, names)
                shifted = [Word(w.start - buffer_start, w.end - buffer_start, w.text) for w in final]
                if windows:
                    labels, _ = label_words(
                        speakers, shifted, [], windows, len(samples) / SAMPLE_RATE, live, settings.diarization, turns
                    )
                else:
                    labels = [None] * len(final)
                out.labelled.extend(zip(final, labels, strict=True))
            at = upto
    speakers.forget()
    return out


def _heard(
    embedder: Embedder, segmenter: SpeakerSegmenter | None, samples: np.ndarray, matrix: np.ndarray, names: list[str]
) -> tuple[list[Window], list[Turn] | None]:
    """What a node answers a stream for ``samples``: scored windows and, with a segmenter, turns."""
    if len(samples) < SAMPLE_RATE // 2:
        return [], None

    def voice(vector: np.ndarray) -> Voice:
        scores = matrix @ vector if names else np.zeros(0)
        return Voice(vector.astype(np.float32), {n: float(scores[j]) for j, n in enumerate(names)})

    starts, data = embedder.embed_windows(samples)
    data = data / np.linalg.norm(data, axis=1, keepdims=True)
    windows = []
    for i, start in enumerate(starts):
        scored = voice(data[i])
        windows.append(Window(float(start), float(start) + embedder.window_s, scored.embedding, scored.scores))
    if segmenter is None:
        return windows, None
    cuts, voices = hear_speakers(segmenter, embedder, samples, (starts, data))
    local = {k: (voice(vector), seconds) for k, (vector, seconds) in voices.items()}
    return windows, [Turn(c.start, c.end, *local[c.speaker]) for c in cuts] or None


@dataclass
class Tally:
    """Seconds of solo speech by outcome, summed over meetings; DER components."""

    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    spk_main: float = 0.0
    spk_total: float = 0.0
    der: list[float] = field(default_factory=list)
    ier: list[float] = field(default_factory=list)

    def share(self, key: str, of: Sequence[str]) -> float:
        total = sum(self.seconds[k] for k in of)
        return self.seconds[key] / total if total else float("nan")


def tiled(labelled: list[tuple[Word, Label | None]]) -> list[tuple[Word, Label | None]]:
    """Words stretched to the next word's start across a gap under ``MAX_GAP_S``, as deltas tile the
    stream (a delta spans from its first word to where the next delta starts)."""
    out = []
    for k, (word, label) in enumerate(labelled):
        following = labelled[k + 1][0].start if k + 1 < len(labelled) else word.end
        end = following if 0 <= following - word.end < MAX_GAP_S else word.end
        out.append((Word(word.start, end, word.text), label))
    return out


def score(
    turns: list[tuple[float, float, str]], result: Replay, enrolled: set[str], duration: float, tally: Tally
) -> None:
    """Add one meeting's outcomes to ``tally``."""
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate
    from pyannote.metrics.identification import IdentificationErrorRate

    n = int(duration / GRID) + 1
    talkers: list[set[str]] = [set() for _ in range(n)]
    for start, end, who in turns:
        for i in range(int(start / GRID), min(n, int(end / GRID))):
            talkers[i].add(who)
    hyp: list[str | None] = [None] * n
    for word, label in tiled(result.labelled):
        for i in range(int(word.start / GRID), min(n, int(word.end / GRID))):
            hyp[i] = label.label if label else None
    clusters: dict[str, defaultdict[str, float]] = {}
    for present, got in zip(talkers, hyp, strict=True):
        if len(present) != 1:
            continue
        (person,) = present
        if person in enrolled:
            outcome = (
                "right" if got == person else "none" if got is None else "spk" if got.startswith("spk_") else "wrong"
            )
            tally.seconds[f"enrolled_{outcome}"] += GRID
        else:
            outcome = "none" if got is None else "spk" if got.startswith("spk_") else "named"
            tally.seconds[f"unknown_{outcome}"] += GRID
        if got is not None and got.startswith("spk_"):
            clusters.setdefault(got, defaultdict(float))[person] += GRID
    for counts in clusters.values():
        tally.spk_main += max(counts.values())
        tally.spk_total += sum(counts.values())
    reference, hypothesis = Annotation(), Annotation()
    for start, end, who in turns:
        reference[Segment(start, end), len(reference)] = who
    for word, label in tiled(result.labelled):
        if label is not None:
            hypothesis[Segment(word.start, word.end), len(hypothesis)] = label.label
    hypothesis = hypothesis.support(collar=0.05)
    tally.der.append(float(DiarizationErrorRate(collar=0.25, skip_overlap=False)(reference, hypothesis)))
    # identification: unknown people and spk_N labels count as one "unknown" identity
    known = Annotation()
    for segment, track, who in reference.itertracks(yield_label=True):
        known[segment, track] = who if who in enrolled else "unknown"
    said = hypothesis.rename_labels({lab: "unknown" for lab in hypothesis.labels() if lab.startswith("spk_")})
    tally.ier.append(float(IdentificationErrorRate(collar=0.25, skip_overlap=False)(known, said)))


def print_table(title: str, tallies: dict[str, Tally]) -> None:
    """One row per set."""
    print(f"\n{title}\n")
    print(
        "| set | enrolled right | another name | spk_N | none | unknown named | spk_N purity | DER | IER |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    enrolled = ("enrolled_right", "enrolled_wrong", "enrolled_spk", "enrolled_none")
    unknown = ("unknown_named", "unknown_spk", "unknown_none")
    for name, t in tallies.items():
        purity = t.spk_main / t.spk_total if t.spk_total else float("nan")
        print(
            f"| {name} | {t.share('enrolled_right', enrolled):.1%} | {t.share('enrolled_wrong', enrolled):.1%} "
            f"| {t.share('enrolled_spk', enrolled):.1%} | {t.share('enrolled_none', enrolled):.1%} "
            f"| {t.share('unknown_named', unknown):.1%} | {purity:.1%} "
            f"| {np.mean(t.der):.1%} | {np.mean(t.ier):.1%} |"
        )


def profile_audio(reference: np.ndarray, spec: str) -> np.ndarray:
    """What a profile is embedded from: ``all`` of the reference material, its first N s (``8``: one
    short excerpt), or its first N s plus its last N s (``8+8``: that excerpt and a recording added
    later, from another utterance). References shorter than asked are used whole."""
    if spec == "all":
        return reference
    parts = [int(float(p) * SAMPLE_RATE) for p in spec.split("+")]
    if sum(parts) >= len(reference):
        return reference
    return np.concatenate([reference[: parts[0]], *(reference[-n:] for n in parts[1:])])


def run_meetings(
    args: argparse.Namespace, settings: Settings, embedder: Embedder, segmenter: SpeakerSegmenter | None
) -> dict[str, Tally]:
    tallies: dict[str, Tally] = {}
    for condition in args.condition:
        if condition == "call":  # two people on a phone line, nobody enrolled
            box = Box({}, calls(args.half, args.meetings))
        else:
            box = build(args.half, condition, args.meetings)
        references = {} if args.nobody else box.references
        profiles = {name: embedder.embed(profile_audio(audio, args.references)) for name, audio in references.items()}
        tally = Tally()
        for meeting in box.meetings:
            result = replay(meeting.audio, embedder, profiles, settings, args.step, segmenter)
            score(meeting.turns, result, set(profiles), len(meeting.audio) / SAMPLE_RATE, tally)
        minutes = sum(len(m.audio) for m in box.meetings) / SAMPLE_RATE / 60
        nobody = ", nobody enrolled" if args.nobody and condition != "call" else ""
        tallies[f"{args.half} {condition}{nobody} ({len(box.meetings)} meetings, {minutes:.1f} min)"] = tally
    return tallies


def sample_meeting() -> tuple[Meeting, dict[str, np.ndarray]]:
    """The pyannote sample and, per caller, the reference the e2e tests enroll them with."""
    from tests.support import enrollment_audio, sample_audio, sample_speakers, sample_turns

    turns = [(t.start, t.end, t.speaker) for t in sample_turns()]
    references = {who: enrollment_audio(who)[0] for who in sample_speakers()}
    return Meeting("sample", sample_audio(), turns), references


def run_sample(
    args: argparse.Namespace, settings: Settings, embedder: Embedder, segmenter: SpeakerSegmenter | None
) -> dict[str, Tally]:
    meeting, references = sample_meeting()
    first, second = sorted(references)
    tallies: dict[str, Tally] = {}
    for title, enrolled in (
        ("nobody enrolled", []),
        (f"{first} enrolled", [first]),
        ("both enrolled", [first, second]),
    ):
        profiles = {who: embedder.embed(references[who]) for who in enrolled}
        tally = Tally()
        for _ in range(args.repeats):
            result = replay(meeting.audio, embedder, profiles, settings, args.step, segmenter)
            score(meeting.turns, result, set(profiles), len(meeting.audio) / SAMPLE_RATE, tally)
        tallies[f"sample, {title}"] = tally
    return tallies


def settings_with(overrides: Sequence[str]) -> Settings:
    """Defaults with ``diarization.key=value`` overrides (for tuning runs)."""
    values: dict[str, Any] = {}
    for item in overrides:
        key, value = item.split("=", 1)
        values[key] = float(value) if "." in value else int(value)
    return Settings(diarization=DiarizationSettings(**values))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--half", default="held-out", choices=["tuning", "held-out"])
    parser.add_argument("--condition", nargs="+", default=["read", "room"], choices=["read", "room", "call"])
    parser.add_argument("--meetings", type=int, default=6)
    parser.add_argument("--step", type=float, default=1.0, help="seconds made final per decode")
    parser.add_argument("--sample", action="store_true", help="the pyannote sample instead of meetings")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--nobody", action="store_true", help="meetings with nobody enrolled (DER of spk_N labels)")
    parser.add_argument("--embedding-step", type=float, default=ModelSettings().embedding_step_s)
    parser.add_argument("--embedding", default=ModelSettings().embedding, help="ge2e, campplus or a checkpoint")
    parser.add_argument(
        "--segmentation",
        default="on" if ModelSettings().segmentation else "off",
        choices=["on", "off"],
        help="turns cut by the nodes' segmentation model (on) or from the sliding windows (off)",
    )
    parser.add_argument("--set", nargs="*", default=[], help="diarization setting overrides, key=value")
    parser.add_argument(
        "--references", default="all", help="profile material: all, 8 (first 8 s), 8+8 (and the last 8 s)"
    )
    args = parser.parse_args()
    models = ModelSettings(
        embedding=args.embedding, embedding_step_s=args.embedding_step, segmentation=args.segmentation == "on"
    )
    settings = settings_with(args.set).model_copy(update={"models": models})
    embedder = load_embedder(models)
    segmenter = load_segmenter(models)
    began = time.monotonic()
    if args.sample:
        print_table("pyannote sample call, collar 0.25 s", run_sample(args, settings, embedder, segmenter))
    else:
        print_table(f"{args.half} speakers", run_meetings(args, settings, embedder, segmenter))
    print(
        f"\n({time.monotonic() - began:.0f} s; segmentation {args.segmentation}; "
        f"settings: {' '.join(args.set) or 'defaults'})"
    )


if __name__ == "__main__":
    main()
