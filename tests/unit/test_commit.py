"""The commit rule of the phrase being spoken: agreement of two decodes, the delay bound, the close."""

from __future__ import annotations

import pytest

from edge_server.streaming.arrivals import Arrivals
from edge_server.streaming.commit import Committer, buffer_cut, normal
from models.base import Word


def words(*spec: tuple[float, str]) -> list[Word]:
    """Words of 0.3 s starting at the given times."""
    return [Word(start, start + 0.3, " " + text) for start, text in spec]


def texts(found: list[Word]) -> list[str]:
    return [normal(w.text) for w in found]


def test_two_agreeing_decodes_commit_their_common_prefix_only() -> None:
    committer = Committer(max_delay_s=10.0)
    first = committer.update(words((0.0, "the"), (0.4, "cat"), (0.8, "sad")), 1.2, 1.3, 0.5)
    assert first.committed == [] and texts(first.tentative) == ["the", "cat", "sad"]
    second = committer.update(words((0.0, "The"), (0.4, "cat,"), (0.8, "sat"), (1.2, "on")), 1.6, 1.7, 0.5)
    assert texts(second.committed) == ["the", "cat"]
    assert [w.text for w in second.committed] == [" The", " cat,"]  # the newest decode's spelling
    assert texts(second.tentative) == ["sat", "on"]


def test_a_committed_word_never_changes_and_is_never_sent_twice() -> None:
    committer = Committer(max_delay_s=10.0)
    committer.update(words((0.0, "we"), (0.4, "go")), 0.8, 0.9, 0.5)
    committer.update(words((0.0, "we"), (0.4, "go"), (0.8, "home")), 1.2, 1.3, 0.5)
    # a later decode hears the committed words differently and with drifted times: they stay as they were
    later = committer.update(words((0.05, "wee"), (0.45, "goes"), (0.8, "home"), (1.2, "now")), 1.6, 1.7, 0.5)
    assert texts(committer.committed) == ["we", "go", "home"]
    assert texts(later.committed) == ["home"]
    assert texts(later.tentative) == ["now"]


def test_a_repetition_of_the_committed_tail_at_the_boundary_is_dropped() -> None:
    committer = Committer(max_delay_s=10.0)
    committer.update(words((0.0, "so"), (0.4, "far")), 0.8, 0.9, 0.5)
    committer.update(words((0.0, "so"), (0.4, "far")), 0.8, 1.4, 0.5)
    assert texts(committer.committed) == ["so", "far"]
    # the buffer was cut: Whisper hears "far" again, its timing drifted past the last committed end
    hypothesis = [Word(0.72, 0.9, " far"), Word(1.0, 1.3, " away")]
    assert texts(committer.new_words(hypothesis)) == ["away"]
    # the same word much later is a new word, not a repetition
    assert texts(committer.new_words([Word(3.0, 3.3, " far")])) == ["far"]


def test_words_are_forced_only_when_waiting_would_break_the_bound() -> None:
    committer = Committer(max_delay_s=2.0)
    # never two agreeing decodes: the bound alone decides
    early = committer.update(words((0.0, "alpha"), (0.4, "beta")), 1.0, 1.0, 0.6)
    assert early.committed == []  # 1.0 + 0.6 - 0.7 < 2: the next decode is still in time
    late = committer.update(words((0.0, "alpha"), (0.4, "gamma"), (0.8, "delta"), (1.9, "tail")), 2.2, 2.2, 0.6)
    # "alpha" agreed; "gamma" (ended 0.7) would be 2.1 s late at the next decode: forced; "delta" (1.1) not;
    # "tail" touches the end of the decoded audio and is never forced
    assert texts(late.committed) == ["alpha", "gamma"]
    assert late.forced == 1
    assert texts(late.tentative) == ["delta", "tail"]


