"""What each tenant policy makes of a consent check's outcome (pure: no node, no ASR)."""

from __future__ import annotations

from typing import Any

from appliance.contract.consent import ConsentVerification, SpeakerCheck, TextCheck
from edge_server.speakers.consent_check import note, refusal, transcribable


def outcome(policy: Any, speaker: Any = "passed", text: Any = "passed") -> ConsentVerification:
    return ConsentVerification(
        policy=policy,
        passed=speaker == text == "passed",
        speaker=SpeakerCheck(
            status=speaker,
            score=None if speaker == "skipped" else 0.5,
            threshold=0.87,
            reason=None if speaker == "passed" else "why",
        ),
        text=TextCheck(
            status=text,
            heard="hi",
            match_ratio=0.2,
            threshold=0.6,
            language="en",
            model="whisper-tiny.en-int8",
            reason=None if text == "passed" else "why",
        ),
        checked_at="2026-11-25T00:00:00.000Z",
    )


def test_enforce_refuses_each_failure_with_its_code() -> None:
    assert refusal(outcome("enforce")) is None
    assert getattr(refusal(outcome("enforce", speaker="failed")), "code", None) == "consent_speaker_mismatch"
    assert getattr(refusal(outcome("enforce", text="failed")), "code", None) == "consent_text_mismatch"
    skipped_language = refusal(outcome("enforce", text="skipped"))
    assert skipped_language is not None and skipped_language.status == 422
    assert skipped_language.code == "consent_unverifiable"
    no_node = refusal(outcome("enforce", speaker="skipped"))
    assert no_node is not None and (no_node.status, no_node.code) == (503, "consent_check_unavailable")


def test_warn_and_off_never_refuse() -> None:
    for policy in ("warn", "off"):
        assert refusal(outcome(policy, speaker="failed", text="failed")) is None
    assert "warn policy" in str(note(outcome("warn", speaker="failed")))
    assert note(outcome("off", speaker="skipped", text="skipped")) is None


def test_only_english_for_an_english_only_model() -> None:
    assert transcribable("whisper-tiny.en-int8", "en-GB")
    assert not transcribable("whisper-tiny.en-int8", "de")
    assert transcribable("whisper-small", "de")
