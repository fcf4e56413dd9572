"""Session voices (clusters.py) and voice-change cuts (turns.py): pure, on synthetic embeddings."""

from __future__ import annotations

import numpy as np

from appliance.settings import DiarizationSettings
from edge_server.streaming.clusters import SessionClusters
from edge_server.streaming.diarization import Label, SessionSpeakers, Voice, Window
from edge_server.streaming.turns import split_turns, voice_changes

DIM = 64
RNG = np.random.default_rng(3)


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def person(similar_to: np.ndarray | None = None, closeness: float = 0.0) -> np.ndarray:
    """A voice direction; ``closeness`` mixes in another voice (people on one channel sound alike)."""
    own = unit(RNG.normal(size=DIM))
    return own if similar_to is None else unit(closeness * similar_to + (1 - closeness) * own)


def heard(who: np.ndarray, noise: float = 0.35, seed: int = 0) -> Voice:
    return Voice(unit(who + noise * unit(np.random.default_rng(seed).normal(size=DIM))), {})


A, B, C = person(), person(), person()


def test_two_voices_make_two_groups_with_stable_ids() -> None:
    clusters = SessionClusters(join=0.7, join_long=0.85, spread=0.0)
    ids = [clusters.add(heard(who, seed=i), 1.0).id for i, who in enumerate([A, B, A, B, A, B, A, B])]
    assert len(set(ids)) == 2
    assert ids[0::2] == [ids[0]] * 4 and ids[1::2] == [ids[1]] * 4


def test_an_early_split_of_one_voice_merges_later_under_the_older_id() -> None:
    """Two short stretches of one voice too far apart to join alone are bridged by later evidence; the
    merged voice keeps the id most of its seconds carried."""
    clusters = SessionClusters(join=0.7, join_long=0.7, spread=0.0)
    first = clusters.add(heard(A, noise=0.9, seed=1), 3.0)
    second = clusters.add(heard(A, noise=0.9, seed=2), 1.0)
    assert first.id != second.id
    for seed in range(3, 12):
        last = clusters.add(heard(A, noise=0.1, seed=seed), 1.0)
    assert last.id == first.id
    assert len(clusters.groups) == 1


def test_voices_that_sound_alike_stay_apart_once_each_has_long_evidence() -> None:
    """On one channel two people's long groups are close (~0.8); the level for long groups keeps them apart."""
    one = person()
    other = person(one, closeness=0.55)
    clusters = SessionClusters(join=0.72, join_long=0.9, spread=0.0)
    for i in range(12):
        clusters.add(heard(one if i % 2 == 0 else other, noise=0.25, seed=i), 1.5)
    assert len(clusters.groups) == 2


def test_compaction_keeps_ids_and_bounds_memory() -> None:
    clusters = SessionClusters(join=0.7, join_long=0.85, spread=0.0, max_items=20)
    ids: dict[int, set[int]] = {who_index: set() for who_index in range(3)}
    for i in range(90):
        group = clusters.add(heard((A, B, C)[i % 3], seed=i), 1.0)
        ids[i % 3].add(group.id)
    assert len(clusters.items) <= 21
    assert all(len(seen) == 1 for seen in ids.values())
    assert len({next(iter(seen)) for seen in ids.values()}) == 3


def test_memory_stays_bounded_when_no_voice_repeats() -> None:
    clusters = SessionClusters(join=0.99, join_long=0.99, spread=0.0, max_items=20)
    for i in range(60):
        clusters.add(heard(person(), seed=i), 1.0)
    assert len(clusters.items) <= 20


def test_a_short_new_voice_borrows_the_closest_label_until_it_has_seconds() -> None:
    speakers = SessionSpeakers(DiarizationSettings(new_voice_s=2.0, cluster_attach=-0.99, cluster_join=0.95))
    first = speakers.decide(heard(A, seed=1), 3.0, {})
    assert first == Label("spk_0")
    # a different voice, but only 1 s of it so far: no new spk_N yet
    assert speakers.decide(heard(B, noise=0.05, seed=2), 1.0, {}) == Label("spk_0")
    assert speakers.decide(heard(B, noise=0.05, seed=3), 1.5, {}) == Label("spk_1")


def test_a_voice_that_carried_a_borrowed_label_longest_keeps_it() -> None:
    """An early stretch too short to embed well opens spk_0; the voice heard since borrows spk_0
    and, once it has its own seconds, keeps it (the early stretch's voice gets a new number)."""
    speakers = SessionSpeakers(DiarizationSettings(new_voice_s=2.0, cluster_attach=-0.99, cluster_join=0.95))
    assert speakers.decide(heard(C, noise=0.05, seed=1), 0.6, {}) == Label("spk_0")
    assert speakers.decide(heard(A, noise=0.05, seed=2), 1.0, {}) == Label("spk_0")  # borrowed
    assert speakers.decide(heard(A, noise=0.05, seed=3), 1.5, {}) == Label("spk_0")  # kept, not spk_1
    assert speakers.decide(heard(C, noise=0.05, seed=4), 2.0, {}) == Label("spk_1")


def test_forget_drops_every_embedding() -> None:
    speakers = SessionSpeakers(DiarizationSettings())
    speakers.decide(heard(A), 2.0, {})
    speakers.forget()
    assert speakers.clusters.items == [] and speakers.clusters.groups == []


def windows_of(voices: list[np.ndarray], step: float = 0.4, length: float = 1.6) -> list[Window]:
    return [Window(i * step, i * step + length, heard(v, 0.2, i).embedding, {}) for i, v in enumerate(voices)]


def test_a_voice_change_cuts_a_turn_nobody_enrolled() -> None:
    windows = windows_of([A] * 8 + [B] * 8)
    changes = voice_changes(windows, 0.7)
    assert len(changes) == 1 and abs(changes[0][0] - 3.2) <= 0.4
    turns = split_turns(windows, 16 * 0.4 + 1.2, [], DiarizationSettings(change_below=0.7, min_turn_s=1.0))
    assert len(turns) == 2
    assert float(np.dot(turns[0].voice.embedding, A)) > float(np.dot(turns[0].voice.embedding, B))


def test_one_odd_window_is_no_voice_change() -> None:
    windows = windows_of([A] * 6 + [B] + [A] * 6)
    assert voice_changes(windows, 0.7) == []


def test_a_change_too_close_to_the_end_waits() -> None:
    windows = windows_of([A] * 10 + [B] * 2)
    duration = 11 * 0.4 + 1.6
    assert len(split_turns(windows, duration, [], DiarizationSettings(min_turn_s=2.5))) == 1
    assert len(split_turns(windows, duration, [], DiarizationSettings(min_turn_s=1.5))) == 2
