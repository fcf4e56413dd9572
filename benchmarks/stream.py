"""Live diarized transcription against a real `scaiecho-appliance up`: latency, labels, WER, load.

- **Labelling**: meetings built from ../shared/data/librispeech: 5 test-other speakers enrolled
  through the API from their first utterances (reference >= ``--reference-s`` of speech, the
  next utterance as consent); their other utterances and the 60 train-clean-100 speakers (never
  enrolled) are shuffled into meetings with 0.4-1.2 s pauses. Each meeting is streamed with
  `diarize: true`; scored on the utterances' speech regions (Silero VAD), 10 ms grid.
- **Per-word latency** (what a person watching the caption waits): pyannote.audio's sample call
  streamed in real time (40 ms frames, diarize on); for each word, the arrival of the delta that
  made it final minus the end of the word in Whisper's own offline word timings
  (benchmarks/word_timing.py). Also the older per-phrase figure: arrival of a phrase's last delta
  minus the end of its speech in the reference (unpadded VAD), on a meeting.
- **WER**: the sample streamed in real time vs the same file decoded offline by faster-whisper,
  both against the sample's STM transcript.
- **Concurrency**: N real-time diarized streams at once (pieces of the meetings): per-word and
  per-phrase p50/p95, words later than the bound (the `done` frames' `late_words`), and CPU
  seconds of the appliance's processes (edge, nodes, Redis) per second of audio.

    python -m benchmarks.stream [--meetings 4] [--streams 2 4 5 6] [--load-s 60] [--max-delay-s 2]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import psutil

from appliance.crypto import read_or_create_token
from benchmarks import stream_wer
from benchmarks.word_timing import Spoken, spoken_words, word_latencies
from models.audio import SAMPLE_RATE, decode
from models.registry import load_transcriber
from models.settings import ModelSettings
from models.vad import speech_regions
from tests.api_client import enroll, set_policy
from tests.appliance_process import Appliance
from tests.stream_client import StreamResult, stream
from tests.support import reference_text, sample_audio

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "librispeech"
#: Audio per WebSocket frame when streaming in real time (a live microphone client sends 20-100 ms).
FRAME_S = 0.04


@dataclass(frozen=True)
class Utterance:
    """One LibriSpeech file: who (display name, or None for an unknown voice) and its audio."""

    speaker: str
    name: str | None
    audio: np.ndarray


@dataclass
class Meeting:
    """Concatenated utterances and, per 10 ms step, who speaks (speaker id) or None."""

    audio: np.ndarray
    truth: list[str | None]
    names: dict[str, str | None]


def load(path: Path) -> np.ndarray:
    """A FLAC file at 16 kHz."""
    return decode(path.read_bytes(), 600).samples


def speakers() -> tuple[dict[str, list[np.ndarray]], list[Utterance]]:
    """(every utterance of each speaker to enroll, one utterance of each unknown speaker)."""
    enrolled: dict[str, list[np.ndarray]] = {}
    for folder in sorted((DATA / "test-other").iterdir()):
        enrolled[folder.name] = [load(p) for p in sorted(folder.glob("*.flac"))]
    unknown = [
        Utterance(p.name.split("-")[0], None, load(p)) for p in sorted((DATA / "train-clean-100").glob("*.flac"))
    ]
    return enrolled, unknown


def split_enrolment(audio: list[np.ndarray], reference_s: float) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(reference, consent, held-out utterances) of one speaker."""
    used, total = 0, 0.0
    while total < reference_s and used < len(audio) - 2:
        total += len(audio[used]) / SAMPLE_RATE
        used += 1
    return np.concatenate(audio[:used]), audio[used], audio[used + 1 :]


