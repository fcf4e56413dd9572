"""The label decision (pure): enrolled names on clear evidence only, stable spk_N otherwise."""

from __future__ import annotations

import numpy as np

from appliance.settings import DiarizationSettings
from edge_server.streaming.diarization import Label, SessionSpeakers, Voice, Window, merge, split_turns

RNG = np.random.default_rng(0)
DIM = 64


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


ALICE, BOB, CAROL, DAVE = (unit(RNG.normal(size=DIM)) for _ in range(4))
ENROLLED = {"spk_alice": ALICE, "spk_bob": BOB}
LIVE = {"spk_alice": "Alice", "spk_bob": "Bob"}


def voice_near(who: np.ndarray, noise: float = 0.3, seed: int = 0) -> Voice:
    v = unit(who + noise * unit(np.random.default_rng(seed).normal(size=DIM)))
    return Voice(v, {s: float(np.dot(e, v)) for s, e in ENROLLED.items()})


def window(who: np.ndarray, start: float, seed: int) -> Window:
    v = voice_near(who, 0.3, seed)
    return Window(start, start + 1.6, v.embedding, v.scores)


def test_a_clear_match_gets_the_name_id_and_confidence() -> None:
    label = SessionSpeakers(DiarizationSettings()).decide(voice_near(ALICE), 3.0, LIVE)
    assert label is not None and (label.label, label.speaker_id) == ("Alice", "spk_alice")
    assert label.confidence is not None and label.confidence >= 0.8


def test_unknown_voices_get_stable_session_clusters() -> None:
    speakers = SessionSpeakers(DiarizationSettings())
    labels = [speakers.decide(voice_near(who, seed=i), 2.0, LIVE) for i, who in enumerate([CAROL, DAVE, CAROL, DAVE])]
    assert labels == [Label("spk_0"), Label("spk_1"), Label("spk_0"), Label("spk_1")]


def test_an_erased_speaker_is_never_named() -> None:
    label = SessionSpeakers(DiarizationSettings()).decide(voice_near(ALICE), 3.0, {"spk_bob": "Bob"})
    assert label == Label("spk_0")


def test_a_short_phrase_needs_the_sessions_evidence() -> None:
    speakers = SessionSpeakers(DiarizationSettings(min_speech_s=1.0))
    assert speakers.decide(voice_near(ALICE, seed=1), 0.6, LIVE) == Label("spk_0")  # too little on its own
    long = speakers.decide(voice_near(ALICE, seed=2), 3.0, LIVE)
    assert long is not None and long.label == "Alice"
    short = speakers.decide(voice_near(ALICE, seed=3), 0.6, LIVE)
    assert short is not None and short.label == "Alice"  # the cluster now carries the name


def test_no_voice_no_label() -> None:
    assert SessionSpeakers(DiarizationSettings()).decide(None, 3.0, LIVE) is None


def test_a_close_runner_up_withholds_the_name() -> None:
    both = unit(ALICE + BOB)
    voice = Voice(both, {"spk_alice": 0.85, "spk_bob": 0.83})
    assert SessionSpeakers(DiarizationSettings(margin=0.05)).decide(voice, 3.0, LIVE) == Label("spk_0")


def test_merge_scores_equal_the_cosine_of_the_mean() -> None:
    windows = [window(ALICE, 0.5 * i, i) for i in range(5)]
    merged = merge(windows)
    assert abs(np.linalg.norm(merged.embedding) - 1) < 1e-5
    for speaker_id, vector in ENROLLED.items():
        assert abs(merged.scores[speaker_id] - float(np.dot(vector, merged.embedding))) < 1e-5


def test_turns_are_cut_where_the_enrolled_voice_changes() -> None:
    windows = [window(ALICE, 0.5 * i, i) for i in range(6)] + [window(BOB, 0.5 * i, i) for i in range(6, 12)]
    turns = split_turns(windows, 7.6, LIVE, DiarizationSettings())
    assert len(turns) == 2
    assert turns[0].start == 0 and turns[1].end == 7.6
    assert abs(turns[0].end - 3.55) < 1e-6  # halfway between the centres of windows 5 and 6
    speakers = SessionSpeakers(DiarizationSettings())
    names = [speakers.decide(t.voice, t.end - t.start, LIVE) for t in turns]
    assert [n.label for n in names if n] == ["Alice", "Bob"]


