"""Finals of the phrase being spoken, on recorded speech with long unpaused turns.

The session runs for real (Silero VAD, phrase segmenter, the shared ASR scheduler and its worker
thread); only the Whisper model is replaced by a scripted transcriber that "hears" a known word
every 0.35 s of the recording, with jittered times, so the tests can check every word by its
index: none lost, none repeated, none changed once final, and each final within the bound. The
sample's second turn runs 12 s without a pause long enough to close a phrase.

Time here is stream time (audio fed), and the feed waits for each decode: the decoder is
instant, so the bound checked is the commit rule's own, not this machine's speed (that is
benchmarks/stream.py's job).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time

import numpy as np
import pytest

from appliance.contract.frames import DeltaFrame, ErrorFrame, PartialFrame, ServerFrame
from appliance.settings import Settings
from edge_server.streaming.asr_scheduler import AsrScheduler
from edge_server.streaming.pieces import Decode
from edge_server.streaming.session import Transcription
from models.audio import SAMPLE_RATE
from models.base import Segment, Word
from tests.support import sample_audio

WORD_EVERY_S = 0.35
WORD_S = 0.3
FRAME = 640  # 40 ms, as a live client sends


class ScriptedWhisper:
    """Finds where the audio it is given lies in the recording and returns the script's words there."""

    model_name = "scripted"

    def __init__(
        self, recording: np.ndarray, agree: bool, stops_after_s: float | None = None, redecode_fails: bool = False
    ) -> None:
        self.recording = recording.tobytes()
        self.agree = agree
        #: Like Whisper at times: given a second more audio than this, it stops there and drops the rest.
        self.stops_after_s = stops_after_s
        #: A decode starting shortly before where an earlier one stopped (a decode of the rest) fails.
        self.redecode_fails = redecode_fails
        self.stopped_at: list[float] = []  # recording times where decodes stopped
        self.decodes = itertools.count()
        self.random = random.Random(7)

    def transcribe(self, samples: np.ndarray, language: str | None = None, words: bool = True) -> list[Segment]:
        offset = self.recording.find(np.ascontiguousarray(samples[:800]).tobytes()) // 4 / SAMPLE_RATE
        duration = len(samples) / SAMPLE_RATE
        decode = next(self.decodes)
        if self.redecode_fails and any(stop - 1.5 <= offset < stop for stop in self.stopped_at):
            raise RuntimeError("engine failure")
        found = []
        first = max(0, int(offset / WORD_EVERY_S) - 1)
        for index in range(first, int((offset + duration) / WORD_EVERY_S) + 1):
            start = index * WORD_EVERY_S - offset + self.random.uniform(-0.04, 0.04)
            end = start + WORD_S
            if not 0 <= (start + end) / 2 <= duration:
                continue
            stops = self.stops_after_s is not None and duration > self.stops_after_s + 1.0
            if stops and (start + end) / 2 > (self.stops_after_s or 0.0):
                self.stopped_at.append(offset + (self.stops_after_s or 0.0))
                break
            cut = end > duration - 0.1  # a word Whisper hears only in part: its text is unsure
            text = f" w{index}" + ("x" if cut else "") + ("" if self.agree else f"_{decode}")
            found.append(Word(max(0.0, start), min(end, duration), text))
        return [Segment(found[0].start, found[-1].end, "".join(w.text for w in found), tuple(found))] if found else []


async def stream(
    agree: bool, max_delay_s: float, stops_after_s: float | None = None, whisper: ScriptedWhisper | None = None
) -> list[tuple[float, ServerFrame]]:
    recording = sample_audio()
    scheduler = AsrScheduler(whisper or ScriptedWhisper(recording, agree, stops_after_s))
    scheduler.start()
    sent: list[tuple[float, ServerFrame]] = []
    fed = 0

    async def emit(frame: ServerFrame) -> None:
        sent.append((fed / SAMPLE_RATE, frame))

    session = Transcription(Settings(), "A", emit, language="en", transcriber=scheduler, max_delay_s=max_delay_s)
    try:
        for fed in range(FRAME, len(recording) + FRAME, FRAME):
            await session.feed(recording[fed - FRAME : fed])
            for _ in range(200):  # an instant decoder: stream time stands still while it runs
                await asyncio.sleep(0.001)
                if scheduler.idle:
                    break
        await session.finish()
    finally:
        await scheduler.stop()
    return sent


def index_of(word: str) -> int:
    match = re.fullmatch(r"w(\d+)x?(_\d+)?", word)
    assert match, word
    return int(match.group(1))


@pytest.mark.parametrize("agree", [True, False], ids=["decodes-agree", "decodes-never-agree"])
async def test_every_word_is_final_once_in_order_and_within_the_bound(agree: bool) -> None:
    bound = 1.5
    sent = await stream(agree, bound)
    deltas = [(at, f) for at, f in sent if isinstance(f, DeltaFrame)]
    finals = [(at, index_of(w), f) for at, f in deltas for w in f.text.split()]
    order = [index for _, index, _ in finals]
    assert order == sorted(set(order)), "a word was repeated or went out of order"

    covered = [(f.start, f.end) for _, f in deltas]
    heard = [
        i
        for i in range(int(len(sample_audio()) / SAMPLE_RATE / WORD_EVERY_S) + 1)
        if any(a <= i * WORD_EVERY_S + WORD_S / 2 <= b for a, b in covered)
    ]
    assert set(order) == set(heard), "a word inside the transcribed speech was lost"

    # deltas tile the speech: each starts where the previous one ended (a phrase cut at max_phrase_s
    # is followed by one that starts with the segmenter's 0.1 s of padding before the cut)
    for (_, a), (_, b) in itertools.pairwise(deltas):
        assert b.start >= a.end - 0.1 - 1e-6 and b.segment_id == a.segment_id + 1

    lags = [at - (index * WORD_EVERY_S + WORD_S) for at, index, _ in finals]
    assert max(lags) <= bound + 0.2, f"a word went final {max(lags):.2f} s after it was spoken"
    # the long unpaused turn (19.6-30 s) is not held back until it closes
    assert any(20.0 < at < 29.0 for at, _, f in finals if f.end < 28.0)


