"""One transcription session: audio in, `partial`/`delta` frames out, in order.

The same engine serves a WebSocket stream (real time) and `POST /transcriptions` (a whole file).

Backend A: Silero VAD cuts the audio into phrases. While a phrase is being spoken it is decoded
again every ``commit_interval_s`` of new audio (one decode in flight per session), from the start
of its buffer to the newest audio there is when a worker takes the decode; `Committer`
(commit.py) makes words final as soon as two decodes agree on them, or Whisper is sure of them,
or when waiting longer would break ``max_delay_s``, and the words still open go out as a partial.
Once words are final the buffer keeps only ``commit_context_s`` of them before the open ones, so
a decode stays short however long the speaker goes on. When the phrase closes, its last decode
(one that runs and holds the whole phrase already, else one started ahead during the closing
silence, when it can be) makes the rest final; speech at its end that Whisper skipped is decoded
again on its own (`_skipped`). Each phrase is decoded with ``phrase_context_s`` of the phrase
before as context, whose words are not taken again (`Committer`'s ``before``). With diarization
each decode's audio (from the phrase's own start) is embedded on a pyannote node while Whisper
decodes it, and each delta is labelled from the audio it covers (labelling.py).

Backend B: each closed phrase goes to the upstream relay; no partials, no labels.

Every delta, partial and error passes one queue, so frames go out in the order of the audio.
Memory is bounded: audio is kept from the start of the decode buffer only (phrases are cut at
``max_phrase_s``), and at most ``max_pending_phrases`` closed phrases wait for their text;
beyond that `feed` does not return, so the caller stops reading from the client.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import numpy as np

from appliance.contract.errors import CodedError
from appliance.settings import Settings
from edge_server.speakers.voices import TenantVoices
from edge_server.streaming.arrivals import Arrivals
from edge_server.streaming.asr_scheduler import AHEAD, FINAL, AsrScheduler
from edge_server.streaming.commit import Committer, buffer_cut, shifted
from edge_server.streaming.deltas import phrase_words
from edge_server.streaming.diarization import Label, SessionSpeakers
from edge_server.streaming.evidence import Heard
from edge_server.streaming.pieces import Decode, Piece
from edge_server.streaming.protocol import DeltaFrame, ErrorFrame, ServerFrame
from edge_server.streaming.transcribers import PhraseTranscriber
from models.audio import SAMPLE_RATE
from models.base import Word
from models.vad import CHUNK, SPEECH_PAD_S, Phrase, PhraseSegmenter, StreamingVad

_sessions = itertools.count()
log = logging.getLogger("scaiecho.session")

Emit = Callable[[ServerFrame], Awaitable[None]]
#: Shortest buffer worth a decode while a phrase is open.
MIN_DECODE_S = 0.5
#: Speech this long after the last word of a phrase's final decode was skipped by Whisper: decode it again.
SKIPPED_S = 0.8
#: Audio before the skipped speech given with it, as context.
SKIPPED_CONTEXT_S = 1.0
#: Most decodes of skipped speech per phrase.
MAX_SKIPPED_DECODES = 10


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
        max_delay_s: float | None = None,
        on_latency: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings.stream
        self.backend = backend
        self.language = language.split("-")[0].lower() if language else None
        self.max_delay_s = max_delay_s or self.settings.max_delay_s
        self._emit = emit
        self._on_latency = on_latency
        # when audio arrived, to time each word's delta (no word older than this can be waiting)
        waiting_s = (self.settings.max_pending_phrases + 2) * self.settings.max_phrase_s
        self._arrivals = Arrivals(int(waiting_s * SAMPLE_RATE))
        self._phrases = transcriber
        #: Backend A's queue for what only it does (decoding open phrases), else None.
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
        self._queue: asyncio.Queue[tuple[asyncio.Future[Piece], bool] | None] = asyncio.Queue()
        self._emitter = asyncio.get_running_loop().create_task(self._emit_in_order(), name="session-emitter")
        # the open phrase: its commit state, decode buffer start, where its next delta starts
        self._committer = self._new_committer()
        self._context = int(self.settings.phrase_context_s * SAMPLE_RATE)
        self._grid = max(1, round(settings.models.embedding_step_s * SAMPLE_RATE))
        self._closing: asyncio.Task[Piece] | None = None  # the last closed phrase's final decode
        self._closed_to = 0  # end sample of the last closed phrase
        self._opened = 0  # start sample of the open phrase
        self._buffer: int | None = None
        self._boundary: float | None = None
        self._opens: list[Decode] = []  # decodes of the open phrase in flight
        self._takers: set[asyncio.Task[None]] = set()  # what waits for them
        self._phrase = 0  # how many phrases closed: a decode of an earlier one is void
        self._decoded_to = 0  # where the newest decode of the open phrase ends
        self._taken_to = 0  # where the newest decode whose words were taken ends
        self._cycle_s = self.settings.commit_interval_s + 0.5  # decode turnaround, smoothed
        self._ahead: tuple[Phrase, Decode] | None = None
        self.segments = 0
        self.words = 0
        self.late_words = 0

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
        self._arrivals.arrived(self._fed, time.monotonic())
        probabilities = await asyncio.to_thread(self._vad.feed, samples)
        for phrase in self._segmenter.push(probabilities):
            await self._close(phrase)
        if self._realtime:
            self._decode_ahead()
            self._decode_open()
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
        tasks: list[asyncio.Future[Any]] = [self._emitter]
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                tasks.append(item[0])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._discard()

    def _discard(self) -> None:
        for decode in [*self._opens, *([self._ahead[1]] if self._ahead else [])]:
            decode.cancel()
        self._opens, self._ahead = [], None
        self._speakers.forget()
        self._audio = np.zeros(0, dtype=np.float32)
        self._phrases.forget(self._owner)

    def _slice(self, start: int, end: int) -> np.ndarray:
        return self._audio[max(0, start - self._base) : max(0, end - self._base)].copy()

    def _trim(self) -> None:
        """Drop audio no decode can need any more."""
        keep_from = self._segmenter.open_since
        if keep_from is None:
            keep_from = self._segmenter.position - self._segmenter.pad - CHUNK - self._context
        elif self._buffer is not None:
            keep_from = self._buffer
        else:
            keep_from -= self._context
        if self._ahead is not None:
            keep_from = min(keep_from, self._ahead[1].start)
        cut = keep_from - self._base
        if cut > 0:
            self._audio = self._audio[cut:]
            self._base += cut

    def _decode(self, start: int, end: int, priority: int, fresh: bool = False) -> Decode:
        """Whisper decodes from ``start`` to ``end`` while a node hears the voice (`_hear`). ``fresh``:
        a decode of the open phrase, which takes the newest audio when it starts, and asks for the
        voice only then (`_starting`)."""
        audio = self._slice(start, end)
        if fresh and self._asr is not None:
            job = self._asr.submit(
                audio, self.language, priority, self._owner, fresh=lambda: self._starting(decode, audio)
            )
            decode = Decode(start, end, job, None)
            return decode
        voice, voice_start = self._hear(start, end, audio)
        return Decode(
            start,
            end,
            self._phrases.submit(audio, self.language, priority, self._owner),
            voice,
            voice_start=voice_start,
        )

    def _hear(self, start: int, end: int, audio: np.ndarray) -> tuple[asyncio.Task[Heard | None] | None, int]:
        """Ask a node for the voice of ``audio`` (``start``-``end``), and where the audio it hears starts.

        The voice is embedded from the phrase's own start (the context before it belongs to the
        phrase before, whose words were labelled already), or from the first point of the phrase's
        window grid after ``start``: successive decodes then ask for the same windows, which the
        node answers from its cache."""
        voice_start = self._opened + -(-max(0, start - self._opened) // self._grid) * self._grid
        if end - voice_start < self._grid:
            voice_start = max(start, self._opened)
        if self._voices is None:
            return None, voice_start
        heard = audio[voice_start - start :]
        return asyncio.get_running_loop().create_task(self._voices.hear(heard, list(self._voices.live()))), voice_start

    def _starting(self, decode: Decode, audio: np.ndarray) -> np.ndarray | None:
        """A decode of the open phrase (``audio``) starts after waiting its turn: while its phrase is
        open and its buffer unchanged, it takes the audio up to the newest (returned; else None: it
        decodes ``audio``); the node hears the voice of what it decodes."""
        end = self._segmenter.position
        extended = None
        still_open = decode in self._opens and decode.phrase == self._phrase and decode.start == self._buffer
        if still_open and end - decode.end >= CHUNK:
            extended = audio = self._slice(decode.start, end)
            decode.end = end
            self._decoded_to = max(self._decoded_to, end)
        decode.voice, decode.voice_start = self._hear(decode.start, decode.end, audio)
        return extended

    def _put(self, piece: Piece) -> None:
        done: asyncio.Future[Piece] = asyncio.get_running_loop().create_future()
        done.set_result(piece)
        self._queue.put_nowait((done, False))

    # -- the open phrase -------------------------------------------------------------------------

    def _decode_open(self) -> None:
        """Decode the open phrase again once enough new audio came, one decode in flight (two, closer
        together, agree on the same wrong guess far more often: docs/streaming.md)."""
        start = self._segmenter.open_since
        if start is None or self._opens:
            return
        if self._buffer is None:  # a phrase just opened
            self._open_phrase(start)
            assert self._buffer is not None
        now = self._segmenter.position
        step = self.settings.commit_interval_s
        if now - max(self._decoded_to, self._buffer) < step * SAMPLE_RATE:
            return
        if now - self._buffer < MIN_DECODE_S * SAMPLE_RATE:
            return
        self._decoded_to = now
        decode = self._decode(self._buffer, now, FINAL, fresh=True)
        decode.phrase = self._phrase
        self._opens.append(decode)
        taker = asyncio.get_running_loop().create_task(self._take_open(decode, self._fed, step))
        self._takers.add(taker)  # the loop keeps only weak references to tasks
        taker.add_done_callback(self._takers.discard)

    def _new_committer(self, before: Committer | None = None, floor_s: float = 0.0) -> Committer:
        """The commit state of a new phrase (``before``: the phrase before's, ``floor_s``: where it ended)."""
        sure = self.settings.commit_sure
        return Committer(
            self.max_delay_s,
            before,
            floor_s,
            sure=sure if sure < 1 else None,
            sure_after_s=self.settings.commit_sure_after_s,
        )

    def _open_phrase(self, start: int) -> None:
        """A phrase begins at sample ``start``: its decodes start ``phrase_context_s`` earlier, in the
        end of the phrase before; only words after ``start`` and after that phrase's final words are its own."""
        self._opened = start
        self._buffer = max(self._base, start - self._context)
        self._boundary = start / SAMPLE_RATE
        floor = max(self._buffer, self._closed_to) / SAMPLE_RATE
        self._committer = self._new_committer(self._committer, floor)

    async def _take_open(self, decode: Decode, asked: int, step: float) -> None:
        """Commit what a decode of the open phrase settles; send the rest as a partial. ``asked``: the
        audio fed when it was asked (the turnaround is measured in stream time, as the bound is)."""
        try:
            words, heard = await decode.words()
            if self._closing is not None and not self._closing.done():
                # the phrase before must have its final words first: this decode hears its end
                await asyncio.wait([self._closing])
        except (Exception, asyncio.CancelledError):
            return  # cancelled by the phrase's close, or failed: the close decodes it all again
        finally:
            if decode in self._opens:
                self._opens.remove(decode)
        if decode.phrase != self._phrase or decode.end <= self._taken_to or self._boundary is None:
            return  # the phrase closed meanwhile, or a newer decode was taken already
        self._taken_to = decode.end
        self._cycle_s = 0.7 * self._cycle_s + 0.3 * ((self._fed - asked) / SAMPLE_RATE + step)
        first = not self._committer.committed
        update = self._committer.update(words, decode.end / SAMPLE_RATE, self._fed / SAMPLE_RATE, self._cycle_s)
        if not update.committed and not update.tentative:
            return
        end = self._boundary
        if update.committed:
            last = update.committed[-1].end
            end = (last + update.tentative[0].start) / 2 if update.tentative else last
        start = _piece_start(self._boundary, self._committer, update.committed, first)
        piece = Piece(start, end, update.committed, update.tentative, heard)
        piece.audio_start, piece.audio_s = decode.voice_span
        self._put(piece)
        self._boundary = end
        self._keep_context()

    def _keep_context(self) -> None:
        """Move the start of the next decode past final words, at a pause (`commit.buffer_cut`)."""
        if self._buffer is None:
            return
        cut = buffer_cut(
            self._committer.committed,
            self._buffer / SAMPLE_RATE,
            self.settings.commit_context_s,
            self.settings.commit_max_context_s,
        )
        if cut is not None:
            sample = int(cut * SAMPLE_RATE)
            self._buffer = max(self._buffer, sample - sample % CHUNK)

    def _decode_ahead(self) -> None:
        assert self._asr is not None
        # under load a guess that speech then voids costs other sessions: guess later
        busy = self._asr.load > self.settings.partial_max_load
        guess = self._segmenter.tentative(
            self.settings.speculate_busy_after_s if busy else self.settings.speculate_after_s
        )
        if self._ahead is not None and self._ahead[0] != guess:
            self._ahead[1].cancel()  # speech came back: the phrase is longer than guessed
            self._ahead = None
        if guess is not None and self._ahead is None:
            if self._buffer is None:
                self._open_phrase(guess.start)
                assert self._buffer is not None
            self._ahead = (guess, self._decode(self._buffer, guess.end, AHEAD))

    # -- closed phrases --------------------------------------------------------------------------

    async def _close(self, phrase: Phrase) -> None:
        await self._slots.acquire()  # backpressure: at most max_pending_phrases in flight
        if self._buffer is None:
            self._open_phrase(phrase.start)
        assert self._buffer is not None and self._boundary is not None
        committer, start, boundary = self._committer, self._buffer, self._boundary
        ahead, self._ahead = self._ahead, None
        candidates = [d for d in self._opens if d.start == start and d.end >= phrase.end]
        if ahead is not None and ahead[0] == phrase:
            candidates.insert(0, ahead[1])
        # a decode that holds the whole phrase already is its last decode: one that runs, else the one decoded ahead
        decode = next((d for d in candidates if d.job.started), candidates[0] if candidates else None)
        for stale in [*self._opens, *([ahead[1]] if ahead else [])]:
            if stale is not decode:
                stale.cancel()
        self._opens, self._taken_to = [], 0
        self._phrase += 1
        self._buffer = self._boundary = None
        self._closed_to = phrase.end
        if decode is None:
            decode = self._decode(start, phrase.end, FINAL)
        decode.job.promote()
        audio = self._slice(start, phrase.end)
        before = self._closing
        task = asyncio.get_running_loop().create_task(
            self._take_closed(decode, committer, boundary, phrase, audio, before)
        )
        self._closing = task
        await self._queue.put((task, True))

    async def _take_closed(
        self,
        decode: Decode,
        committer: Committer,
        boundary: float,
        phrase: Phrase,
        audio: np.ndarray,
        before: asyncio.Task[Piece] | None,
    ) -> Piece:
        end = phrase.end / SAMPLE_RATE
        try:
            words, heard = await decode.words()
            words += await self._skipped(words, audio, decode.start, end)
            if before is not None and not before.done():
                await asyncio.wait([before])  # the phrase before must have its final words first
        except Exception as exc:
            if isinstance(exc, CodedError):  # e.g. the upstream relay's upstream_timeout
                return Piece(boundary, end, error=ErrorFrame(code=exc.code, message=exc.message))
            message = "a phrase could not be transcribed; the stream goes on"
            return Piece(boundary, end, error=ErrorFrame(code="asr_failed", message=message))
        first = not committer.committed
        final = committer.close(words)
        piece = Piece(_piece_start(boundary, committer, final, first), max(end, boundary), final, heard=heard)
        piece.audio_start, piece.audio_s = decode.voice_span
        return piece

    async def _skipped(self, words: list[Word], audio: np.ndarray, start: int, end_s: float) -> list[Word]:
        """Words Whisper left out at the end of a phrase (``audio``, from sample ``start``).

        Given a few seconds of speech, Whisper sometimes stops after its first sentence and drops
        the rest (more often when the rest repeats words it just heard): while the last word heard
        ends well before the phrase's speech does, the rest is decoded again on its own, with a
        little audio before it as context.
        """
        found: list[Word] = []
        heard_to = words[-1].end if words else start / SAMPLE_RATE
        for _ in range(MAX_SKIPPED_DECODES):
            if self._asr is None or end_s - SPEECH_PAD_S - heard_to < SKIPPED_S:
                break
            since = max(start / SAMPLE_RATE, heard_to - SKIPPED_CONTEXT_S)
            offset = int((since - start / SAMPLE_RATE) * SAMPLE_RATE)
            try:
                segments = await self._asr.submit(audio[offset:], self.language, FINAL, self._owner).future
            except Exception:  # the phrase keeps the words its own decode heard
                log.exception("decoding the speech Whisper skipped failed")
                break
            more = [w for w in shifted(phrase_words(segments), since) if (w.start + w.end) / 2 > heard_to]
            if not more:
                break  # nothing Whisper can hear there: a noise the voice detector took for speech
            found += more
            heard_to = more[-1].end
        return found

    # -- frames out ------------------------------------------------------------------------------

    async def _emit_in_order(self) -> None:
        while (item := await self._queue.get()) is not None:
            future, holds_slot = item
            try:
                piece = await future
            finally:
                if holds_slot:
                    self._slots.release()
            if piece.error is not None:
                await self._emit(piece.error)
                continue
            for frame in self._frames(piece):
                await self._emit(frame)
            self._timed(piece.words)

    def _frames(self, piece: Piece) -> list[ServerFrame]:
        """The deltas of a piece (one per speaker turn), then the partial of the words still open."""
        labels: list[Label | None] = [None] * len(piece.words)
        provisional = None
        if piece.heard and piece.heard.windows and self._voices is not None:
            live = self._voices.live()
            self._speakers.same_voice = self._voices.same_voice(live)
            labels, provisional = piece.labels(self._speakers, live, self._diarization)
        frames = piece.frames(labels, provisional, self.segments)
        self.segments += sum(isinstance(f, DeltaFrame) for f in frames)
        if self._voices is not None:
            self._voices.named({f.speaker_id for f in frames if isinstance(f, DeltaFrame) and f.speaker_id})
        return frames

    def _timed(self, words: list[Word]) -> None:
        """Count and report how long after its audio arrived each word went out final."""
        now = time.monotonic()
        for word in words:
            arrived = self._arrivals.time_of(int(word.end * SAMPLE_RATE))
            if arrived is None:
                return
            self.words += 1
            self.late_words += now - arrived > self.max_delay_s
            if self._on_latency is not None:
                self._on_latency(now - arrived)


def _piece_start(boundary: float, committer: Committer, words: list[Word], first: bool) -> float:
    """Where a piece of final words starts: at ``boundary`` (the end of the piece before, or the
    phrase's start), or for a phrase's first words, at its first word when the phrase's context
    (after the phrase before) holds a word the voice activity detector missed."""
    if not first or not words:
        return boundary
    return max(committer.floor_s, min(boundary, words[0].start))
