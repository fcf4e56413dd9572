"""The one interface a session transcribes closed phrases through, Backend A or B alike.

Backend A is the shared Whisper queue (`AsrScheduler`: priorities, fair turns, decode-ahead and
partials); Backend B is the upstream relay, wrapped here as `RelayTranscriber`, which only
transcribes closed phrases. A session submits a phrase and awaits its job's future; a job that
fails carries a `CodedError` whose code and message become the session's error frame.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import numpy as np

from edge_server.streaming.relay import SpeechRelay
from models.base import Segment


class PhraseJob(Protocol):
    """One phrase being transcribed."""

    future: asyncio.Future[list[Segment]]
    #: It is being transcribed (no longer waiting its turn).
    started: bool

    def promote(self) -> None:
        """Its phrase closed: it is needed now."""

    def cancel(self) -> None:
        """Nobody waits for it any more."""


class PhraseTranscriber(Protocol):
    """Transcribes phrases of (n,) float32 16 kHz audio for sessions (``owner``)."""

    #: True when it can decode ahead of a phrase's close and give partials (Backend A).
    speculative: bool

    def submit(self, samples: np.ndarray, language: str | None, priority: int, owner: str | None = None) -> PhraseJob:
        """Queue one phrase."""
        ...

    def forget(self, owner: str) -> None:
        """The session ended."""
        ...


class RelayJob:
    """A phrase sent to the upstream relay (no priorities: it is sent at once)."""

    def __init__(self, task: asyncio.Task[list[Segment]]) -> None:
        self.future: asyncio.Future[list[Segment]] = task
        self.started = True

    def promote(self) -> None:
        """Already on its way."""

    def cancel(self) -> None:
        """Stop waiting for the upstream."""
        self.future.cancel()


class RelayTranscriber:
    """Backend B behind the session's interface."""

    speculative = False

    def __init__(self, relay: SpeechRelay) -> None:
        self.relay = relay

    def submit(self, samples: np.ndarray, language: str | None, priority: int, owner: str | None = None) -> RelayJob:
        """Send the phrase to the upstream now."""
        return RelayJob(asyncio.get_running_loop().create_task(self.relay.transcribe(samples, language)))

    def forget(self, owner: str) -> None:
        """Nothing is kept per session."""
