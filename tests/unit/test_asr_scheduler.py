"""The shared ASR queue: most urgent first, dropped jobs never run, promotion jumps the queue."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from edge_server.streaming.asr_scheduler import AHEAD, FINAL, PARTIAL, AsrScheduler
from models.base import Segment


class RecordingEngine:
    """Records the order of decodes; the first one blocks until released, so a queue can build up."""

    model_name = "recording"

    def __init__(self) -> None:
        self.order: list[float] = []
        self.release = threading.Event()

    def transcribe(self, samples: np.ndarray, language: str | None = None, words: bool = True) -> list[Segment]:
        if not self.order:
            self.release.wait(5)
        self.order.append(float(samples[0]))
        if samples[0] < 0:
            raise RuntimeError("engine failure")
        return [Segment(0.0, 1.0, f"job {samples[0]:g}")]


def job_audio(tag: float) -> np.ndarray:
    return np.full(1600, tag, dtype=np.float32)


async def test_priorities_promotion_and_cancellation() -> None:
    engine = RecordingEngine()
    scheduler = AsrScheduler(engine)
    scheduler.start()
    try:
        first = scheduler.submit(job_audio(1), None, PARTIAL)
        await asyncio.sleep(0.05)  # the worker is now blocked inside job 1
        partial = scheduler.submit(job_audio(2), None, PARTIAL)
        ahead = scheduler.submit(job_audio(3), None, AHEAD)
        dropped = scheduler.submit(job_audio(4), None, AHEAD)
        final = scheduler.submit(job_audio(5), None, FINAL)
        promoted = scheduler.submit(job_audio(6), None, AHEAD)
        promoted.promote()
        dropped.cancel()
        assert not scheduler.idle
        engine.release.set()
        results = await asyncio.gather(first.future, partial.future, ahead.future, final.future, promoted.future)
        assert [r[0].text for r in results] == ["job 1", "job 2", "job 3", "job 5", "job 6"]
        assert engine.order == [1, 5, 6, 3, 2]
        assert scheduler.idle
        counts = {key: int(value[0]) for key, value in scheduler.decodes.items()}
        assert counts == {("partial", "used"): 2, ("final", "used"): 2, ("ahead", "used"): 1, ("ahead", "dropped"): 1}
    finally:
        await scheduler.stop()


async def test_a_decode_cancelled_while_it_runs_counts_as_wasted() -> None:
    engine = RecordingEngine()
    scheduler = AsrScheduler(engine)
    scheduler.start()
    try:
        running = scheduler.submit(job_audio(1), None, AHEAD)
        await asyncio.sleep(0.05)  # inside the engine
        running.cancel()  # speech went on: the guessed close was wrong
        engine.release.set()
        while scheduler.decodes.get(("ahead", "wasted")) is None:
            await asyncio.sleep(0.01)
        assert scheduler.decodes[("ahead", "wasted")][0] == 1 and scheduler.decodes[("ahead", "wasted")][1] > 0
    finally:
        await scheduler.stop()


async def test_a_failing_decode_fails_its_job_only() -> None:
    engine = RecordingEngine()
    engine.release.set()
    scheduler = AsrScheduler(engine)
    scheduler.start()
    try:
        bad = scheduler.submit(job_audio(-1), None, FINAL)
        good = scheduler.submit(job_audio(7), None, FINAL)
        outcome = await asyncio.gather(bad.future, good.future, return_exceptions=True)
        assert isinstance(outcome[0], RuntimeError)
        assert outcome[1] == [Segment(0.0, 1.0, "job 7")]
    finally:
        await scheduler.stop()


async def test_a_session_flooding_the_queue_does_not_delay_another_sessions_phrase() -> None:
    """Fair between sessions: within a priority, the least-served session goes first."""
    engine = RecordingEngine()
    scheduler = AsrScheduler(engine)
    scheduler.start()
    try:
        jobs = [scheduler.submit(job_audio(1), None, FINAL, owner="fast")]
        await asyncio.sleep(0.05)  # the worker is blocked inside the fast session's first phrase
        jobs += [scheduler.submit(job_audio(10 + i), None, FINAL, owner="fast") for i in range(4)]
        jobs.append(scheduler.submit(job_audio(99), None, FINAL, owner="live"))
        engine.release.set()
        await asyncio.gather(*(j.future for j in jobs))
        # the live session's phrase runs right after the one in progress, not after the fast four
        assert engine.order[:2] == [1.0, 99.0]
        assert engine.order[2:] == [10.0, 11.0, 12.0, 13.0]
    finally:
        await scheduler.stop()


async def test_without_owners_the_queue_keeps_its_order() -> None:
    engine = RecordingEngine()
    scheduler = AsrScheduler(engine)
    scheduler.start()
    try:
        jobs = [scheduler.submit(job_audio(tag), None, FINAL) for tag in (1, 2, 3)]
        engine.release.set()
        await asyncio.gather(*(j.future for j in jobs))
        assert engine.order == [1.0, 2.0, 3.0]
    finally:
        await scheduler.stop()


async def test_a_job_that_waited_its_turn_decodes_the_audio_there_is_when_it_starts() -> None:
    engine = RecordingEngine()
    scheduler = AsrScheduler(engine)
    scheduler.start()
    newest = [7.0]
    try:
        first = scheduler.submit(job_audio(1), None, FINAL)
        await asyncio.sleep(0.05)  # the worker is now blocked inside job 1
        waiting = scheduler.submit(job_audio(2), None, FINAL, fresh=lambda: job_audio(newest[0]))
        kept = scheduler.submit(job_audio(3), None, FINAL, fresh=lambda: None)
        newest[0] = 8.0  # more audio came while it waited
        assert not waiting.started and first.started
        engine.release.set()
        await asyncio.gather(first.future, waiting.future, kept.future)
        assert engine.order == [1, 8, 3]  # the newest audio; None keeps what was submitted
        assert waiting.started and kept.started
    finally:
        await scheduler.stop()
