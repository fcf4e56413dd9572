"""One transcription session: audio in, `partial`/`delta` frames out, in order.

The same engine serves a WebSocket stream (real time) and `POST /transcriptions` (a whole file).

Backend A: Silero VAD cuts the audio into phrases; each closed phrase is decoded by the shared
`AsrScheduler` and, with diarization, embedded and scored on a pyannote node at the same time.
While a phrase's closing silence runs, it is decoded ahead (speculatively): when the phrase
then closes unchanged, its text is ready or nearly so; when speech resumes, the guess is
dropped. Partials of an open phrase are decoded only when the model has nothing better to do.

Backend B: each closed phrase goes to the upstream relay; no partials, no labels.

Memory is bounded: audio is kept from the start of the open phrase only (phrases are cut at
``max_phrase_s``), and at most ``max_pending_phrases`` closed phrases wait for their text;
beyond that `feed` does not return, so the caller stops reading from the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from appliance.contract.errors import CodedError
from appliance.settings import Settings
from edge_server.speakers.voices import TenantVoices
from edge_server.streaming.asr_scheduler import AHEAD, FINAL, PARTIAL, AsrJob, AsrScheduler
from edge_server.streaming.deltas import phrase_deltas, phrase_words, word_labels
from edge_server.streaming.diarization import Label, SessionSpeakers, Window, split_turns
from edge_server.streaming.protocol import DeltaFrame, ErrorFrame, PartialFrame, ServerFrame
from edge_server.streaming.transcribers import PhraseJob, PhraseTranscriber
from models.audio import SAMPLE_RATE
from models.base import Segment
from models.vad import CHUNK, Phrase, PhraseSegmenter, StreamingVad

_sessions = itertools.count()
log = logging.getLogger("scaiecho.session")

Emit = Callable[[ServerFrame], Awaitable[None]]


@dataclass
class _Outcome:
    segments: list[Segment]
    windows: list[Window] | None = None
    error: ErrorFrame | None = None


@dataclass
class _Ahead:
    """A phrase decoded (and embedded) ahead of its close."""

    phrase: Phrase
    job: AsrJob
    voice: asyncio.Task[list[Window] | None] | None

    def cancel(self) -> None:
        self.job.cancel()
        if self.voice is not None:
            self.voice.cancel()


class Transcription:
    """Feed 16 kHz float32 audio with `feed`, then `finish`; frames go to ``emit`` in order."""

    def __init__(
        self,
        settings: Settings,
        backend: Literal["A", "B"],
        emit: Emit,
        *,
        language: str | None = None,
        transcriber: PhraseTranscriber,
        voices: TenantVoices | None = None,
        realtime: bool = True,
        on_latency: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings.stream
        self.backend = backend
        self.language = language.split("-")[0].lower() if language else None
        self._emit = emit
        self._on_latency = on_latency
        #: (samples received so far, monotonic time) per fed chunk, to time each phrase's delta
        self._arrivals: deque[tuple[int, float]] = deque()
        self._phrases = transcriber
        #: Backend A's queue for what only it does (decode-ahead, partials), else None.
        self._asr = transcriber if isinstance(transcriber, AsrScheduler) else None
        #: This session's share of the shared ASR queue (edge_server/streaming/asr_scheduler.py).
        self._owner = f"session-{next(_sessions)}"
        self._voices = voices if backend == "A" else None  # Backend B ignores diarize
        self._diarization = settings.diarization
        self._speakers = SessionSpeakers(settings.diarization)
        self._realtime = realtime and transcriber.speculative
        self._vad = StreamingVad()
        self._segmenter = PhraseSegmenter(
            threshold=self.settings.vad_threshold,
            min_silence_s=self.settings.min_silence_s,
            max_phrase_s=self.settings.max_phrase_s,
        )
        self._audio = np.zeros(0, dtype=np.float32)
        self._base = 0  # stream sample index of self._audio[0]
        self._fed = 0
        self._max_samples = int(self.settings.max_session_s * SAMPLE_RATE)
        self._slots = asyncio.Semaphore(self.settings.max_pending_phrases)
        self._queue: asyncio.Queue[tuple[Phrase, asyncio.Task[_Outcome]] | None] = asyncio.Queue()
        self._emitter = asyncio.get_running_loop().create_task(self._emit_in_order(), name="session-emitter")
        self._ahead: _Ahead | None = None
        self._partial: asyncio.Task[None] | None = None
        self._partial_at = 0
        self.segments = 0

    @property
    def duration_s(self) -> float:
        """Seconds of audio received."""
        return self._fed / SAMPLE_RATE

    @property
    def full(self) -> bool:
        """The maximum session length is reached; further audio is ignored."""
        return self._fed >= self._max_samples

    async def feed(self, samples: np.ndarray) -> None:
        """Take more audio; returns once it is segmented and at most the allowed phrases wait."""
        samples = samples[: max(0, self._max_samples - self._fed)]
        if len(samples) == 0:
            return
        self._audio = np.concatenate([self._audio, samples.astype(np.float32, copy=False)])
        self._fed += len(samples)
        self._arrivals.append((self._fed, time.monotonic()))
        probabilities = await asyncio.to_thread(self._vad.feed, samples)
        for phrase in self._segmenter.push(probabilities):
            await self._close(phrase)
        if self._realtime:
            self._decode_ahead()
            self._maybe_partial()
        self._trim()

    async def finish(self) -> None:
        """No more audio: close the open phrase and wait until every frame is emitted."""
        for phrase in self._segmenter.flush():
            await self._close(phrase)
        await self._queue.put(None)
        await self._emitter
        self._discard()

    async def abort(self) -> None:
        """The client is gone or was cut off: stop everything and forget the voices."""
        tasks: list[asyncio.Task[Any]] = [self._emitter, *([self._partial] if self._partial else [])]
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                tasks.append(item[1])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._discard()

    def _discard(self) -> None:
        if self._ahead is not None:
            self._ahead.cancel()
            self._ahead = None
        self._speakers.forget()
        self._audio = np.zeros(0, dtype=np.float32)
        self._phrases.forget(self._owner)

    def _slice(self, start: int, end: int) -> np.ndarray:
        return self._audio[max(0, start - self._base) : max(0, end - self._base)].copy()

    def _trim(self) -> None:
        """Drop audio no phrase can need any more."""
        keep_from = self._segmenter.open_since
        if keep_from is None:
            keep_from = self._segmenter.position - self._segmenter.pad - CHUNK
        if self._ahead is not None:
            keep_from = min(keep_from, self._ahead.phrase.start)
        cut = keep_from - self._base
        if cut > 0:
            self._audio = self._audio[cut:]
            self._base += cut

    # -- phrases -------------------------------------------------------------------------------

    def _identify(self, audio: np.ndarray) -> asyncio.Task[list[Window] | None] | None:
        if self._voices is None:
            return None
        return asyncio.get_running_loop().create_task(self._voices.identify(audio, list(self._voices.live())))

    def _decode_ahead(self) -> None:
        assert self._asr is not None
        # under load a guess that speech then voids costs other sessions: guess later
        busy = self._asr.load > self.settings.partial_max_load
        guess = self._segmenter.tentative(
            self.settings.speculate_busy_after_s if busy else self.settings.speculate_after_s
        )
        if self._ahead is not None and self._ahead.phrase != guess:
            self._ahead.cancel()  # speech came back: the phrase is longer than guessed
            self._ahead = None
        if guess is not None and self._ahead is None:
            audio = self._slice(guess.start, guess.end)
            self._ahead = _Ahead(
                guess, self._asr.submit(audio, self.language, AHEAD, self._owner), self._identify(audio)
            )

    async def _close(self, phrase: Phrase) -> None:
        await self._slots.acquire()  # backpressure: at most max_pending_phrases in flight
        audio = self._slice(phrase.start, phrase.end)
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead.phrase == phrase:
            ahead.job.promote()
            task = asyncio.get_running_loop().create_task(self._outcome(ahead.job, ahead.voice))
        else:
            if ahead is not None:
                ahead.cancel()
            job = self._phrases.submit(audio, self.language, FINAL, self._owner)
            task = asyncio.get_running_loop().create_task(self._outcome(job, self._identify(audio)))
        await self._queue.put((phrase, task))

    async def _outcome(self, job: PhraseJob, voice: asyncio.Task[list[Window] | None] | None) -> _Outcome:
        try:
            segments = await job.future
        except Exception as exc:
            if voice is not None:
                voice.cancel()
            if isinstance(exc, CodedError):  # e.g. the upstream relay's upstream_timeout
                return _Outcome([], error=ErrorFrame(code=exc.code, message=exc.message))
            return _Outcome(
                [], error=ErrorFrame(code="asr_failed", message="a phrase could not be transcribed; the stream goes on")
            )
        found = None
        if voice is not None:
            try:
                found = await voice
            except Exception:
                log.exception("embedding a phrase failed")
        return _Outcome(segments, found)

    async def _emit_in_order(self) -> None:
        while (item := await self._queue.get()) is not None:
            phrase, task = item
            try:
                outcome = await task
            finally:
                self._slots.release()
            if outcome.error is not None:
                await self._emit(outcome.error)
                continue
            deltas = self._deltas(phrase, outcome)
            for frame in deltas:
                await self._emit(frame)
                self.segments += 1
            self._timed(phrase.end, sent=bool(deltas))

    def _timed(self, end: int, sent: bool) -> None:
        """Report how long after its last audio arrived a phrase's deltas went out."""
        while self._arrivals and self._arrivals[0][0] < end:
            self._arrivals.popleft()
        if sent and self._arrivals and self._on_latency is not None:
            self._on_latency(time.monotonic() - self._arrivals[0][1])

    def _deltas(self, phrase: Phrase, outcome: _Outcome) -> list[DeltaFrame]:
        """A phrase's deltas: one per speaker turn (one in all when not diarizing)."""
        offset = phrase.start / SAMPLE_RATE
        duration = (phrase.end - phrase.start) / SAMPLE_RATE
        words = phrase_words(outcome.segments)
        if not words:
            return []
        labels: list[Label | None] = [None] * len(words)
        if outcome.windows and self._voices is not None:
            live = self._voices.live()
            self._speakers.same_voice = self._voices.same_voice(live)
            turns = split_turns(outcome.windows, duration, live, self._diarization, self._speakers.same_voice)
            self._speakers.observe([(t.voice, t.end - t.start) for t in turns], live)
            decided = [self._speakers.decide(t.voice, t.end - t.start, live) for t in turns]
            labels = word_labels(words, turns, decided)
        return phrase_deltas(words, labels, offset, duration, self.segments)

    # -- partials ------------------------------------------------------------------------------

    def _maybe_partial(self) -> None:
        start = self._segmenter.open_since
        if start is None or self._asr is None or self._segmenter.in_pause:
            return  # no phrase, or it may be closing: keep Whisper free for it
        if not self._asr.idle or self._asr.load > self.settings.partial_max_load:
            return  # partials are a luxury: finals of every session come first
        if self._partial is not None and not self._partial.done():
            return
        now = self._segmenter.position
        if now - max(start, self._partial_at) < self.settings.partial_interval_s * SAMPLE_RATE:
            return
        self._partial_at = now
        job = self._asr.submit(self._slice(start, now), self.language, PARTIAL, self._owner)
        self._partial = asyncio.get_running_loop().create_task(self._send_partial(job, start))

    async def _send_partial(self, job: AsrJob, start: int) -> None:
        with contextlib.suppress(Exception):
            segments = await job.future
            text = " ".join(s.text for s in segments).strip()
            if text and self._segmenter.open_since == start:  # still the phrase being spoken
                await self._emit(PartialFrame(text=text, start=round(start / SAMPLE_RATE, 3)))
