"""Words of a live stream against the same audio decoded offline: the commit rule's accuracy.

Runs the session's own code in process (Silero VAD, phrase segmenter, the shared ASR scheduler,
`Committer`, the real tiny.en) and feeds the audio in 40 ms frames as a live client does, but in
*stream time*: each decode's result is handed to the session once ``--lag`` seconds of audio
more have been fed (about what a decode takes on this box), whatever this machine's speed. So a
run is repeatable, and a rule can be compared with another on the same decodes.

Material (each figure is a WER against a reference, streamed vs offline on the same audio):

- **meetings** of ../shared/data speakers (benchmarks/meetings.py; ``--half`` tuning or
  held-out; ``read``: 2-8 s turns, ``room``: 0.5-3 s turns with overlap, reverberation and noise).
  Their reference is tiny.en's offline decode of each turn's clean speech, in turn order: what
  the same model hears in a turn alone, so the figure is what streaming and the room lose.
- the pyannote **sample** call against its STM transcript, streamed ``--phases`` times, each
  shifted by a little silence so that the decodes fall at other moments of the audio.

Tune on ``--half tuning``; report held-out and the sample.

    python -m benchmarks.stream_wer [--half tuning] [--condition read room] [--meetings 2] [--sample]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import jiwer
import numpy as np

from appliance.contract.frames import DeltaFrame, ServerFrame
from appliance.settings import Settings, StreamSettings
from benchmarks.meetings import Meeting, build, calls
from edge_server.streaming.asr_scheduler import AsrJob, AsrScheduler
from edge_server.streaming.session import Transcription
from models.audio import SAMPLE_RATE
from models.base import Segment, Transcriber, Word
from models.registry import load_transcriber
from models.settings import ModelSettings
from tests.support import normalise, reference_text, sample_audio

FRAME = 640  # 40 ms


@dataclass(eq=False)
class HeldJob:
    """A decode whose result reaches the session only once the stream has moved on by the lag."""

    job: AsrJob
    due: int  # samples fed when the result may be handed over
    future: asyncio.Future[list[Segment]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def started(self) -> bool:
        """In stream time a decode runs from when it is asked (the lag is its length)."""
        return True

    def promote(self) -> None:
        self.job.promote()

    def cancel(self) -> None:
        self.job.cancel()
        self.future.cancel()


class StreamClock(AsrScheduler):
    """The shared scheduler, with results held back until ``lag`` seconds of stream have passed."""

    def __init__(self, transcriber: Transcriber, lag_s: float) -> None:
        super().__init__(transcriber, workers=1)
        self.lag = int(lag_s * SAMPLE_RATE)
        self.fed = 0
        self.held: list[HeldJob] = []
        self.closing = False

    def submit(
        self, samples: np.ndarray, language: str | None, priority: int, owner: str | None = None, fresh: Any = None
    ) -> Any:
        """Queue a decode of ``samples`` as they are: a decode taking the newest audio when it starts
        (``fresh``) would depend on this machine's speed, and the replay would not repeat."""
        held = HeldJob(super().submit(samples, language, priority, owner), self.fed + self.lag)
        self.held.append(held)
        return held

    async def advance(self, fed: int) -> None:
        """The stream reached ``fed`` samples: hand over every result due by then (waiting for it)."""
        self.fed = fed
        for held in list(self.held):
            if held.future.done():
                self.held.remove(held)
            elif held.due <= fed or self.closing:
                try:
                    result = await held.job.future
                except (Exception, asyncio.CancelledError):
                    held.future.cancel()
                else:
                    if not held.future.done():
                        held.future.set_result(result)
                self.held.remove(held)
        for _ in range(5):  # let the session take what it was handed
            await asyncio.sleep(0)


