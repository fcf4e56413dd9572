"""Phrase segmentation from speech probabilities (pure)."""

from __future__ import annotations

import numpy as np

from models.vad import CHUNK, Phrase, PhraseSegmenter


def probs(*runs: tuple[float, int]) -> np.ndarray:
    return np.concatenate([np.full(n, p, np.float32) for p, n in runs])


def test_one_phrase_with_padding() -> None:
    seg = PhraseSegmenter(pad_s=0.1)
    closed = seg.push(probs((0.0, 10), (0.9, 50), (0.0, 20)))
    pad = int(0.1 * 16000)
    assert closed == [Phrase(10 * CHUNK - pad, 60 * CHUNK + pad)]
    assert seg.open_since is None and seg.flush() == []


def test_short_pause_does_not_split_but_a_long_one_does() -> None:
    seg = PhraseSegmenter(min_silence_s=0.4)  # 13 chunks of 32 ms
    assert seg.push(probs((0.9, 20), (0.1, 5), (0.9, 20))) == []
    assert seg.open_since == 0
    closed = seg.push(probs((0.1, 13), (0.9, 10), (0.1, 13)))
    assert len(closed) == 2
    assert closed[0].end < closed[1].start


def test_hysteresis_keeps_a_phrase_open_in_between_thresholds() -> None:
    seg = PhraseSegmenter(threshold=0.5)
    assert seg.push(probs((0.2, 5), (0.4, 30))) == []  # never reached 0.5: nothing opened
    assert seg.open_since is None
    assert seg.push(probs((0.6, 5), (0.4, 30))) == []  # opened, and 0.4 >= 0.35 keeps it open
    assert seg.open_since is not None


def test_long_speech_is_cut_at_the_maximum() -> None:
    seg = PhraseSegmenter(max_phrase_s=2.0, pad_s=0.0)  # 62 chunks
    closed = seg.push(probs((0.9, 150)))
    assert [p.end - p.start for p in closed] == [62 * CHUNK, 62 * CHUNK]
    tail = seg.flush()
    assert len(tail) == 1 and tail[0].end == 150 * CHUNK


def test_flush_closes_the_open_phrase() -> None:
    seg = PhraseSegmenter(pad_s=0.0)
    seg.push(probs((0.0, 3), (0.9, 10)))
    assert seg.flush() == [Phrase(3 * CHUNK, 13 * CHUNK)]


def test_tentative_phrase_equals_the_phrase_that_closes() -> None:
    seg = PhraseSegmenter(min_silence_s=0.4, pad_s=0.1)
    seg.push(probs((0.0, 5), (0.9, 40), (0.1, 2)))
    assert seg.tentative(0.1) is None  # 64 ms of silence: not yet
    seg.push(probs((0.1, 3)))
    guess = seg.tentative(0.1)
    assert guess is not None
    closed = seg.push(probs((0.1, 10)))
    assert closed == [guess]
    assert seg.tentative(0.1) is None


def test_tentative_phrase_is_void_when_speech_returns() -> None:
    seg = PhraseSegmenter(min_silence_s=0.4, pad_s=0.1)
    seg.push(probs((0.9, 40), (0.1, 6)))
    guess = seg.tentative(0.1)
    closed = seg.push(probs((0.9, 10), (0.1, 13)))
    assert guess is not None and closed[0].end > guess.end
