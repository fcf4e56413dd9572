"""The consent text comparison: tolerant of how a small ASR model spells, strict on meaning."""

from __future__ import annotations

from models.consent_match import match, words

TEXT = "I, Alice Example, consent to ScaiEcho enrolling my voice for diarization."


def test_words_are_normalized_on_both_sides() -> None:
    assert words("I'm sure I don't, it's 3 o'clock, Zoë!") == [
        "i", "am", "sure", "i", "do", "not", "its", "three", "oclock", "zoe",
    ]  # fmt: skip


def test_the_same_words_match_fully() -> None:
    found = match(TEXT, "I Alice Example consent to ScaiEcho enrolling my voice for diarization")
    assert found.ratio == 1.0 and found.passes(0.6) and found.missing == ()


def test_misspelled_names_and_long_words_still_count() -> None:
    found = match(TEXT, "I Alis Example consent to ScaiEcho enrolling my voice for diarisation", "Alice Example")
    assert found.ratio == 1.0


def test_a_short_word_must_be_heard_exactly() -> None:
    assert match("I agree to this", "I agree to his").missing == ("this",)


def test_another_statement_fails() -> None:
    found = match(TEXT, "the weather was nice today and we went to the shop")
    assert found.ratio < 0.3 and not found.passes(0.6)


def test_an_added_negation_fails_even_when_every_word_is_there() -> None:
    found = match(TEXT, "I Alice Example do not consent to ScaiEcho enrolling my voice for diarization")
    assert found.ratio > 0.8 and found.added_negations == ("not",) and not found.passes(0.6)
    assert match("I don't object", "I do not object").added_negations == ()


def test_reading_much_more_than_the_text_lowers_the_ratio() -> None:
    found = match("I consent", "I consent to nothing of what this long paper says about my voice at all")
    assert found.ratio < 0.2


def test_nothing_heard() -> None:
    found = match(TEXT, "")
    assert found.ratio == 0.0 and found.heard_words == 0
