"""Backend A's one Whisper model, shared by every session, fed by priority.

``workers`` decodes run at once (`ModelSettings.asr_workers`: on two cores, two single-thread
decodes get through 43 % more audio than one two-thread decode), each in its own thread, and a
free worker always takes the most urgent job: a closed phrase or a decode of the phrase being
spoken, whose words become final (`FINAL`), then a phrase decoded ahead while its closing silence
runs (`AHEAD`), then text only shown, never final (`PARTIAL`). A job decoded ahead is promoted to
`FINAL` when its phrase closes; a job nobody waits for any more is dropped before it runs.

Between sessions the queue is fair (start-time fair queuing): among jobs of the same priority,
the one whose session has used the least decode time goes first, so a client sending audio far
faster than real time takes its turn with the others instead of ahead of them. A session that
starts (or comes back from idle) begins level with the least-served active session.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from models.base import Segment, Transcriber

log = logging.getLogger("scaiecho.asr")

FINAL, AHEAD, PARTIAL = 0, 1, 2
#: Names of the priorities, as the decode counters report them.
KINDS = {FINAL: "final", AHEAD: "ahead", PARTIAL: "partial"}
#: Time constant of the load average, in seconds.
LOAD_WINDOW_S = 5.0


@dataclass(eq=False)
class AsrJob:
    """One decode; await ``future`` for its segments."""

    priority: int
    seq: int
    samples: np.ndarray
    language: str | None
    future: asyncio.Future[list[Segment]] = field(repr=False)
    #: The session the job belongs to (None: a one-off, e.g. a whole-file transcription).
    owner: str | None = None
    #: Called on the event loop as the decode starts; audio it returns is decoded instead of
    #: ``samples`` (a decode of the phrase being spoken takes all the audio there is by then).
    fresh: Callable[[], np.ndarray | None] | None = field(default=None, repr=False)
    #: A worker took it.
    started: bool = False

    def promote(self) -> None:
        """Its phrase closed: decode it before anything ahead or partial."""
        self.priority = FINAL

    def cancel(self) -> None:
        """Nobody needs the result: drop it if it has not started."""
        self.future.cancel()


class AsrScheduler:
    """Runs `Transcriber.transcribe` jobs in ``workers`` dedicated threads, most urgent first.

    Backend A's `PhraseTranscriber` (edge_server/streaming/transcribers.py).
    """

    #: Decodes ahead of a phrase's close and gives partials.
    speculative = True

    def __init__(self, transcriber: Transcriber, workers: int = 1) -> None:
        self.transcriber = transcriber
        self.workers = workers
        self._jobs: list[AsrJob] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._running: set[AsrJob] = set()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asr")
        self._worker: asyncio.Task[None] | None = None
        self._load = 0.0  # exponentially weighted share of time spent decoding phrases
        self._load_at = time.monotonic()
        self._served: dict[str | None, float] = {}  # decode seconds per owner with work queued or recent
        #: (kind, outcome) -> [decodes, seconds]: ``used`` (someone took the words), ``wasted`` (run,
        #: but cancelled meanwhile: speech went on past a guessed close), ``failed``; ``dropped`` jobs
        #: were cancelled before they ran (no seconds)
        self.decodes: dict[tuple[str, str], list[float]] = {}

    @property
    def model_name(self) -> str:
        """The loaded model's name."""
        return self.transcriber.model_name

    def _track(self) -> float:
        """Bring the load average up to now (busy while a job runs) and return it."""
        now = time.monotonic()
        decay = math.exp(-(now - self._load_at) / LOAD_WINDOW_S)
        busy = sum(1 for job in self._running if job.priority != PARTIAL) / self.workers
        self._load = self._load * decay + busy * (1.0 - decay)
        self._load_at = now
        return self._load

    @property
    def load(self) -> float:
        """Share of the workers' last few seconds (``LOAD_WINDOW_S``) spent on phrases (partials not counted), 0..1."""
        return self._track()

    @property
    def idle(self) -> bool:
        """Nothing running and nothing waiting."""
        return not self._running and not any(not j.future.done() for j in self._jobs)

    def start(self) -> None:
        """Start the worker on the running loop."""
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="asr-worker")

    async def stop(self) -> None:
        """Stop the worker, cancel waiting jobs, release the thread."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        for job in self._jobs:
            job.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def submit(
        self,
        samples: np.ndarray,
        language: str | None,
        priority: int,
        owner: str | None = None,
        fresh: Callable[[], np.ndarray | None] | None = None,
    ) -> AsrJob:
        """Queue a decode of (n,) float32 16 kHz audio for session ``owner``; ``fresh``: see `AsrJob`."""
        future = asyncio.get_running_loop().create_future()
        job = AsrJob(priority, next(self._seq), samples, language, future, owner, fresh)
        if owner not in self._served:  # a newcomer starts level with the least-served, never ahead of all
            self._served[owner] = min(self._served.values(), default=0.0)
        self._jobs.append(job)
        self._wake.set()
        return job

    def forget(self, owner: str) -> None:
        """The session ended: drop its share."""
        self._served.pop(owner, None)

    def _count(self, job: AsrJob, outcome: str, seconds: float = 0.0) -> None:
        entry = self.decodes.setdefault((KINDS[job.priority], outcome), [0, 0.0])
        entry[0] += 1
        entry[1] += seconds

    def _next(self) -> AsrJob | None:
        for job in self._jobs:
            if job.future.done():
                self._count(job, "dropped")
        self._jobs = [j for j in self._jobs if not j.future.done()]
        if not self._jobs:
            return None
        job = min(self._jobs, key=lambda j: (j.priority, self._served.get(j.owner, 0.0), j.seq))
        self._jobs.remove(job)
        return job

    async def _work(self) -> None:
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                while len(self._running) < self.workers and (job := self._next()) is not None:
                    if job.fresh is not None and (samples := job.fresh()) is not None:
                        job.samples = samples
                    job.started = True
                    self._track()
                    self._running.add(job)
                    task = asyncio.get_running_loop().create_task(self._run(job))
                    running.add(task)
                    task.add_done_callback(running.discard)
                self._wake.clear()
                await self._wake.wait()
        finally:
            for task in running:
                task.cancel()

    async def _run(self, job: AsrJob) -> None:
        started = time.monotonic()
        try:
            # partials are shown and replaced: they skip the word alignment finals need
            decode = functools.partial(self.transcriber.transcribe, words=job.priority != PARTIAL)
            result = await asyncio.get_running_loop().run_in_executor(self._executor, decode, job.samples, job.language)
        except Exception as exc:  # a failed decode fails its job, never the worker
            log.exception("ASR decode failed")
            self._count(job, "failed", time.monotonic() - started)
            if not job.future.done():
                job.future.set_exception(exc)
        else:
            self._count(job, "wasted" if job.future.done() else "used", time.monotonic() - started)
            if not job.future.done():
                job.future.set_result(result)
        finally:
            if job.owner in self._served or job.owner is None:
                self._served[job.owner] = self._served.get(job.owner, 0.0) + time.monotonic() - started
            self._track()
            self._running.discard(job)
            self._wake.set()
