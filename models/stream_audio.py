"""Incremental decoders for streamed audio: bytes in any split -> 16 kHz mono float32 samples.

A WebSocket client sends its audio in frames of any size, so a decoder must keep whatever it
cannot use yet (half a sample, half a RIFF header) and hand back every complete sample as soon
as it has it. What it keeps between calls is bounded: at most one frame of samples and, for WAV,
a header of at most `MAX_HEADER_BYTES`.
"""

from __future__ import annotations

import io
import queue
import struct
import threading
from typing import Any

import av
import numpy as np

from models.audio import SAMPLE_RATE

#: A WAV header (RIFF, fmt and any chunks before `data`) longer than this is refused.
MAX_HEADER_BYTES = 64 * 1024
_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_FLOAT = 3
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


class StreamFormatError(Exception):
    """The stream's bytes are not the audio its media type promised."""


class _Resampler:
    """Mono float32 at ``rate`` -> 16 kHz, keeping the filter state across calls."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler = (
            None if rate == SAMPLE_RATE else av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        )

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        if self._resampler is None or len(samples) == 0:
            return samples
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.rate
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, dtype=np.float32)


class PcmDecoder:
    """Raw little-endian signed 16-bit mono PCM at a given rate."""

    def __init__(self, rate: int, channels: int = 1, sample_format: str = "s16") -> None:
        self.channels = channels
        self.sample_format = sample_format
        self.width = {"s16": 2, "s32": 4, "f32": 4, "u8": 1}[sample_format]
        self._resample = _Resampler(rate)
        self._rest = b""

    def feed(self, data: bytes) -> np.ndarray:
        """The complete samples in ``self._rest + data``; a partial frame waits for the next call."""
        data = self._rest + data
        frame_bytes = self.width * self.channels
        whole = len(data) // frame_bytes * frame_bytes
        self._rest = data[whole:]
        raw = data[:whole]
        if self.sample_format == "s16":
            samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        elif self.sample_format == "s32":
            samples = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
        elif self.sample_format == "f32":
            samples = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        else:
            samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
        if self.channels > 1:
            samples = samples.reshape(-1, self.channels).mean(axis=1)
        return self._resample(np.ascontiguousarray(samples, dtype=np.float32))

    def close(self) -> np.ndarray:
        """End of stream: nothing is held back but a partial sample, which is dropped."""
        return np.zeros(0, dtype=np.float32)


class WavDecoder:
    """A RIFF/WAVE stream: the header is parsed as it arrives, then the `data` chunk is PCM.

    Streams written live usually carry a data length of 0 or 0xFFFFFFFF; the length is ignored
    and everything after the header is taken as samples.
    """

    def __init__(self) -> None:
        self._header = b""
        self._pcm: PcmDecoder | None = None

    def feed(self, data: bytes) -> np.ndarray:
        """Samples completed by ``data``; `StreamFormatError` when the header is not a usable WAV."""
        if self._pcm is not None:
            return self._pcm.feed(data)
        self._header += data
        parsed = self._parse_header()
        if parsed is None:
            if len(self._header) > MAX_HEADER_BYTES:
                raise StreamFormatError("the WAV header is too long or has no data chunk")
            return np.zeros(0, dtype=np.float32)
        self._pcm, offset = parsed
        rest, self._header = self._header[offset:], b""
        return self._pcm.feed(rest)

    def close(self) -> np.ndarray:
        """End of stream."""
        return np.zeros(0, dtype=np.float32)

    def _parse_header(self) -> tuple[PcmDecoder, int] | None:
        head = self._header
        if len(head) >= 12 and (head[:4] != b"RIFF" or head[8:12] != b"WAVE"):
            raise StreamFormatError("audio/wav streams must start with a RIFF/WAVE header")
        pos, fmt = 12, None
        while len(head) >= pos + 8:
            chunk_id, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
            body = pos + 8
            if chunk_id == b"data":
                if fmt is None:
                    raise StreamFormatError("the WAV data chunk comes before its fmt chunk")
                return fmt, body
            if len(head) < body + size:
                return None
            if chunk_id == b"fmt ":
                fmt = self._format(head[body : body + size])
            pos = body + size + (size & 1)
        return None

    @staticmethod
    def _format(chunk: bytes) -> PcmDecoder:
        if len(chunk) < 16:
            raise StreamFormatError("the WAV fmt chunk is truncated")
        tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", chunk[:16])
        if tag == _WAVE_FORMAT_EXTENSIBLE and len(chunk) >= 26:
            tag = struct.unpack("<H", chunk[24:26])[0]
        formats = {(_WAVE_FORMAT_PCM, 16): "s16", (_WAVE_FORMAT_PCM, 32): "s32", (_WAVE_FORMAT_PCM, 8): "u8",
                   (_WAVE_FORMAT_FLOAT, 32): "f32"}  # fmt: skip
        sample_format = formats.get((tag, bits))
        if sample_format is None:
            raise StreamFormatError("WAV streams must be 8/16/32-bit PCM or 32-bit float")
        if not 1 <= channels <= 8 or not 8000 <= rate <= 192000:
            raise StreamFormatError("WAV streams need 1-8 channels at 8-192 kHz")
        return PcmDecoder(rate, channels, sample_format)


class _BlockingPipe(io.RawIOBase):
    """A read-only file whose `read` waits for the next chunk the stream delivers (None = end)."""

    def __init__(self, chunks: queue.Queue[bytes | None]) -> None:
        self._chunks = chunks
        self._rest = b""
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest and not self._ended:
            chunk = self._chunks.get()
            if chunk is None:
                self._ended = True
            else:
                self._rest = chunk
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size


class ContainerDecoder:
    """Ogg (Opus, Vorbis) or WebM/Matroska audio, demuxed and decoded by PyAV as bytes arrive.

    FFmpeg reads from a file object, so the demuxer runs in its own thread and reads from a pipe
    that blocks until the next frame arrives; decoded samples are collected by `feed` (whatever is
    ready by then) and `close` (the rest). The container is named up front (never probed).
    """

    #: Seconds `close` waits for the decoder thread to drain.
    CLOSE_TIMEOUT_S = 10.0

    def __init__(self, container: str) -> None:
        self._chunks: queue.Queue[bytes | None] = queue.Queue()
        self._decoded: queue.Queue[np.ndarray | Exception] = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(container,), name="stream-demux", daemon=True)
        self._thread.start()

    def _run(self, container_format: str) -> None:
        try:
            resample = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            with av.open(_BlockingPipe(self._chunks), mode="r", format=container_format) as container:
                if not container.streams.audio:
                    raise StreamFormatError("the stream has no audio track")
                for frame in container.decode(audio=0):
                    for out in resample.resample(frame):
                        self._decoded.put(out.to_ndarray().reshape(-1).astype(np.float32))
                for out in resample.resample(None):
                    self._decoded.put(out.to_ndarray().reshape(-1).astype(np.float32))
        except StreamFormatError as exc:
            self._decoded.put(exc)
        except (av.FFmpegError, ValueError) as exc:
            self._decoded.put(StreamFormatError(f"the {container_format} stream cannot be decoded: {exc}"))

    def _collect(self) -> np.ndarray:
        pieces = []
        while True:
            try:
                item = self._decoded.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Exception):
                raise item
            pieces.append(item)
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)

    def feed(self, data: bytes) -> np.ndarray:
        """Hand bytes to the demuxer; returns the samples decoded so far."""
        self._chunks.put(data)
        return self._collect()

    def close(self) -> np.ndarray:
        """End of stream (also after an error or abort: it ends the thread): the samples still to come."""
        self._chunks.put(None)
        self._thread.join(self.CLOSE_TIMEOUT_S)
        return self._collect()


#: What the stream route holds: any of the decoders above.
StreamDecoder = PcmDecoder | WavDecoder | ContainerDecoder