def build_meetings(utterances: list[Utterance], count: int, seed: int = 7) -> list[Meeting]:
    """Shuffle utterances into ``count`` meetings with pauses of 0.4-1.2 s."""
    rng = random.Random(seed)
    order = utterances[:]
    rng.shuffle(order)
    meetings = []
    for m in range(count):
        part = order[m::count]
        pieces: list[np.ndarray] = [np.zeros(SAMPLE_RATE, np.float32)]
        spans: list[tuple[str, int, int]] = []
        position = SAMPLE_RATE
        for utterance in part:
            for start, end in speech_regions(utterance.audio, pad_ms=0):
                spans.append((utterance.speaker, position + start, position + end))
            pieces.append(utterance.audio)
            position += len(utterance.audio)
            pause = np.zeros(int(rng.uniform(0.4, 1.2) * SAMPLE_RATE), np.float32)
            pieces.append(pause)
            position += len(pause)
        audio = np.concatenate(pieces)
        truth: list[str | None] = [None] * (len(audio) // 160 + 1)
        for speaker, start, end in spans:
            for i in range(start // 160, end // 160):
                truth[i] = speaker
        meetings.append(Meeting(audio, truth, {u.speaker: u.name for u in part}))
    return meetings


def score(meeting: Meeting, deltas: list[dict[str, Any]], enrolled_names: set[str]) -> dict[str, float]:
    """Seconds of enrolled speech named right, of unknown speech given an enrolled name, and totals."""
    said: list[str | None] = [None] * len(meeting.truth)
    for d in deltas:
        for i in range(int(d["start"] * 100), min(len(said), int(d["end"] * 100))):
            said[i] = d.get("speaker_label")
    out = {"enrolled": 0.0, "enrolled_right": 0.0, "enrolled_wrong": 0.0, "enrolled_spk": 0.0, "enrolled_none": 0.0,
           "unknown": 0.0, "unknown_named": 0.0, "unknown_spk": 0.0}  # fmt: skip
    for speaker, got in zip(meeting.truth, said, strict=True):
        if speaker is None:
            continue
        name = meeting.names[speaker]
        if name is not None:
            out["enrolled"] += 0.01
            out["enrolled_right"] += 0.01 * (got == name)
            out["enrolled_wrong"] += 0.01 * (got in enrolled_names and got != name)
            out["enrolled_spk"] += 0.01 * bool(got and got.startswith("spk_"))
            out["enrolled_none"] += 0.01 * (got is None)
        else:
            out["unknown"] += 0.01
            out["unknown_named"] += 0.01 * (got in enrolled_names)
            out["unknown_spk"] += 0.01 * bool(got and got.startswith("spk_"))
    return out


def speech_end(truth: list[str | None], start: float, end: float) -> float:
    """The end of the last reference speech (unpadded VAD) between ``start`` and ``end``, else ``end``."""
    for i in range(min(len(truth), int(end * 100)) - 1, int(start * 100) - 1, -1):
        if truth[i] is not None:
            return (i + 1) / 100
    return end


def phrase_latencies(result: StreamResult, truth: list[str | None]) -> list[float]:
    """Per phrase (the deltas that arrive together): arrival minus the end of its speech.

    The end of speech is taken from the reference (where the phrase's last delta has speech),
    not from the delta's own `end`, which includes the VAD's padding.
    """
    groups: list[tuple[float, dict[str, Any]]] = []  # (arrival, last delta)
    for frame, arrival in zip(result.frames, result.arrivals, strict=True):
        if frame["type"] != "delta":
            continue
        if groups and arrival - groups[-1][0] < 0.005:
            groups[-1] = (arrival, frame)
        else:
            groups.append((arrival, frame))
    return [arrival - speech_end(truth, d["start"], d["end"]) for arrival, d in groups]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(np.ceil(q / 100 * len(ordered))) - 1))]


async def enroll_all(app: Appliance, material: dict[str, list[np.ndarray]], reference_s: float) -> list[Utterance]:
    """Enroll every test-other speaker; returns their held-out utterances."""
    held_out = []
    async with aiohttp.ClientSession() as http:
        # ../shared/data has no transcripts, so no consent text can match what a reader's consent
        # utterance says: this benchmark's tenant records the checks without enforcing them
        await set_policy(http, app.url, app.key, consent_checks="warn")
        for speaker, audio in material.items():
            reference, consent, rest = split_enrolment(audio, reference_s)
            created = await enroll(http, app.url, app.key, f"Reader {speaker}", reference, consent)
            if created["enrollment_status"] != "ready":
                raise RuntimeError(f"{speaker} is {created['enrollment_status']}")
            held_out += [Utterance(speaker, f"Reader {speaker}", a) for a in rest]
    return held_out


async def labelling(app: Appliance, meetings: list[Meeting], names: set[str]) -> dict[str, float]:
    """Stream every meeting (as fast as the box goes) and add up the scores."""
    total: dict[str, float] = {}
    for meeting in meetings:
        result = await stream(app.url, app.key, meeting.audio, diarize=True)
        for key, value in score(meeting, result.deltas, names).items():
            total[key] = total.get(key, 0.0) + value
    return total


@dataclass
class Load:
    """What N concurrent real-time streams measured."""

    streams: int
    words: list[float]
    phrases: list[float]
    late_words: int
    audio_s: float
    cpu_s: float
    #: the part of ``cpu_s`` the pyannote nodes used (speaker embeddings)
    node_cpu_s: float
    #: Whisper decodes meanwhile: "kind outcome" -> (decodes, seconds), from the edge's /metrics
    decodes: dict[str, tuple[float, float]]