def test_one_odd_window_does_not_make_a_turn() -> None:
    windows = (
        [window(ALICE, 0.5 * i, i) for i in range(5)]
        + [window(BOB, 2.5, 9)]
        + [window(ALICE, 0.5 * i, i) for i in range(6, 10)]
    )
    assert len(split_turns(windows, 6.0, LIVE, DiarizationSettings(min_turn_windows=2))) == 1


def test_a_short_first_run_of_enrolled_scores_joins_the_next() -> None:
    blip = window(ALICE, 0.0, 1)
    windows = [Window(0.0, 1.6, blip.embedding, {"spk_alice": 0.3, "spk_bob": 0.95})]
    windows += [window(ALICE, 0.5 * i, i) for i in range(1, 8)]
    turns = split_turns(windows, 5.0, LIVE, DiarizationSettings(min_turn_windows=2))
    assert len(turns) == 1 and (turns[0].start, turns[0].end) == (0.0, 5.0)


def test_a_similar_voice_scoring_far_below_the_sessions_best_is_not_named() -> None:
    speakers = SessionSpeakers(DiarizationSettings(accept=0.8, session_margin=0.08))
    genuine = Voice(ALICE, {"spk_alice": 0.96})
    lookalike = Voice(unit(ALICE + 0.6 * CAROL), {"spk_alice": 0.84})
    speakers.observe([(lookalike, 3.0), (genuine, 3.0)], {"spk_alice": "Alice"})
    assert speakers.decide(lookalike, 3.0, {"spk_alice": "Alice"}) == Label("spk_0")
    named = speakers.decide(genuine, 3.0, {"spk_alice": "Alice"})
    assert named is not None and named.label == "Alice"


def test_two_profiles_of_one_voice_do_not_cancel_each_other() -> None:
    """One person enrolled twice scores high on both profiles; the margin is against other people."""
    live = {"spk_alice": "Alice", "spk_alice2": "Alice (2)", "spk_bob": "Bob"}
    voice = Voice(ALICE, {"spk_alice": 0.90, "spk_alice2": 0.89, "spk_bob": 0.40})
    alone = SessionSpeakers(DiarizationSettings(margin=0.05))
    assert alone.decide(voice, 3.0, live) == Label("spk_0")  # without knowing they are one voice
    speakers = SessionSpeakers(DiarizationSettings(margin=0.05))
    speakers.same_voice = {"spk_alice": frozenset({"spk_alice2"}), "spk_alice2": frozenset({"spk_alice"})}
    label = speakers.decide(voice, 3.0, live)
    assert label is not None and (label.label, label.speaker_id) == ("Alice", "spk_alice")
    # a different person close behind still withholds the name
    close = Voice(ALICE, {"spk_alice": 0.90, "spk_alice2": 0.89, "spk_bob": 0.88})
    fresh = SessionSpeakers(DiarizationSettings(margin=0.05))
    fresh.same_voice = speakers.same_voice
    assert fresh.decide(close, 3.0, live) == Label("spk_0")


def test_turn_cutting_treats_profiles_of_one_voice_as_one() -> None:
    settings = DiarizationSettings(margin=0.05, window_accept=0.8)
    windows = [Window(0.8 * i, 0.8 * i + 1.6, ALICE, {"a": 0.9, "a2": 0.89, "b": 0.3}) for i in range(4)]
    windows += [Window(0.8 * i, 0.8 * i + 1.6, BOB, {"a": 0.3, "a2": 0.3, "b": 0.9}) for i in range(4, 8)]
    same = {"a": frozenset({"a2"}), "a2": frozenset({"a"})}
    assert len(split_turns(windows, 8.0, ["a", "a2", "b"], settings, same)) == 2
