"""What a session's queue carries: decodes of stretches of the stream, and the pieces of final text
they yield (words in stream time, the stretch they tile, the evidence of who spoke them)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from appliance.settings import DiarizationSettings
from edge_server.streaming.commit import shifted
from edge_server.streaming.deltas import phrase_deltas, phrase_words
from edge_server.streaming.diarization import Label, SessionSpeakers
from edge_server.streaming.evidence import Heard
from edge_server.streaming.labelling import label_words
from edge_server.streaming.protocol import ErrorFrame, PartialFrame, ServerFrame
from edge_server.streaming.transcribers import PhraseJob
from models.audio import SAMPLE_RATE
from models.base import Word

log = logging.getLogger("scaiecho.session")


@dataclass
class Piece:
    """Words made final together (stream times), the stretch of stream they tile, and who spoke them."""

    start: float
    end: float
    words: list[Word] = field(default_factory=list)
    #: Words still open after these (a partial), when the phrase is still being spoken.
    tentative: list[Word] = field(default_factory=list)
    #: What the node heard of the decoded audio (windows, turns), which starts at ``audio_start`` and
    #: lasts ``audio_s``.
    heard: Heard | None = None
    audio_start: float = 0.0
    audio_s: float = 0.0
    error: ErrorFrame | None = None

    def labels(
        self, speakers: SessionSpeakers, live: dict[str, str], settings: DiarizationSettings
    ) -> tuple[list[Label | None], Label | None]:
        """Who spoke each final word (the session learns) and, provisionally, the open words."""
        if self.heard is None or not self.heard.windows:
            return [None] * len(self.words), None
        return label_words(
            speakers,
            shifted(self.words, -self.audio_start),
            shifted(self.tentative, -self.audio_start),
            self.heard.windows,
            self.audio_s,
            live,
            settings,
            self.heard.turns,
        )

    def frames(self, labels: list[Label | None], provisional: Label | None, first_id: int) -> list[ServerFrame]:
        """The deltas (one per run of words with the same label, numbered from ``first_id``), then a
        partial of the open words."""
        words = shifted(self.words, -self.start)
        frames: list[ServerFrame] = [*phrase_deltas(words, labels, self.start, self.end - self.start, first_id)]
        if self.tentative:
            text = "".join(w.text for w in self.tentative).strip()
            label = provisional.label if provisional else None
            frames.append(PartialFrame(text=text, start=round(self.tentative[0].start, 3), speaker_label=label))
        return frames


@dataclass
class Decode:
    """A decode of the stream from sample ``start`` to ``end``, with the embedding of the same audio."""

    start: int
    end: int
    job: PhraseJob
    voice: asyncio.Task[Heard | None] | None
    #: Which phrase of the session it decodes (a session counts its closed phrases).
    phrase: int = 0
    #: Where the audio embedded for the voice starts (the phrase's own start, after its context).
    voice_start: int = 0

    @property
    def voice_span(self) -> tuple[float, float]:
        """Start (seconds into the stream) and length of the audio embedded for the voice."""
        return self.voice_start / SAMPLE_RATE, (self.end - self.voice_start) / SAMPLE_RATE

    def cancel(self) -> None:
        self.job.cancel()
        if self.voice is not None:
            self.voice.cancel()

    async def words(self) -> tuple[list[Word], Heard | None]:
        """The decoded words in stream time and what the node heard (None when embedding failed);
        raises what the transcriber raised."""
        try:
            segments = await self.job.future
        except BaseException:
            if self.voice is not None:
                self.voice.cancel()
            raise
        heard = None
        if self.voice is not None:
            try:
                heard = await self.voice
            except Exception:
                log.exception("embedding a phrase failed")
        return shifted(phrase_words(segments), self.start / SAMPLE_RATE), heard
