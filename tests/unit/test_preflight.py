"""Preflight verdicts (pure) and measurements on synthesized signals."""

from __future__ import annotations

import numpy as np
import pytest

from models.audio import SAMPLE_RATE, DecodedAudio
from models.preflight import Metrics, PreflightSettings, assess, estimate_snr_db, measure

T = PreflightSettings()


def metrics(**overrides: object) -> Metrics:
    base: dict[str, object] = dict(
        duration_s=12.0,
        speech_s=10.0,
        sample_rate_in=16000,
        channels_in=1,
        format="wav",
        rms_dbfs=-25.0,
        peak_dbfs=-3.0,
        clipping_ratio=0.0,
        snr_db=35.0,
    )
    base.update(overrides)
    return Metrics(**base)  # type: ignore[arg-type]


def codes(issues: list, severity: str = "error") -> set[str]:
    return {i.code for i in issues if i.severity == severity}


def test_clean_recording_passes() -> None:
    assert assess(metrics(), "reference", T) == []


@pytest.mark.parametrize(
    ("overrides", "role", "code"),
    [
        ({"speech_s": 0.0}, "reference", "no_speech"),
        ({"speech_s": 0.8}, "reference", "too_short"),
        ({"speech_s": 1.0}, "consent", "too_short"),
        ({"clipping_ratio": 0.05}, "reference", "clipping"),
        ({"snr_db": 4.0}, "reference", "low_snr"),
        ({"rms_dbfs": -60.0}, "reference", "too_quiet"),
        ({"truncated": True}, "consent", "too_long"),
    ],
)
def test_errors(overrides: dict, role: str, code: str) -> None:
    assert code in codes(assess(metrics(**overrides), role, T))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"speech_s": 5.0}, "too_short"),
        ({"clipping_ratio": 0.002}, "clipping"),
        ({"snr_db": 15.0}, "low_snr"),
        ({"rms_dbfs": -45.0}, "too_quiet"),
    ],
)
def test_warnings_do_not_fail(overrides: dict, code: str) -> None:
    issues = assess(metrics(**overrides), "reference", T)
    assert codes(issues, "warning") == {code}
    assert codes(issues) == set()


def test_consent_needs_less_speech_than_reference() -> None:
    assert assess(metrics(speech_s=2.0), "consent", T) == []
    assert "too_short" in codes(assess(metrics(speech_s=2.0), "reference", T))


def test_nearly_silent_recording_says_too_quiet() -> None:
    issues = assess(metrics(speech_s=0.0, peak_dbfs=-70.0, rms_dbfs=-90.0, snr_db=None), "reference", T)
    assert codes(issues) == {"no_speech", "too_quiet"}


def tone(seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_snr_estimate_tracks_added_noise() -> None:
    rng = np.random.default_rng(1)
    # bursts of tone ("speech") separated by pauses, all over a noise floor 30 dB down
    signal = np.concatenate([tone(0.5, 0.3), np.zeros(SAMPLE_RATE // 4, np.float32)] * 8)
    mask = np.abs(signal) > 0
    speech_power = np.mean(signal[mask] ** 2)
    for snr in (30.0, 10.0):
        noisy = signal + rng.normal(0, np.sqrt(speech_power / 10 ** (snr / 10)), len(signal))
        estimate = estimate_snr_db(noisy.astype(np.float32), mask)
        assert estimate is not None
        assert abs(estimate - snr) < 3.0


def test_snr_of_digital_silence_floor_is_capped() -> None:
    signal = np.concatenate([tone(1.0, 0.3), np.zeros(SAMPLE_RATE, np.float32)])
    assert estimate_snr_db(signal, np.abs(signal) > 0) == 60.0


def test_measure_reports_clipping_and_levels() -> None:
    clipped = np.clip(tone(2.0, 3.0), -1, 1)
    audio = DecodedAudio(clipped, "wav", 44100, 2, truncated=False)
    m = measure(audio, [(0, len(clipped))])
    assert m.clipping_ratio > 0.5
    assert m.peak_dbfs == 0.0
    assert m.speech_s == 2.0
    assert (m.sample_rate_in, m.channels_in, m.format) == (44100, 2, "wav")
    assert "clipping" in codes(assess(m, "reference", T))


def test_a_looped_reference_warns_and_natural_speech_does_not() -> None:
    from models.preflight import repetition
    from tests.support import enrollment_audio, sample_speakers

    for speaker in sample_speakers():
        reference, _ = enrollment_audio(speaker)
        natural = repetition(reference)
        assert natural is not None and natural < 0.4, natural
        looped = repetition(np.tile(reference[: int(2.37 * SAMPLE_RATE)], 6))
        twice = repetition(np.concatenate([reference, reference]))
        assert looped is not None and looped > 0.9 and twice is not None and twice > 0.85
    assert repetition(np.zeros(2 * SAMPLE_RATE, np.float32)) is None  # too short to tell
    assert codes(assess(metrics(repetition=0.95), "reference", T), "warning") == {"repetitive"}
    assert assess(metrics(repetition=0.95), "consent", T) == []
    assert assess(metrics(repetition=0.3), "reference", T) == []
