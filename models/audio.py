"""Decode uploaded recordings in memory with PyAV and resample them to 16 kHz mono float32.

Nothing here touches the disk: bytes in, samples out. The container is sniffed from its magic
bytes first and then opened with that one demuxer, so FFmpeg never guesses a format for
untrusted input, and anything but the five supported containers is refused up front.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
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


class AudioPieces:
    """A whole file decoded piece by piece: (n,) float32 at 16 kHz, about ``piece_s`` at a time.

    Memory stays at one piece whatever the file expands to (a few MB of FLAC can hold hours of
    silence), and decoding stops after ``max_duration_s``. ``format``, ``sample_rate_in`` and
    ``channels_in`` are known once the first piece came out; ``truncated`` once the last did.
    Raises an `AudioError` (from the first ``next``) for anything that is not decodable audio.
    """

    def __init__(self, data: bytes, max_duration_s: float, piece_s: float = 10.0) -> None:
        if not data:
            raise EmptyAudio("the file is empty")
        fmt = sniff_format(data)
        if fmt is None:
            raise UnsupportedFormat("not a wav, mp3, flac, ogg or m4a file")
        self.data = data
        self.format = fmt
        self.max_samples = int(max_duration_s * SAMPLE_RATE)
        self.piece = max(1, int(piece_s * SAMPLE_RATE))
        self.sample_rate_in = 0
        self.channels_in = 0
        self.truncated = False
        self.samples_out = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            yield from self._pieces()
        except AudioError:
            raise
        # Hostile headers (a WAV format tag of 0 or 0xFFFF, 0 or 65535 bits per sample) surface from
        # PyAV as any of these; every one is the file's fault, never the server's.
        except (av.FFmpegError, ValueError, IndexError, AttributeError, TypeError, OverflowError, ZeroDivisionError) as exc:  # fmt: skip  # noqa: E501
            raise UndecodableAudio(f"the {self.format} file could not be decoded (corrupt or truncated)") from exc
        if self.samples_out == 0:
            raise UndecodableAudio(f"the {self.format} file holds no audio samples")

    def _pieces(self) -> Iterator[np.ndarray]:
        pending: list[np.ndarray] = []
        held = 0
        with av.open(io.BytesIO(self.data), mode="r", format=DEMUXERS[self.format]) as container:
            if not container.streams.audio:
                raise UndecodableAudio(f"the {self.format} file has no audio stream")
            stream = container.streams.audio[0]
            self.sample_rate_in = int(stream.codec_context.sample_rate or 0)
            self.channels_in = int(stream.codec_context.channels or 0)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

            def resampled(frame: av.AudioFrame | None) -> Iterator[np.ndarray]:
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1)

            frames = (out for frame in container.decode(stream) for out in resampled(frame))
            for chunk in itertools.chain(frames, resampled(None)):
                room = self.max_samples - self.samples_out - held
                if len(chunk) >= room:
                    pending.append(chunk[:room])
                    held += min(len(chunk), room)
                    self.truncated = len(chunk) > room or self.truncated
                    break
                pending.append(chunk)
                held += len(chunk)
                if held >= self.piece:
                    yield self._emit(pending)
                    pending, held = [], 0
        if held:
            yield self._emit(pending)

    def _emit(self, chunks: list[np.ndarray]) -> np.ndarray:
        out = np.concatenate(chunks).astype(np.float32, copy=False)
        np.clip(out, -1.0, 1.0, out=out)
        self.samples_out += len(out)
        return out


def decode(data: bytes, max_duration_s: float) -> DecodedAudio:
    """Decode ``data`` (a whole file) to 16 kHz mono, stopping after ``max_duration_s``."""
    pieces = AudioPieces(data, max_duration_s)
    samples = np.concatenate(list(pieces))
    return DecodedAudio(
        samples=samples,
        format=pieces.format,
        sample_rate_in=pieces.sample_rate_in,
        channels_in=pieces.channels_in,
        truncated=pieces.truncated,
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