def test_one_decode_is_enough_for_a_word_whisper_is_sure_of_with_audio_after_it() -> None:
    committer = Committer(max_delay_s=10.0, sure=0.8, sure_after_s=0.5)
    heard = [
        Word(0.0, 0.3, " we", 0.95),
        Word(0.4, 0.7, " where", 0.6),  # unsure: waits for a second decode, and so does every word after it
        Word(0.8, 1.1, " there", 0.99),
    ]
    first = committer.update(heard, 2.0, 2.1, 0.5)
    assert texts(first.committed) == ["we"] and first.forced == 0
    assert texts(first.tentative) == ["where", "there"]
    # the next decode hears "were", so nothing agrees: Whisper is sure of "were" and "there", but
    # "today" ends less than 0.5 s before the end of the decoded audio
    again = [Word(0.4, 0.7, " were", 0.9), Word(0.8, 1.1, " there", 0.99), Word(1.2, 2.2, " today", 0.99)]
    second = committer.update(again, 2.5, 2.6, 0.5)
    assert texts(second.committed) == ["were", "there"] and second.forced == 0
    assert texts(second.tentative) == ["today"]


def test_without_a_sure_level_word_probabilities_commit_nothing() -> None:
    committer = Committer(max_delay_s=10.0)
    update = committer.update([Word(0.0, 0.3, " we", 1.0), Word(0.4, 0.7, " go", 1.0)], 3.0, 3.1, 0.5)
    assert update.committed == []


def test_the_last_decode_of_a_closed_phrase_commits_every_new_word() -> None:
    committer = Committer(max_delay_s=2.0)
    committer.update(words((0.0, "one"), (0.4, "two")), 0.8, 0.9, 0.5)
    committer.update(words((0.0, "one"), (0.4, "two"), (0.8, "three")), 1.2, 1.3, 0.5)
    final = committer.close(words((0.0, "one"), (0.4, "two"), (0.8, "three"), (1.2, "four")))
    assert texts(final) == ["three", "four"]
    assert texts(committer.committed) == ["one", "two", "three", "four"]


def test_words_whisper_squeezes_into_a_decode_are_not_taken() -> None:
    committer = Committer(max_delay_s=2.0)
    # as on the pyannote sample: the close of a phrase cut in mid-speech repeats its last sentence in 0.16 s
    said = [Word(18.58, 18.98, " Oh,"), Word(19.18, 19.18, " I'm"), Word(19.18, 19.46, " originally")]
    said += [Word(19.46, 19.80, " from"), Word(19.80, 19.92, " Chicago.")]
    made_up = [Word(19.92, 19.92, f" {t}") for t in ("Oh,", "I'm", "originally", "from")]
    final = committer.close([*said, *made_up, Word(19.92, 20.08, " Chicago.")])
    assert texts(final) == ["oh", "i'm", "originally", "from", "chicago"]
    # five words at one instant are made up even when they repeat nothing (as on a tuning call)
    stock = [Word(58.4, 58.7, " to"), *(Word(58.69, 58.69, f" {t}") for t in ("get", "a", "lot", "of", "stuff."))]
    assert texts(Committer(max_delay_s=2.0).close(stock)) == ["to"]
    # two or three squeezed words at the very end of the audio that repeat nothing are speech: kept
    quick = [Word(1.0, 1.1, " I'm"), Word(1.1, 1.18, " in"), Word(1.18, 1.2, " New"), Word(1.2, 1.2, " York.")]
    assert Committer(max_delay_s=2.0).close(quick) == quick
    # a loop: from its first squeezed repetition on, nothing is taken; then the squeezed tail goes too
    reading = [Word(35.57, 35.77, " ship"), Word(35.77, 36.03, " to"), Word(36.03, 36.47, " the")]
    loop = ["If", "you", "want", "to", "see", "the", "video,", "please", "like", "and", "subscribe."]
    looped = [*reading, Word(36.47, 36.47, " settlement."), *(Word(36.47, 36.47, f" {t}") for t in loop[:-1])]
    looped += [
        Word(36.47, 36.75, " subscribe."),
        *(Word(36.75 + k * 0.02, 36.77 + k * 0.02, f" {t}") for k, t in enumerate(loop)),
    ]
    looped += [Word(37.0, 37.02, f" {t}") for t in loop[:3]]
    assert texts(Committer(max_delay_s=2.0).close(looped)) == ["ship", "to", "the"]
    # a word said again that lasts as long as a word: kept (a zero-length "The" is only Whisper's timing)
    again = [Word(17.62, 18.0, " The"), Word(18.0, 18.18, " wind.")]
    again += [Word(18.18, 18.18, " The"), Word(18.18, 18.42, " wind.")]
    assert Committer(max_delay_s=2.0).close(again) == again


