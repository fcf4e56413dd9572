"""A phrase's words and turns become deltas: grouped by speaker, tiling the phrase."""

from __future__ import annotations

import numpy as np

from edge_server.streaming.deltas import phrase_deltas, phrase_words
from edge_server.streaming.diarization import Label, Turn, Voice
from edge_server.streaming.labelling import turn_of
from models.base import Segment, Word

ALICE = Label("Alice", "spk_a", 0.9)
UNKNOWN = Label("spk_0")
WORDS = [Word(0.2, 0.5, " Hello"), Word(0.6, 0.9, " there."), Word(1.5, 1.8, " Hi"), Word(1.9, 2.2, " Alice.")]


def turn(start: float, end: float) -> Turn:
    return Turn(start, end, Voice(np.zeros(4, np.float32), {}))


def test_words_take_the_label_of_the_turn_holding_their_middle() -> None:
    labels = [[ALICE, UNKNOWN][i] for i in turn_of(WORDS, [turn(0.0, 1.2), turn(1.2, 2.5)])]
    assert labels == [ALICE, ALICE, UNKNOWN, UNKNOWN]


def test_one_delta_per_speaker_run_cut_halfway_between_their_words() -> None:
    deltas = phrase_deltas(WORDS, [ALICE, ALICE, UNKNOWN, UNKNOWN], offset_s=10.0, duration_s=2.5, first_id=7)
    assert [(d.segment_id, d.text, d.start, d.end, d.speaker_label) for d in deltas] == [
        (7, "Hello there.", 10.0, 11.2, "Alice"),
        (8, "Hi Alice.", 11.2, 12.5, "spk_0"),
    ]
    assert deltas[0].speaker_id == "spk_a" and deltas[1].speaker_id is None  # ids only for enrolled names


def test_without_labels_a_phrase_is_one_delta_and_the_text_is_every_word() -> None:
    deltas = phrase_deltas(WORDS, [None] * 4, offset_s=0.0, duration_s=2.5, first_id=0)
    assert [(d.text, d.start, d.end, d.speaker_label) for d in deltas] == [("Hello there. Hi Alice.", 0.0, 2.5, None)]


def test_segments_without_word_timings_count_as_one_word_and_blank_words_go() -> None:
    segments = [Segment(0.0, 1.0, "no timings"), Segment(1.0, 2.0, "x", (Word(1.0, 1.2, " "), Word(1.2, 2.0, " x")))]
    assert [w.text for w in phrase_words(segments)] == [" no timings", " x"]