async def decode_counts(app: Appliance) -> dict[str, tuple[float, float]]:
    """The edge's Whisper decode counters ("kind outcome" -> (decodes, seconds)) from GET /metrics."""
    token = read_or_create_token(app.data_dir / "metrics-token")
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http, http.get(f"{app.url}/metrics", headers=headers) as resp:
        text = await resp.text()
    found: dict[str, list[float]] = {}
    for line in text.splitlines():
        match = re.match(r'scaiecho_asr_decode(s|_seconds)\{kind="(\w+)",outcome="(\w+)"\} (\S+)', line)
        if match:
            entry = found.setdefault(f"{match[2]} {match[3]}", [0.0, 0.0])
            entry[0 if match[1] == "s" else 1] = float(match[4])
    return {k: (v[0], v[1]) for k, v in found.items()}


def cpu_seconds(app: Appliance) -> tuple[float, float]:
    """User + system CPU of the appliance and its children (edge server, nodes, Redis), and of the nodes alone."""
    root = psutil.Process(app.proc.pid)
    total = nodes = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            is_node = "--node-id" in process.cmdline()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
        nodes += (times.user + times.system) if is_node else 0.0
    return total, nodes


async def load_test(
    app: Appliance, pieces: list[tuple[np.ndarray, list[str | None], list[Spoken]]], streams: int, max_delay_s: float
) -> Load:
    """``streams`` real-time diarized streams at once, each a piece of a meeting."""
    chosen = [pieces[i % len(pieces)] for i in range(streams)]
    before, counted = cpu_seconds(app), await decode_counts(app)
    results = await asyncio.gather(
        *(
            stream(app.url, app.key, a, diarize=True, realtime=True, frame_s=FRAME_S, max_delay_s=max_delay_s)
            for a, _, _ in chosen
        )
    )
    after, now = cpu_seconds(app), await decode_counts(app)
    zero = (0.0, 0.0)
    decodes = {k: (v[0] - counted.get(k, zero)[0], v[1] - counted.get(k, zero)[1]) for k, v in now.items()}
    words, phrases, late = [], [], 0
    for result, (_, truth, spoken) in zip(results, chosen, strict=True):
        words += word_latencies(result, spoken)[0]
        # the last phrase of a stream waits for `close`, not for silence: left out
        phrases += phrase_latencies(result, truth)[:-1]
        late += result.of("done")[0]["late_words"]
    audio_s = sum(len(a) for a, _, _ in chosen) / SAMPLE_RATE
    return Load(streams, words, phrases, late, audio_s, after[0] - before[0], after[1] - before[1], decodes)


