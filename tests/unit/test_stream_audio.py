"""Incremental decoding of streamed WAV and raw PCM: any split of the bytes gives the same samples."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from models.audio import SAMPLE_RATE, encode
from models.stream_audio import ContainerDecoder, PcmDecoder, StreamFormatError, WavDecoder


def tone(seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def wav(samples: np.ndarray, rate: int = SAMPLE_RATE, channels: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.repeat(samples, channels) * 32767).astype("<i2").tobytes())
    return out.getvalue()


def feed_in_pieces(decoder: PcmDecoder | WavDecoder, data: bytes, size: int) -> np.ndarray:
    return np.concatenate([decoder.feed(data[i : i + size]) for i in range(0, len(data), size)])


@pytest.mark.parametrize("size", [1, 3, 7, 44, 45, 1000])
def test_wav_split_anywhere_decodes_the_same(size: int) -> None:
    samples = tone(0.25)
    got = feed_in_pieces(WavDecoder(), wav(samples), size)
    assert len(got) == len(samples)
    assert np.abs(got - samples).max() < 1e-3


def test_pcm_keeps_a_split_sample_for_the_next_frame() -> None:
    decoder = PcmDecoder(SAMPLE_RATE)
    data = (tone(0.1) * 32767).astype("<i2").tobytes()
    first = decoder.feed(data[:101])
    assert len(first) == 50
    assert len(decoder.feed(data[101:])) == len(data) // 2 - 50


def test_stereo_48k_wav_is_mixed_down_and_resampled() -> None:
    got = feed_in_pieces(WavDecoder(), wav(tone(1.0, 48000), 48000, channels=2), 4096)
    assert abs(len(got) - SAMPLE_RATE) < 400  # the resampler may hold a few samples back


def test_a_wav_header_with_extra_chunks_is_skipped() -> None:
    data = wav(tone(0.1))
    extra = b"LIST" + (6).to_bytes(4, "little") + b"abcdef"
    data = data[:36] + extra + data[36:]
    assert len(feed_in_pieces(WavDecoder(), data, 5)) == int(0.1 * SAMPLE_RATE)


def pcm24_header() -> bytes:
    data = bytearray(wav(tone(0.01)))
    data[34:36] = (24).to_bytes(2, "little")  # bits per sample
    return bytes(data)


@pytest.mark.parametrize(
    "data",
    [b"OggS" + bytes(60), b"RIFF\x00\x00\x00\x00WAVEdata" + bytes(8), pcm24_header()],
    ids=["not-riff", "data-before-fmt", "24-bit"],
)
def test_bad_wav_headers_are_refused(data: bytes) -> None:
    with pytest.raises(StreamFormatError):
        WavDecoder().feed(data)


def test_a_header_that_never_ends_is_refused() -> None:
    decoder = WavDecoder()
    decoder.feed(b"RIFF\x00\x00\x00\x00WAVE" + b"junk" + (10**6).to_bytes(4, "little"))
    with pytest.raises(StreamFormatError):
        for _ in range(20):
            decoder.feed(bytes(8192))


def test_ogg_opus_decodes_as_it_arrives() -> None:
    samples = tone(3.0)
    data = encode(samples, "ogg")
    decoder = ContainerDecoder("ogg")
    early = np.concatenate([decoder.feed(data[i : i + 700]) for i in range(0, len(data), 700)])
    got = np.concatenate([early, decoder.close()])
    assert abs(len(got) - len(samples)) < 0.05 * SAMPLE_RATE
    assert np.sqrt(np.mean(got**2)) == pytest.approx(np.sqrt(np.mean(samples**2)), rel=0.2)


def test_garbage_in_an_ogg_stream_is_an_error_not_a_hang() -> None:
    decoder = ContainerDecoder("ogg")
    decoder.feed(b"this is not an ogg page" * 100)
    with pytest.raises(StreamFormatError):
        decoder.close()
