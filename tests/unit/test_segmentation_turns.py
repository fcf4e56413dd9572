"""Frame activity of the segmentation model -> turns of one local speaker each (pure)."""

from __future__ import annotations

import numpy as np

from models.segmentation import MAX_SOLO_S, LocalTurn, dominant, local_turns, solo_audio, speaker_voices

STEP = 0.02  # seconds per frame in these tests


def frames(*runs: tuple[float, tuple[int, ...]]) -> np.ndarray:
    """Activity (frames, 3) from (seconds, active speakers) runs."""
    rows = []
    for seconds, active in runs:
        row = np.zeros(3, dtype=np.int8)
        row[list(active)] = 1
        rows += [row] * round(seconds / STEP)
    return np.array(rows)


def test_two_speakers_with_a_pause_are_cut_in_the_middle_of_the_pause() -> None:
    act = frames((1.0, (0,)), (0.4, ()), (1.0, (1,)))
    turns = local_turns(act, STEP, 2.4)
    assert [t.speaker for t in turns] == [0, 1]
    assert abs(turns[0].end - 1.2) < 0.03
    assert turns[0].start == 0.0 and turns[-1].end == 2.4
    assert turns[1].start == turns[0].end


def test_a_pause_inside_one_speakers_speech_stays_one_turn() -> None:
    act = frames((0.2, ()), (1.0, (2,)), (0.5, ()), (1.0, (2,)), (0.3, ()))
    assert local_turns(act, STEP, 3.0) == [LocalTurn(0.0, 3.0, 2)]


def test_a_blip_of_another_speaker_is_absorbed() -> None:
    act = frames((1.0, (0,)), (0.1, (1,)), (1.0, (0,)))
    assert [t.speaker for t in local_turns(act, STEP, 2.1)] == [0]


def test_a_short_real_turn_is_kept() -> None:
    act = frames((1.0, (0,)), (0.5, (1,)), (1.0, (0,)))
    turns = local_turns(act, STEP, 2.5)
    assert [t.speaker for t in turns] == [0, 1, 0]
    assert abs(turns[1].start - 1.0) < 0.03 and abs(turns[1].end - 1.5) < 0.03


def test_overlap_belongs_to_who_held_the_floor_until_they_stop() -> None:
    act = frames((1.0, (0,)), (0.4, (0, 1)), (1.0, (1,)))
    labels = dominant(act)
    assert (labels[: round(1.4 / STEP)] == 0).all()
    assert (labels[round(1.4 / STEP) :] == 1).all()
    turns = local_turns(act, STEP, 2.4)
    assert [t.speaker for t in turns] == [0, 1]
    assert abs(turns[0].end - 1.4) < 0.03


def test_no_speech_is_one_turn_of_nobody() -> None:
    assert local_turns(frames((1.0, ())), STEP, 1.0) == [LocalTurn(0.0, 1.0, -1)]


def test_solo_audio_takes_only_the_frames_where_the_speaker_is_alone() -> None:
    act = frames((1.0, (0,)), (0.5, (0, 1)), (0.5, (1,)))
    samples = np.arange(int(2.0 * 16000), dtype=np.float32)
    alone = solo_audio(samples, act, 1, STEP)
    assert len(alone) == 8000
    assert alone[0] == samples[int(1.5 * 16000)]
    assert len(solo_audio(samples, act, 2, STEP)) == 0


def test_a_short_stretch_after_a_pause_joins_its_own_speaker() -> None:
    act = frames((1.0, (0,)), (0.4, ()), (0.1, (0,)), (0.4, ()), (0.1, (1,)), (0.5, ()), (1.0, (0,)))
    assert [t.speaker for t in local_turns(act, STEP, 3.5)] == [0]


class CountingEmbedder:
    """Records what it is asked to embed; every voice it returns is the same vector."""

    window_s = 1.6

    def __init__(self) -> None:
        self.passes: list[int] = []

    def embed(self, samples: np.ndarray, step_s: float | None = None) -> np.ndarray:
        assert step_s == self.window_s  # back-to-back windows
        self.passes.append(len(samples))
        return np.array([0.0, 1.0], dtype=np.float32)


def test_one_speaker_is_embedded_on_their_speech_not_the_pauses_between() -> None:
    act = frames((1.0, (1,)), (1.0, ()), (1.0, (1,)))
    embedder = CountingEmbedder()
    starts = np.array([0.0, 0.4, 0.8, 1.2])
    data = np.array([[1.0, 0.0]] * 4, dtype=np.float32)
    voices = speaker_voices(np.zeros(48000, np.float32), act, STEP, {1}, embedder, (starts, data))  # type: ignore[arg-type]
    assert embedder.passes == [32000]
    vector, seconds = voices[1]
    assert np.allclose(vector, [0.0, 1.0]) and abs(seconds - 2.0) < 0.05


def test_several_speakers_are_each_embedded_once_on_their_latest_speech_alone() -> None:
    act = frames((7.0, (0,)), (0.3, (1,)), (2.0, (2,)))
    embedder = CountingEmbedder()
    starts = np.arange(0.0, 8.0, 0.4)
    data = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (len(starts), 1))
    voices = speaker_voices(np.zeros(int(9.3 * 16000), np.float32), act, STEP, {0, 1, 2}, embedder, (starts, data))  # type: ignore[arg-type]
    # speaker 0: capped at its latest MAX_SOLO_S; speaker 2: all of its 2 s; speaker 1 (0.3 s): windows
    assert sorted(embedder.passes) == [2 * 16000, int(MAX_SOLO_S * 16000)]
    assert np.allclose(voices[1][0], [1.0, 0.0]) and abs(voices[1][1] - 0.3) < 0.05
    assert abs(voices[0][1] - 7.0) < 0.05  # the seconds say how long it was heard alone, not the cap


def test_a_voice_that_only_overlaps_still_keeps_the_floor_holders_voice_pure() -> None:
    """B talks over A but never takes the floor: one turn, A's, and A's voice is A's speech alone."""
    act = frames((2.0, (0,)), (0.6, (0, 1)), (1.0, (0,)))
    embedder = CountingEmbedder()
    starts = np.arange(0.0, 2.0, 0.4)
    data = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (len(starts), 1))
    assert [t.speaker for t in local_turns(act, STEP, 3.6)] == [0]
    voices = speaker_voices(np.zeros(int(3.6 * 16000), np.float32), act, STEP, {0}, embedder, (starts, data))  # type: ignore[arg-type]
    assert embedder.passes == [int(3.0 * 16000)]
    assert abs(voices[0][1] - 3.0) < 0.05
