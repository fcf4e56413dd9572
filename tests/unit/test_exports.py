"""SRT, WebVTT and RTTM renderings of a transcript."""

from __future__ import annotations

from edge_server.streaming.exports import to_rttm, to_srt, to_vtt
from edge_server.streaming.protocol import DeltaFrame

SEGMENTS = [
    DeltaFrame(segment_id=0, text="Hello there.", start=1.5, end=3.25, speaker_label="Alice Example",
               speaker_id="spk_a", speaker_confidence=0.9),
    DeltaFrame(segment_id=1, text="Hi <you> & me", start=3661.0, end=3662.004, speaker_label="spk_0"),
    DeltaFrame(segment_id=2, text="unlabelled", start=4000.0, end=4001.0),
]  # fmt: skip


def test_srt_numbers_cues_and_names_speakers() -> None:
    assert to_srt(SEGMENTS).splitlines()[:7] == [
        "1",
        "00:00:01,500 --> 00:00:03,250",
        "Alice Example: Hello there.",
        "",
        "2",
        "01:01:01,000 --> 01:01:02,004",
        "spk_0: Hi <you> & me",
    ]


def test_vtt_uses_voice_spans_and_escapes_text() -> None:
    text = to_vtt(SEGMENTS)
    assert text.startswith("WEBVTT\n\n")
    assert "00:00:01.500 --> 00:00:03.250\n<v Alice Example>Hello there.\n" in text
    assert "<v spk_0>Hi &lt;you&gt; &amp; me" in text
    assert "01:06:40.000 --> 01:06:41.000\nunlabelled\n" in text


def test_rttm_has_one_line_per_labelled_segment() -> None:
    lines = to_rttm(SEGMENTS, "my call").splitlines()
    assert lines == [
        "SPEAKER my_call 1 1.500 1.750 <NA> <NA> Alice_Example <NA> <NA>",
        "SPEAKER my_call 1 3661.000 1.004 <NA> <NA> spk_0 <NA> <NA>",
    ]


def test_cues_never_overlap_at_a_speaker_change() -> None:
    turns = [
        DeltaFrame(segment_id=0, text="first", start=1.0, end=2.6, speaker_label="Alice"),
        DeltaFrame(segment_id=1, text="second", start=2.5, end=4.0, speaker_label="spk_0"),
    ]
    assert "00:00:01,000 --> 00:00:02,500\nAlice: first" in to_srt(turns)
    assert "00:00:01.000 --> 00:00:02.500\n<v Alice>first" in to_vtt(turns)
    assert "SPEAKER f 1 1.000 1.600" in to_rttm(turns, "f")  # RTTM keeps the true overlap
