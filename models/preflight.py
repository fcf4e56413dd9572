"""Quality preflight of enrollment recordings: measurements and a pure verdict.

`measure` turns decoded audio plus its speech regions into numbers; `assess` turns numbers into
issues. `assess` does no I/O, so the same verdicts run on the appliance and in the desktop client
(which has no torch) and are unit-tested on synthesized signals. Thresholds: docs/preflight.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models.audio import SAMPLE_RATE, DecodedAudio
from models.vad import Region, speech_mask

Role = Literal["reference", "consent"]
Severity = Literal["error", "warning"]

#: A sample at or above this magnitude (of full scale) counts as clipped.
CLIP_LEVEL = 0.99
#: Analysis frame for level and SNR estimates: 20 ms.
FRAME = SAMPLE_RATE // 50
#: Reported when the noise floor is digital silence.
MAX_SNR_DB = 60.0


class PreflightSettings(BaseModel):
    """Quality thresholds for enrollment recordings (see docs/preflight.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_duration_s: float = Field(600.0, gt=0, description="Longest recording decoded; longer is an error.")
    reference_min_speech_s: float = Field(3.0, gt=0, description="Less speech than this in the reference: error.")
    reference_warn_speech_s: float = Field(8.0, gt=0, description="Less speech than this in the reference: warning.")
    consent_min_speech_s: float = Field(1.5, gt=0, description="Less speech than this in the consent: error.")
    min_speech_for_any_s: float = Field(
        0.3, ge=0, description="Below this much detected speech a recording has no speech at all."
    )
    clipping_error_ratio: float = Field(0.01, ge=0, le=1, description="Share of clipped samples that is an error.")
    clipping_warn_ratio: float = Field(0.001, ge=0, le=1, description="Share of clipped samples that warns.")
    min_snr_db: float = Field(10.0, description="Estimated SNR below this (dB) is an error.")
    warn_snr_db: float = Field(20.0, description="Estimated SNR below this (dB) warns.")
    min_speech_rms_dbfs: float = Field(-50.0, description="Speech level below this (dBFS) is an error.")
    warn_speech_rms_dbfs: float = Field(-40.0, description="Speech level below this (dBFS) warns.")
    reference_repetition_warn: float = Field(
        0.6,
        gt=0,
        le=1,
        description="A reference whose speech repeats itself this much (a looped clip) warns: one excerpt "
        "copied several times names its speaker no better than the excerpt alone. Real references: <= 0.33.",
    )


@dataclass(frozen=True)
class Issue:
    """One finding: ``code`` is stable, ``message`` tells the user what to do."""

    code: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class Metrics:
    """Measurements of one recording, as the API reports them."""

    duration_s: float
    speech_s: float
    sample_rate_in: int
    channels_in: int
    format: str
    rms_dbfs: float
    peak_dbfs: float
    clipping_ratio: float
    snr_db: float | None
    repetition: float | None = None
    truncated: bool = False


@dataclass(frozen=True)
class Report:
    """Metrics and issues of one recording."""

    metrics: Metrics
    issues: list[Issue] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no issue is an error."""
        return not any(i.severity == "error" for i in self.issues)

    def to_json(self) -> dict[str, Any]:
        """The API's per-recording preflight object."""
        out = asdict(self.metrics)
        out.pop("truncated")
        out["issues"] = [asdict(i) for i in self.issues]
        return out


def _dbfs(power: float) -> float:
    return float(10.0 * np.log10(max(power, 1e-12)))


def _round(value: float, digits: int = 2) -> float:
    return float(round(value, digits))


def estimate_snr_db(samples: np.ndarray, mask: np.ndarray) -> float | None:
    """Speech-to-noise ratio from 20 ms frame powers inside vs outside the speech mask."""
    n_frames = len(samples) // FRAME
    if n_frames == 0:
        return None
    frames = samples[: n_frames * FRAME].reshape(n_frames, FRAME)
    power = np.mean(frames.astype(np.float64) ** 2, axis=1)
    is_speech = mask[: n_frames * FRAME].reshape(n_frames, FRAME).mean(axis=1) > 0.5
    if not is_speech.any():
        return None
    speech_power = float(np.mean(power[is_speech]))
    # Noise floor: the quietest tenth of all 20 ms frames. Pauses between words reach it even
    # in a recording that is speech wall to wall, where the VAD leaves no pause of its own.
    noise_power = float(np.mean(np.sort(power)[: max(1, n_frames // 10)]))
    if noise_power <= 1e-10:
        return MAX_SNR_DB
    snr = 10.0 * np.log10(speech_power / noise_power)
    return float(min(snr, MAX_SNR_DB))


#: Repetition is looked for at lags of at least this long (s), over at most the first REPETITION_SPAN_S of speech.
REPETITION_MIN_LAG_S = 1.5
REPETITION_SPAN_S = 60.0
REPETITION_BANDS = 24


def repetition(speech: np.ndarray) -> float | None:
    """How much (n,) float32 16 kHz speech repeats itself: 0-1, None when under 3 s.

    The speech's spectral envelope (log energy in 24 bands every 20 ms, each band's mean removed)
    is compared with itself shifted by every lag of 1.5 s or more; the result is the best mean
    frame-to-frame cosine. Natural speech stays near 0.1-0.3 (LibriSpeech and the pyannote sample's
    references: at most 0.33); a clip looped or pasted twice reaches 0.9-1.0.
    """
    x = speech[: int(REPETITION_SPAN_S * SAMPLE_RATE)].astype(np.float64)
    n = len(x) // FRAME
    min_lag = int(REPETITION_MIN_LAG_S * SAMPLE_RATE / FRAME)
    if n < 2 * min_lag:
        return None
    frames = x[: n * FRAME].reshape(n, FRAME) * np.hanning(FRAME)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    edges = np.linspace(1, power.shape[1], REPETITION_BANDS + 1).astype(int)[:-1]
    envelope = np.log(np.add.reduceat(power, edges, axis=1) + 1e-10)
    envelope -= envelope.mean(axis=0)
    envelope /= np.linalg.norm(envelope, axis=1, keepdims=True) + 1e-9
    similarity = envelope @ envelope.T
    return float(max(np.mean(np.diagonal(similarity, lag)) for lag in range(min_lag, n - min_lag + 1)))


def measure(audio: DecodedAudio, regions: list[Region]) -> Metrics:
    """Measure level, clipping, speech duration and SNR of a decoded recording."""
    x = audio.samples
    mask = speech_mask(len(x), regions)
    speech = x[mask]
    level_source = speech if len(speech) else x
    snr = estimate_snr_db(x, mask)
    return Metrics(
        duration_s=_round(audio.duration_s),
        speech_s=_round(float(mask.sum()) / SAMPLE_RATE),
        sample_rate_in=audio.sample_rate_in,
        channels_in=audio.channels_in,
        format=audio.format,
        rms_dbfs=_round(_dbfs(float(np.mean(level_source.astype(np.float64) ** 2)))),
        peak_dbfs=_round(_dbfs(float(np.max(np.abs(x))) ** 2)),
        clipping_ratio=_round(float(np.mean(np.abs(x) >= CLIP_LEVEL)), 5),
        snr_db=None if snr is None else _round(snr, 1),
        repetition=None if (r := repetition(speech)) is None else _round(r, 3),
        truncated=audio.truncated,
    )


def assess(m: Metrics, role: Role, t: PreflightSettings) -> list[Issue]:
    """Issues of one recording's metrics; pure."""
    issues: list[Issue] = []
    if m.truncated:
        issues.append(Issue("too_long", "error", f"The recording is longer than {t.max_duration_s:g} s; trim it."))
    min_speech = t.reference_min_speech_s if role == "reference" else t.consent_min_speech_s
    if m.speech_s < t.min_speech_for_any_s:
        issues.append(Issue("no_speech", "error", "No speech was detected. Check the microphone and speak clearly."))
    elif m.speech_s < min_speech:
        issues.append(
            Issue(
                "too_short",
                "error",
                f"Only {m.speech_s:.1f} s of speech; at least {min_speech:g} s is needed. Speak longer.",
            )
        )
    elif role == "reference" and m.speech_s < t.reference_warn_speech_s:
        issues.append(
            Issue(
                "too_short",
                "warning",
                f"{m.speech_s:.1f} s of speech; {t.reference_warn_speech_s:g} s or more recognises the "
                "speaker more reliably.",
            )
        )
    if m.clipping_ratio >= t.clipping_error_ratio:
        issues.append(
            Issue(
                "clipping",
                "error",
                f"{m.clipping_ratio:.1%} of samples are clipped. Lower the input gain or move back "
                "from the microphone.",
            )
        )
    elif m.clipping_ratio >= t.clipping_warn_ratio:
        issues.append(Issue("clipping", "warning", "Some samples are clipped; lower the input gain a little."))
    has_speech = m.speech_s >= t.min_speech_for_any_s
    if not has_speech and m.peak_dbfs < t.warn_speech_rms_dbfs:
        issues.append(Issue("too_quiet", "error", "The recording is nearly silent. Move closer or raise the gain."))
    if has_speech and m.rms_dbfs < t.min_speech_rms_dbfs:
        issues.append(
            Issue("too_quiet", "error", f"Speech level is {m.rms_dbfs:.0f} dBFS. Move closer or raise the gain.")
        )
    elif has_speech and m.rms_dbfs < t.warn_speech_rms_dbfs:
        issues.append(Issue("too_quiet", "warning", "Speech is quiet; move closer to the microphone."))
    if has_speech and m.snr_db is not None:
        if m.snr_db < t.min_snr_db:
            issues.append(
                Issue(
                    "low_snr",
                    "error",
                    f"Background noise is too loud (SNR {m.snr_db:.0f} dB). Record in a quieter room.",
                )
            )
        elif m.snr_db < t.warn_snr_db:
            issues.append(Issue("low_snr", "warning", "Background noise is noticeable; a quieter room helps."))
    if role == "reference" and m.repetition is not None and m.repetition >= t.reference_repetition_warn:
        issues.append(
            Issue(
                "repetitive",
                "warning",
                "The reference repeats the same audio (a looped or pasted clip?). Record natural, varied speech "
                "- read a paragraph or talk freely - so the speaker is recognised reliably.",
            )
        )
    return issues


def preflight(audio: DecodedAudio, regions: list[Region], role: Role, t: PreflightSettings) -> Report:
    """Measure and assess one recording."""
    metrics = measure(audio, regions)
    return Report(metrics=metrics, issues=assess(metrics, role, t))
