"""The desktop client's view models and audio helpers, without a window."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from gui.audio import level_dbfs, local_preflight
from gui.viewmodels import (
    Transcript,
    clock,
    consent_summary,
    consent_text,
    duplicate_warning,
    explain,
    features,
    features_text,
    live_status_text,
    meter,
    speaker_rows,
)
from tests.support import enrollment_audio, sample_speakers


def test_features_follow_the_scopes_and_say_why() -> None:
    allowed = features({"scaiecho:transcribe"})
    assert allowed["live"].enabled and not allowed["enroll"].enabled
    assert allowed["enroll"].reason == "This API key lacks the scaiecho:enroll scope."
    assert allowed["diarize"].reason == "This API key lacks the scaiecho:diarize scope."
    assert all(f.enabled for f in features({"scaiecho:enroll", "scaiecho:transcribe", "scaiecho:diarize"}).values())


def test_before_connecting_nothing_is_said_to_be_lacking() -> None:
    allowed = features(None)
    assert not any(f.enabled for f in allowed.values())
    assert all("Connect" in f.reason and "lacks" not in f.reason for f in allowed.values())
    assert features_text(allowed, connected=False) == "Connect to see what this key may do."
    assert "live: yes" in features_text(features({"scaiecho:transcribe"}), connected=True)


def test_the_level_meter_is_empty_when_idle_or_silent() -> None:
    assert meter(None) == (-60, "no signal")
    assert meter(-100.0) == (-60, "no signal")
    assert meter(-18.4) == (-18, "-18 dBFS")
    assert meter(0.5) == (0, "0 dBFS")


def test_live_status_shows_progress_then_finished() -> None:
    transcript = Transcript()
    assert clock(75.9) == "1:15" and clock(3725) == "1:02:05"
    assert live_status_text(12.0, None, transcript) == "Listening: 0:12."
    assert live_status_text(45.0, 90.0, transcript) == "Playing the file in real time: 0:45 of 1:30 (50 %)."
    transcript.apply(
        {"type": "delta", "segment_id": 0, "text": "hi", "start": 0.0, "end": 1.0, "speaker_label": "spk_0"}
    )
    transcript.apply({"type": "done", "duration_s": 61.2, "segments": 1, "words": 1, "late_words": 0,
                      "max_delay_s": 2.0})  # fmt: skip
    assert live_status_text(70.0, 90.0, transcript) == "Finished: 1 segment from 1:01 of audio, 1 speaker."


def test_consent_text_is_prefilled_from_name_and_purpose() -> None:
    text = consent_text("Alice Example", "Team meeting minutes.")
    assert text.startswith("I, Alice Example, consent") and "Team meeting minutes." in text
    assert "[your full name]" in consent_text("", "")


def test_errors_in_plain_words() -> None:
    assert "cannot be reached" in explain(None, None, "http://box:8080")
    assert "not accepted" in explain(401, {"error": {"code": "unauthenticated", "message": "x"}})
    forbidden = {"error": {"code": "forbidden", "message": "x", "details": {"required_scope": "scaiecho:enroll"}}}
    assert explain(403, forbidden) == "This API key lacks the scaiecho:enroll scope."
    failed = {
        "error": {
            "code": "preflight_failed",
            "message": "x",
            "details": {
                "reference": {"issues": [{"code": "too_short", "message": "Only 2.0 s of speech."}]},
                "consent": {"issues": [{"code": "low_snr", "message": "Background noise is noticeable."}]},
            },
        }
    }
    text = explain(422, failed)
    assert "Only 2.0 s of speech. Speak longer." in text and "quieter room" in text


def test_transcript_colours_partials_and_exports() -> None:
    t = Transcript()
    frames: list[dict[str, Any]] = [
        {"type": "ready", "backend_used": "A", "session_id": "ses_1"},
        {"type": "partial", "text": "hel", "start": 0.5},
        {"type": "delta", "segment_id": 0, "text": "Hello.", "start": 0.5, "end": 1.25, "speaker_label": "Alice"},
        {"type": "delta", "segment_id": 1, "text": "Hi.", "start": 61.0, "end": 62.0, "speaker_label": "spk_0"},
        {"type": "delta", "segment_id": 2, "text": "Hm.", "start": 63.0, "end": 63.5},
        {"type": "done", "duration_s": 64.0, "segments": 3, "words": 3, "late_words": 0, "max_delay_s": 2.0},
    ]
    t.apply(frames[0])
    t.apply(frames[1])
    assert t.partial == "hel" and t.backend == "A"
    for frame in frames[2:]:
        t.apply(frame)
    assert t.partial == "" and t.done
    assert t.colour("Alice") != t.colour("spk_0") and t.colour(None) == "#555555"
    assert t.to_txt().splitlines() == ["[00:00] Alice: Hello.", "[01:01] spk_0: Hi.", "[01:03] Hm."]
    assert "00:00:00,500 --> 00:00:01,250\nAlice: Hello." in t.to_srt()
    assert json.loads(t.to_json())["segments"][1]["speaker_label"] == "spk_0"


def test_a_phrase_final_word_by_word_reads_as_one_line_per_turn() -> None:
    t = Transcript()
    pieces = [("Oh, hello,", 8.0, 8.9, "spk_0"), ("I didn't know", 8.9, 9.8, "spk_0"), ("you were there.", 9.8, 10.4,
              "spk_0"), ("Neither did I.", 10.4, 11.3, "spk_1"), ("Okay.", 14.0, 14.5, "spk_1")]  # fmt: skip
    t.apply({"type": "partial", "text": "Oh, hel", "start": 8.0, "speaker_label": "spk_0"})
    assert (t.partial, t.partial_label) == ("Oh, hel", "spk_0")
    for i, (text, start, end, label) in enumerate(pieces):
        t.apply({"type": "delta", "segment_id": i, "text": text, "start": start, "end": end, "speaker_label": label})
    assert t.partial_label is None
    assert t.to_txt().splitlines() == [
        "[00:08] spk_0: Oh, hello, I didn't know you were there.",
        "[00:10] spk_1: Neither did I.",
        "[00:14] spk_1: Okay.",
    ]
    t.apply({"type": "delta", "segment_id": 5, "text": "late", "start": 15.0})  # a frame missing its end
    assert t.errors == ["the appliance sent a delta frame this client cannot read"]
    t.apply({"type": "a-frame-of-a-newer-server"})
    assert len(t.errors) == 1


def test_speaker_rows_filter() -> None:
    docs = [
        {"display_name": "Alice", "language_primary": "en", "enrollment_status": "ready",
         "enrolled_on": ["node-1", "node-2"], "created_at": "2026-11-24T06:00:00.123Z"},
        {"display_name": "Bob", "language_primary": "de", "enrollment_status": "pending", "enrolled_on": []},
    ]  # fmt: skip
    rows = speaker_rows(docs)
    assert rows == [("Alice", "en", "ready", "2", rows[0][4]), ("Bob", "de", "pending", "0", "")]
    assert rows[0][4].endswith(" ago")  # when, as people say it
    assert [r[0] for r in speaker_rows(docs, "PEND")] == ["Bob"]


def test_level_meter() -> None:
    assert level_dbfs(np.zeros(100, np.float32)) == -100.0
    assert abs(level_dbfs(np.full(100, 0.1, np.float32)) + 20.0) < 1e-6


def test_local_preflight_uses_the_servers_thresholds() -> None:
    reference, _ = enrollment_audio(sample_speakers()[0])
    assert local_preflight(reference, "reference").passed
    silent = local_preflight(np.zeros(16000 * 5, np.float32), "reference")
    assert not silent.passed and "no_speech" in [i.code for i in silent.issues]


def test_saved_srt_cues_do_not_overlap() -> None:
    t = Transcript()
    t.apply({"type": "delta", "segment_id": 0, "text": "first", "start": 1.0, "end": 2.6, "speaker_label": "Alice"})
    t.apply({"type": "delta", "segment_id": 1, "text": "second", "start": 2.5, "end": 4.0, "speaker_label": "spk_0"})
    assert "00:00:01,000 --> 00:00:02,500\nAlice: first" in t.to_srt()
    assert "00:00:02,500 --> 00:00:04,000\nspk_0: second" in t.to_srt()


def test_a_likely_duplicate_is_explained_in_plain_words() -> None:
    assert duplicate_warning({"display_name": "Ada"}) == ""
    text = duplicate_warning({"possible_duplicates": [{"speaker_id": "spk_1", "display_name": "Ada", "score": 0.967}]})
    assert "Ada (0.97)" in text and "erase the profile you do not need" in text


def test_a_refused_consent_says_what_to_record_again() -> None:
    def refused(code: str, **text: object) -> str:
        return explain(422, {"error": {"code": code, "message": "m", "details": {"text": text}}})

    assert "in their own voice" in refused("consent_speaker_mismatch")
    said = refused("consent_text_mismatch", heard="hello there", added_negations=[])
    assert "reading the whole statement aloud" in said and 'heard: "hello there"' in said
    assert '"not"' in refused("consent_text_mismatch", heard="I do not consent", added_negations=["not"])
    assert "try again in a minute" in explain(503, {"error": {"code": "consent_check_unavailable", "details": {}}})


def test_the_enrolled_speaker_shows_its_consent_proof() -> None:
    proof = {"policy": "enforce", "passed": True, "speaker": {"status": "passed", "score": 0.91},
             "text": {"status": "passed", "match_ratio": 0.88}}  # fmt: skip
    assert consent_summary({"consent": {"verification": proof}}).startswith("Consent verified")
    warned = {**proof, "policy": "warn", "passed": False,
              "speaker": {"status": "failed", "score": 0.7, "reason": "another voice"}}  # fmt: skip
    assert consent_summary({"consent": {"verification": warned}}) == (
        "Consent NOT verified (enrolled under the warn policy): another voice."
    )
    assert consent_summary({"consent": {}}) == ""