async def run(args: argparse.Namespace) -> None:
    """Everything, on one appliance with two nodes."""
    material, unknown = speakers()
    transcriber = load_transcriber(ModelSettings())
    sample_spoken = spoken_words(transcriber, sample_audio())
    offline = stream_wer.wer(reference_text(), stream_wer.offline(sample_audio(), transcriber))
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        if args.config:
            data_dir.mkdir()
            (data_dir / "config.toml").write_text(args.config.read_text())
        app = Appliance(data_dir, nodes=2)
        try:
            app.wait_for(r"ScaiEcho ready: 2/2")
            held_out = await enroll_all(app, material, args.reference_s)
            names = {u.name for u in held_out if u.name}
            meetings = build_meetings(held_out + unknown, args.meetings)
            pieces = []
            for i in range(max(args.streams)):
                meeting = meetings[i % len(meetings)]
                at = (i // len(meetings)) * args.load_s
                audio = meeting.audio[int(at * SAMPLE_RATE) : int((at + args.load_s) * SAMPLE_RATE)]
                truth = meeting.truth[int(at * 100) : int((at + args.load_s) * 100)]
                pieces.append((audio, truth, spoken_words(transcriber, audio)))
            if not args.latency_only:
                started = time.perf_counter()
                totals = await labelling(app, meetings, names)
                labelling_s = time.perf_counter() - started
            live = [
                await stream(
                    app.url,
                    app.key,
                    sample_audio(),
                    diarize=True,
                    realtime=True,
                    frame_s=FRAME_S,
                    max_delay_s=args.max_delay_s,
                )
                for _ in range(args.repeats)
            ]
            single = await load_test(app, pieces, 1, args.max_delay_s)
            load = [await load_test(app, pieces, n, args.max_delay_s) for n in args.streams]
        finally:
            app.stop()
    if not args.latency_only:
        print_quality(args, meetings, totals, labelling_s)
    print_live(args, live, sample_spoken, offline)
    print_load([single, *load], args.max_delay_s)


def print_quality(
    args: argparse.Namespace, meetings: list[Meeting], totals: dict[str, float], labelling_s: float
) -> None:
    """The labelling table."""
    audio_s = sum(len(m.audio) for m in meetings) / SAMPLE_RATE
    print(
        f"\nLabelling: {len(meetings)} meetings, {audio_s / 60:.1f} min of audio, 5 enrolled LibriSpeech speakers "
        f"({args.reference_s:g} s references), 60 unknown; processed at {audio_s / labelling_s:.1f}x real time"
    )
    print("| measure | value | target |")
    print("|---|---:|---:|")
    enrolled_right = totals["enrolled_right"] / totals["enrolled"]
    print(f"| enrolled speech labelled with the right name | {enrolled_right:.1%} | >= 97% |")
    print(f"| enrolled speech given another enrolled name | {totals['enrolled_wrong'] / totals['enrolled']:.2%} | |")
    print(f"| enrolled speech labelled spk_N / not labelled | {totals['enrolled_spk'] / totals['enrolled']:.1%} / "
          f"{totals['enrolled_none'] / totals['enrolled']:.1%} | |")  # fmt: skip
    print(f"| unknown speech given an enrolled name | {totals['unknown_named'] / totals['unknown']:.2%} | <= 1% |")
    print(f"| unknown speech labelled spk_N | {totals['unknown_spk'] / totals['unknown']:.1%} | |")
    print(f"| enrolled / unknown speech scored (s) | {totals['enrolled']:.0f} / {totals['unknown']:.0f} | |")


def print_live(args: argparse.Namespace, live: list[StreamResult], spoken: list[Spoken], offline: float) -> None:
    """The sample call streamed in real time (``--repeats`` times): per-word latency and WER."""
    latencies: list[float] = []
    shares, errors, words, late = [], [], 0, 0
    for result in live:
        found, aligned = word_latencies(result, spoken)
        latencies += found
        shares.append(aligned)
        errors.append(stream_wer.wer(reference_text(), result.text))
        done = result.of("done")[0]
        words, late = words + done["words"], late + done["late_words"]
    labels = sorted({d.get("speaker_label") or "-" for result in live for d in result.deltas})
    print(f"\npyannote sample call, {len(live)} x 1 real-time diarized stream, max_delay_s {args.max_delay_s:g} "
          f"({len(latencies)} words, {statistics.mean(shares):.0%} aligned with the offline word timings; "
          f"labels {', '.join(labels)})")  # fmt: skip
    print("| measure | value | target |")
    print("|---|---:|---:|")
    print(f"| per-word latency p50 | {statistics.median(latencies):.2f} s | <= 1.2 s |")
    print(f"| per-word latency p95 | {percentile(latencies, 95):.2f} s | <= 2.5 s |")
    print(f"| per-word latency max | {max(latencies):.2f} s | |")
    print(f"| words later than max_delay_s (server's count) | {late} of {words} | |")
    streamed = statistics.mean(errors)
    runs = ", ".join(f"{e:.1%}" for e in errors)
    print(f"| WER streamed (mean of {runs}) / offline | {streamed:.1%} / {offline:.1%} "
          f"({100 * (streamed - offline):+.1f} points) | within 2 points |")  # fmt: skip


def print_load(loads: list[Load], max_delay_s: float) -> None:
    """N concurrent real-time streams."""
    print(f"\nConcurrent real-time diarized streams (pieces of the meetings, max_delay_s {max_delay_s:g})")
    print("| streams | words | per-word p50 (s) | per-word p95 (s) | per-phrase p50 / p95 (s) | words late | "
          "CPU s per audio s (nodes' part) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for load in loads:
        w, p = load.words, load.phrases
        print(
            f"| {load.streams} | {len(w)} | {statistics.median(w):.2f} | {percentile(w, 95):.2f} | "
            f"{statistics.median(p):.2f} / {percentile(p, 95):.2f} | {load.late_words / max(1, len(w)):.1%} | "
            f"{load.cpu_s / load.audio_s:.2f} ({load.node_cpu_s / load.audio_s:.2f}) |"
        )
    print("\nWhisper decodes per second of audio (and worker seconds per second of audio), by kind and outcome")
    kinds = sorted({k for load in loads for k, v in load.decodes.items() if v[0] > 0})
    print("| streams | " + " | ".join(kinds) + " |")
    print("|---:|" + "---:|" * len(kinds))
    for load in loads:
        cells = [load.decodes.get(k, (0.0, 0.0)) for k in kinds]
        shown = " | ".join(f"{n / load.audio_s:.2f} ({t / load.audio_s:.2f})" for n, t in cells)
        print(f"| {load.streams} | {shown} |")


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--meetings", type=int, default=4)
    parser.add_argument("--reference-s", type=float, default=20.0)
    parser.add_argument("--load-s", type=float, default=60.0)
    parser.add_argument("--streams", type=int, nargs="+", default=[2, 4, 5, 6])
    parser.add_argument("--max-delay-s", type=float, default=2.0, help="the streams' bound (open frame)")
    parser.add_argument("--repeats", type=int, default=3, help="times the sample call is streamed (WER is noisy)")
    parser.add_argument("--config", type=Path, help="a config.toml for the appliance (to try settings)")
    parser.add_argument("--latency-only", action="store_true", help="skip labelling and WER")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is missing: this benchmark needs ../shared/data")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