async def test_speech_whisper_skipped_at_the_end_of_a_phrase_is_decoded_again() -> None:
    # every decode of more than 4 s stops after 3 s: the words after that come from decodes of the rest
    sent = await stream(agree=True, max_delay_s=2.0, stops_after_s=3.0)
    deltas = [f for _, f in sent if isinstance(f, DeltaFrame)]
    order = [index_of(w) for f in deltas for w in f.text.split()]
    assert order == sorted(set(order)), "a word was repeated or went out of order"
    heard = [
        i
        for i in range(int(len(sample_audio()) / SAMPLE_RATE / WORD_EVERY_S) + 1)
        if any(f.start <= i * WORD_EVERY_S + WORD_S / 2 <= f.end for f in deltas)
    ]
    assert set(order) == set(heard), "a word inside the transcribed speech was lost"
    assert max(order) >= int(29.0 / WORD_EVERY_S), "the end of the long unpaused turn was lost"


async def test_a_failed_decode_of_skipped_speech_keeps_the_phrases_own_words() -> None:
    whisper = ScriptedWhisper(sample_audio(), agree=True, stops_after_s=3.0, redecode_fails=True)
    sent = await stream(agree=True, max_delay_s=2.0, whisper=whisper)
    assert whisper.stopped_at, "no decode stopped early: the test tests nothing"
    assert not [f for _, f in sent if isinstance(f, ErrorFrame)], "the phrase failed instead of keeping its words"
    deltas = [f for _, f in sent if isinstance(f, DeltaFrame)]
    order = [index_of(w) for f in deltas for w in f.text.split()]
    assert order == sorted(set(order)), "a word was repeated or went out of order"
    # the words each stopped decode did hear, just before it stopped, went out
    for stop in whisper.stopped_at:
        assert int(stop / WORD_EVERY_S) - 1 in order or int(stop / WORD_EVERY_S) - 2 in order
    assert max(order) * WORD_EVERY_S > 19.6, "the phrases after a failure were lost"


async def test_partials_carry_only_the_open_words_after_every_final() -> None:
    sent = await stream(agree=True, max_delay_s=2.0)
    assert any(isinstance(f, PartialFrame) for _, f in sent)
    final_so_far: set[int] = set()
    for _, frame in sent:
        if isinstance(frame, DeltaFrame):
            final_so_far.update(index_of(w) for w in frame.text.split())
        elif isinstance(frame, PartialFrame):  # only words still open, the finals before it already sent
            words = {index_of(w) for w in frame.text.split()}
            assert words and not words & final_so_far
            assert min(words) > max(final_so_far, default=-1)


class SlowWhisper(ScriptedWhisper):
    """The scripted decoder on a busy box: each decode takes a while, and the stream goes on meanwhile."""

    def transcribe(self, samples: np.ndarray, language: str | None = None, words: bool = True) -> list[Segment]:
        time.sleep(0.03)
        return super().transcribe(samples, language, words)


async def test_on_a_busy_box_a_decode_that_waited_takes_the_newest_audio_and_no_word_is_lost() -> None:
    recording = sample_audio()
    scheduler = AsrScheduler(SlowWhisper(recording, agree=True))
    scheduler.start()
    deltas: list[DeltaFrame] = []
    extended: list[bool] = []

    async def emit(frame: ServerFrame) -> None:
        if isinstance(frame, DeltaFrame):
            deltas.append(frame)

    session = Transcription(Settings(), "A", emit, language="en", transcriber=scheduler, max_delay_s=2.0)
    starting = session._starting

    def spy(decode: Decode, audio: np.ndarray) -> np.ndarray | None:
        taken = starting(decode, audio)
        extended.append(taken is not None)
        return taken

    session._starting = spy  # type: ignore[method-assign]
    try:
        for fed in range(FRAME, len(recording) + FRAME, FRAME):
            await session.feed(recording[fed - FRAME : fed])
            await asyncio.sleep(0.004)  # decodes (0.03 s each, one at a time) fall behind the stream
        await session.finish()
    finally:
        await scheduler.stop()
    assert any(extended), "no decode waited: the test tests nothing"
    order = [index_of(w) for f in deltas for w in f.text.split()]
    assert order == sorted(set(order)), "a word was repeated or went out of order"
    heard = [
        i
        for i in range(int(len(recording) / SAMPLE_RATE / WORD_EVERY_S) + 1)
        if any(f.start <= i * WORD_EVERY_S + WORD_S / 2 <= f.end for f in deltas)
    ]
    assert set(order) == set(heard), "a word inside the transcribed speech was lost"