class TimedTranscription(Transcription):
    """A session that notes, for each word it makes final, how long after the word's end (in
    stream time, the lag standing for the decodes' time) the delta went out."""

    def __init__(self, clock: StreamClock, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock
        self.delays: list[float] = []

    def _timed(self, words: list[Word]) -> None:
        now = self.clock.fed / SAMPLE_RATE
        self.delays.extend(now - w.end for w in words)


async def streamed(
    audio: np.ndarray, transcriber: Transcriber, settings: Settings, lag_s: float
) -> tuple[str, list[float]]:
    """The text of the deltas of ``audio`` streamed live, and each final word's delay (stream seconds)."""
    clock = StreamClock(transcriber, lag_s)
    clock.start()
    text: list[str] = []

    async def emit(frame: ServerFrame) -> None:
        if isinstance(frame, DeltaFrame):
            text.append(frame.text)

    session = TimedTranscription(clock, settings, "A", emit, language="en", transcriber=clock)
    for fed in range(FRAME, len(audio) + FRAME, FRAME):
        await session.feed(audio[fed - FRAME : fed])
        await clock.advance(fed)
    clock.closing = True
    finishing = asyncio.get_running_loop().create_task(session.finish())
    while not finishing.done():
        await clock.advance(len(audio))
        await asyncio.sleep(0.01)
    await finishing
    await clock.stop()
    return " ".join(text), session.delays


def offline(audio: np.ndarray, transcriber: Transcriber) -> str:
    """tiny.en on the whole recording at once (greedy, as the box decodes)."""
    return " ".join(s.text for s in transcriber.transcribe(audio, "en", words=False))


def wer(reference: str, text: str) -> float:
    return float(jiwer.wer(normalise(reference), normalise(text)))


def trimmed(meeting: Meeting, seconds: float) -> Meeting:
    """The first ``seconds`` of a meeting: the turns that end by then."""
    keep = [k for k, (_, end, _) in enumerate(meeting.turns) if end <= seconds]
    end = int(max(meeting.turns[k][1] for k in keep) * SAMPLE_RATE) + SAMPLE_RATE // 2
    return Meeting(
        meeting.name,
        meeting.audio[:end],
        [meeting.turns[k] for k in keep],
        [meeting.speech[k] for k in keep],
    )


@dataclass
class Row:
    material: str
    words: int
    audio_s: float
    streamed: list[float]
    offline: float
    delays: list[float] = field(default_factory=list)


def run_meetings(args: argparse.Namespace, transcriber: Transcriber, settings: Settings) -> list[Row]:
    rows = []
    for condition in args.condition:
        if condition == "call":
            chosen = calls(args.half, args.meetings)
        else:
            chosen = build(args.half, condition, args.meetings).meetings
        for meeting in chosen:
            meeting = trimmed(meeting, args.seconds)
            reference = " ".join(offline(s, transcriber) for s in meeting.speech)
            text, delays = asyncio.run(streamed(meeting.audio, transcriber, settings, args.lag))
            rows.append(
                Row(
                    meeting.name,
                    len(normalise(reference).split()),
                    len(meeting.audio) / SAMPLE_RATE,
                    [wer(reference, text)],
                    wer(reference, offline(meeting.audio, transcriber)),
                    delays,
                )
            )
            print_row(rows[-1])
    return rows


def run_sample(args: argparse.Namespace, transcriber: Transcriber, settings: Settings) -> Row:
    audio, reference = sample_audio(), reference_text()
    scores, delays = [], []
    for k in range(args.phases):
        padded = np.concatenate([np.zeros(int(k * 0.1 * SAMPLE_RATE), np.float32), audio])
        text, heard = asyncio.run(streamed(padded, transcriber, settings, args.lag))
        scores.append(wer(reference, text))
        delays += heard
    row = Row("pyannote sample", len(normalise(reference).split()), len(audio) / SAMPLE_RATE, scores, 0.0, delays)
    row.offline = wer(reference, offline(audio, transcriber))
    print_row(row)
    return row


def print_row(row: Row) -> None:
    mean = float(np.mean(row.streamed))
    spread = f" ({min(row.streamed):.1%}-{max(row.streamed):.1%})" if len(row.streamed) > 1 else ""
    print(
        f"| {row.material} | {row.words} | {row.audio_s:.0f} | {mean:.1%}{spread} | {row.offline:.1%} "
        f"| {100 * (mean - row.offline):+.1f} | {_delays(row.delays)} |",
        flush=True,
    )


def _delays(delays: list[float]) -> str:
    """p50 / p95 of word delays, or a dash."""
    if not delays:
        return "-"
    p50, p95 = np.percentile(delays, [50, 95])
    return f"{p50:.2f} / {p95:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--half", default="held-out", choices=["tuning", "held-out"])
    parser.add_argument("--condition", nargs="*", default=["call", "read"], choices=["read", "room", "call"])
    parser.add_argument("--meetings", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=120.0, help="each meeting's first seconds")
    parser.add_argument("--sample", action="store_true", help="also the pyannote sample")
    parser.add_argument("--phases", type=int, default=5, help="runs of the sample, each shifted by 0.1 s")
    parser.add_argument("--lag", type=float, default=0.4, help="seconds of stream a decode takes")
    parser.add_argument("--set", nargs="*", default=[], help="stream setting overrides, key=value")
    args = parser.parse_args()
    overrides = {k: float(v) for k, v in (item.split("=", 1) for item in args.set)}
    settings = Settings(stream=StreamSettings(**overrides))
    transcriber = load_transcriber(ModelSettings(asr_workers=1))
    began = time.monotonic()
    print("| material | words | audio (s) | WER streamed | WER offline | points | word delay p50 / p95 (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = run_meetings(args, transcriber, settings)
    if args.sample:
        rows.append(run_sample(args, transcriber, settings))
    meetings = [r for r in rows if r.material != "pyannote sample"]
    if meetings:
        words = sum(r.words for r in meetings)
        streamed_wer = sum(np.mean(r.streamed) * r.words for r in meetings) / words
        offline_wer = sum(r.offline * r.words for r in meetings) / words
        delays = [d for r in meetings for d in r.delays]
        print(f"| meetings ({args.half}) | {words} | | {streamed_wer:.1%} | {offline_wer:.1%} "
              f"| {100 * (streamed_wer - offline_wer):+.1f} | {_delays(delays)} |")  # fmt: skip
    print(f"\n({time.monotonic() - began:.0f} s; lag {args.lag} s; settings: {' '.join(args.set) or 'defaults'})")


if __name__ == "__main__":
    main()