def test_punctuation_only_tokens_are_not_words() -> None:
    committer = Committer(max_delay_s=2.0)
    assert committer.new_words([Word(0.0, 0.1, " ..."), Word(0.2, 0.5, " yes")]) == [Word(0.2, 0.5, " yes")]


def test_the_decode_buffer_is_cut_at_a_pause_between_final_words() -> None:
    said = [Word(0.0, 0.3, " a"), Word(0.32, 0.6, " b"), Word(0.9, 1.2, " c"), Word(1.22, 1.5, " d"),
            Word(1.52, 1.8, " e"), Word(1.82, 2.1, " f"), Word(2.12, 2.4, " g")]  # fmt: skip
    # the widest pause (0.6-0.9) leaves more than 1 s of final words after it
    assert buffer_cut(said, 0.0, context_s=1.0, max_context_s=4.0) == 0.75
    # no pause wide enough and not yet too long: keep the buffer
    assert buffer_cut(said[2:], 0.9, context_s=1.0, max_context_s=4.0) is None
    # too long: cut in the middle of speech after all, between two words
    assert buffer_cut(said[2:], 0.9, context_s=0.5, max_context_s=1.0) in {1.21, 1.51, 1.81}
    # never so late that less than context_s of final words stays in the buffer
    assert buffer_cut(said, 0.0, context_s=3.0, max_context_s=4.0) is None
    assert buffer_cut([], 0.0, context_s=1.0, max_context_s=4.0) is None


def test_arrival_marks_stay_bounded_in_a_long_silent_stream() -> None:
    arrivals = Arrivals(horizon=16000)
    for step in range(10_000):  # 400 s of 40 ms frames, nothing ever asked
        arrivals.arrived((step + 1) * 640, step * 0.04)
    assert len(arrivals) <= 27
    assert arrivals.time_of(399 * 16000) == pytest.approx(398.96)  # the frame that brought that sample
    many = Arrivals(horizon=16000)
    for step in range(1000):  # frames 1 ms apart are one mark per 10 ms
        many.arrived(step + 1, step * 0.001)
    assert 95 <= len(many) <= 100


def test_a_phrase_decoded_with_the_end_of_the_one_before_does_not_take_its_words_again() -> None:
    before = Committer(max_delay_s=10.0)
    before.close(words((0.0, "we"), (0.4, "go"), (0.8, "home")))  # the phrase before ends at 1.1 s
    committer = Committer(max_delay_s=10.0, before=before, floor_s=1.2)
    # the context: "go home" again, the second "home" with its time drifted past the phrase's floor
    heard = words((0.4, "go"), (1.15, "home"), (1.6, "now"), (2.0, "then"))
    assert texts(committer.new_words(heard)) == ["now", "then"]
    assert texts(committer.close(heard)) == ["now", "then"]


def test_a_word_between_two_phrases_that_the_voice_detector_missed_is_taken() -> None:
    before = Committer(max_delay_s=10.0)
    before.close(words((0.0, "we"), (0.4, "go")))  # ends at 0.7 s; the next phrase opens at 1.6 s
    committer = Committer(max_delay_s=10.0, before=before, floor_s=0.8)  # floor: where the phrase before ended
    heard = words((0.4, "go"), (1.0, "well"), (1.7, "then"))
    assert texts(committer.new_words(heard)) == ["well", "then"]
