"""In-memory decoding of every accepted container, and refusal of everything else."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from models.audio import SAMPLE_RATE, EmptyAudio, UndecodableAudio, UnsupportedFormat, decode, encode, sniff_format
from tests.support import FORMATS


def sweep(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t)).astype(np.float32)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (48000, 2)])
def test_formats_decode_to_16k_mono(fmt: str, rate: int, channels: int) -> None:
    data = encode(sweep(2.0, rate), fmt, sample_rate=rate, channels=channels)
    assert sniff_format(data) == fmt
    audio = decode(data, max_duration_s=60)
    assert audio.format == fmt
    # Opus always decodes at 48 kHz, whatever rate was encoded.
    expected_rate = 48000 if fmt == "ogg" else rate
    assert (audio.sample_rate_in, audio.channels_in) == (expected_rate, channels)
    assert abs(audio.duration_s - 2.0) < 0.15
    assert audio.samples.dtype == np.float32
    assert 0.1 < np.abs(audio.samples).max() <= 1.0


def test_long_recordings_stop_at_the_limit() -> None:
    audio = decode(encode(sweep(5.0, 16000), "flac"), max_duration_s=2.0)
    assert audio.truncated
    assert audio.duration_s == 2.0


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", EmptyAudio),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, UnsupportedFormat),
        (b"hello, this is not audio at all" * 10, UnsupportedFormat),
        (b"\xff\xfb" + b"\x00" * 1000, UndecodableAudio),
        (b"fLaC" + b"\x00" * 64, UndecodableAudio),
    ],
)
def test_bad_bytes(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode(data, 60)


def hostile_wav(format_tag: int, bits: int) -> bytes:
    """One second of noise behind a RIFF header with the given format tag and bits per sample."""
    real = (np.random.default_rng(0).standard_normal(SAMPLE_RATE) * 3000).astype("<i2").tobytes()
    block = 2
    header = b"RIFF" + struct.pack("<I", 36 + len(real)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, format_tag, 1, SAMPLE_RATE, SAMPLE_RATE * block, block, bits)
    header += b"data" + struct.pack("<I", len(real))
    return header + real


@pytest.mark.parametrize(("format_tag", "bits"), [(0, 16), (0xFFFE, 16), (0xFFFF, 16), (1, 0), (1, 65535)])
def test_hostile_wav_headers_are_undecodable_audio_not_a_crash(format_tag: int, bits: int) -> None:
    with pytest.raises(UndecodableAudio):
        decode(hostile_wav(format_tag, bits), 60)
