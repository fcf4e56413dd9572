"""Decode uploaded recordings in memory with PyAV and resample them to 16 kHz mono float32.

Nothing here touches the disk: bytes in, samples out. The container is sniffed from its magic
bytes first and then opened with that one demuxer, so FFmpeg never guesses a format for
untrusted input, and anything but the five supported containers is refused up front.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np

SAMPLE_RATE = 16000
#: Formats the API accepts, mapped to the FFmpeg demuxer that reads them.
DEMUXERS = {"wav": "wav", "mp3": "mp3", "flac": "flac", "ogg": "ogg", "m4a": "mov"}


class AudioError(Exception):
    """Base of decoding errors; ``code`` is the API error code."""

    code = "unsupported_media"


class EmptyAudio(AudioError):
    """The upload has no bytes."""


class UnsupportedFormat(AudioError):
    """Not one of wav, mp3, flac, ogg, m4a."""


class UndecodableAudio(AudioError):
    """The bytes claim a supported format but do not decode to audio."""


@dataclass(frozen=True)
class DecodedAudio:
    """A recording as 16 kHz mono float32 in [-1, 1], plus what it was before."""

    samples: np.ndarray  # (n,) float32 at 16 kHz
    format: str
    sample_rate_in: int
    channels_in: int
    truncated: bool  # decoding stopped at the configured maximum duration

    @property
    def duration_s(self) -> float:
        """Length of the decoded audio in seconds."""
        return len(self.samples) / SAMPLE_RATE


def sniff_format(data: bytes) -> str | None:
    """The container named by the magic bytes, or None when it is none we accept."""
    head = data[:16]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        return "m4a"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def decode(data: bytes, max_duration_s: float) -> DecodedAudio:
    """Decode ``data`` (a whole file) to 16 kHz mono, stopping after ``max_duration_s``."""
    if not data:
        raise EmptyAudio("the file is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedFormat("not a wav, mp3, flac, ogg or m4a file")
    max_samples = int(max_duration_s * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    truncated = False
    try:
        with av.open(io.BytesIO(data), mode="r", format=DEMUXERS[fmt]) as container:
            if not container.streams.audio:
                raise UndecodableAudio(f"the {fmt} file has no audio stream")
            stream = container.streams.audio[0]
            sample_rate_in = int(stream.codec_context.sample_rate or 0)
            channels_in = int(stream.codec_context.channels or 0)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += len(chunk)
                if total > max_samples:
                    truncated = True
                    break
            if not truncated:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray().reshape(-1))
    except AudioError:
        raise
    # Hostile headers (a WAV format tag of 0 or 0xFFFF, 0 or 65535 bits per sample) surface from
    # PyAV as any of these; every one is the file's fault, never the server's.
    except (av.FFmpegError, ValueError, IndexError, AttributeError, TypeError, OverflowError, ZeroDivisionError) as exc:
        raise UndecodableAudio(f"the {fmt} file could not be decoded (corrupt or truncated)") from exc
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if truncated:
        samples = samples[:max_samples]
    if len(samples) == 0:
        raise UndecodableAudio(f"the {fmt} file holds no audio samples")
    return DecodedAudio(
        samples=np.clip(samples, -1.0, 1.0),
        format=fmt,
        sample_rate_in=sample_rate_in,
        channels_in=channels_in,
        truncated=truncated,
    )


_ENCODERS = {
    "wav": ("wav", "pcm_s16le", "s16"),
    "flac": ("flac", "flac", "s16"),
    "mp3": ("mp3", "libmp3lame", "fltp"),
    "ogg": ("ogg", "libopus", "flt"),  # Opus in Ogg: 8/12/16/24/48 kHz only
    "m4a": ("ipod", "aac", "fltp"),
}


def encode(samples: np.ndarray, fmt: str, sample_rate: int = SAMPLE_RATE, channels: int = 1) -> bytes:
    """Encode (n,) or (n, channels) float32 samples into a ``fmt`` file in memory."""
    container_name, codec, sample_fmt = _ENCODERS[fmt]
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        data = np.repeat(data[:, None], channels, axis=1)
    layout = "mono" if data.shape[1] == 1 else "stereo"
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container_name) as container:
        stream = container.add_stream(codec, rate=sample_rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        planar = sample_fmt.endswith("p")
        pcm: np.ndarray = (np.clip(data, -1, 1) * 32767).astype(np.int16) if sample_fmt == "s16" else data
        frame_data = pcm.T if planar else pcm.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(frame_data), format=sample_fmt, layout=layout)
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()
