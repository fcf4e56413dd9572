"""Microphone recording, level metering and the local preflight for the desktop client.

A reader thread of ours only reads blocks from PortAudio and copies them into a queue; the GUI
thread drains the queue on a timer (level meter, elapsed time). No torch: the preflight
is the server's own code (`models.preflight`) with Silero VAD from faster-whisper.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import numpy as np

from models.audio import SAMPLE_RATE, DecodedAudio, decode
from models.preflight import PreflightSettings, Report, Role, preflight
from models.vad import speech_regions

SILENCE_DBFS = -100.0


def level_dbfs(block: np.ndarray) -> float:
    """RMS level of float32 samples in dBFS (-100 for silence)."""
    if len(block) == 0:
        return SILENCE_DBFS
    rms = float(np.sqrt(np.mean(np.square(block, dtype=np.float64))))
    return max(SILENCE_DBFS, 20.0 * np.log10(rms)) if rms > 0 else SILENCE_DBFS


def input_devices() -> list[tuple[int, str]]:
    """(index, name) of every device that can record."""
    import sounddevice as sd

    return [(i, str(d["name"])) for i, d in enumerate(sd.query_devices()) if int(d["max_input_channels"]) > 0]


class Recorder:
    """Record mono 16 kHz float32 from one input device until `stop`."""

    def __init__(self, device: int | str | None = None, block_s: float = 0.05) -> None:
        self.device = device
        self.block = int(block_s * SAMPLE_RATE)
        self._blocks: queue.Queue[np.ndarray] = queue.Queue()  # int16 blocks
        self._kept: list[np.ndarray] = []
        self._stream: Any = None
        self._started = 0.0
        self._received = 0
        self._stopping = threading.Event()
        self._reader: threading.Thread | None = None
        self._level = SILENCE_DBFS
        self._lock = threading.Lock()

    def _read(self) -> None:
        """The reader thread: blocking reads, copied into the queue, nothing else.

        A device without a clock of its own (a file played through ALSA's `file` plugin) answers
        reads at once; the thread then waits for the wall clock, so a recording is real time.
        """
        while not self._stopping.is_set():
            data, _ = self._stream.read(self.block)
            self._blocks.put(np.asarray(data)[:, 0].copy())
            self._received += len(data)
            ahead = self._received / SAMPLE_RATE - (time.monotonic() - self._started)
            if ahead > 0.01:
                time.sleep(ahead)

    def start(self) -> None:
        """Open the device and start recording."""
        import sounddevice as sd

        self._kept = []
        self._received = 0
        self._stopping.clear()
        # 16-bit: every capture device offers it, so no conversion layer can get it wrong
        self._stream = sd.InputStream(device=self.device, channels=1, samplerate=SAMPLE_RATE, dtype="int16")
        self._stream.start()
        self._started = time.monotonic()
        self._reader = threading.Thread(target=self._read, name="recorder", daemon=True)
        self._reader.start()

    def drain(self) -> np.ndarray:
        """Blocks recorded since the last call (also kept for `stop`); updates the level."""
        fresh = []
        while True:
            try:
                fresh.append(self._blocks.get_nowait())
            except queue.Empty:
                break
        audio = (np.concatenate(fresh).astype(np.float32) / 32768.0) if fresh else np.zeros(0, np.float32)
        with self._lock:
            self._kept.append(audio)
            if len(audio):
                self._level = level_dbfs(audio[-self.block :])
        return audio

    @property
    def level(self) -> float:
        """Level of the latest block, dBFS."""
        return self._level

    @property
    def elapsed_s(self) -> float:
        """Seconds since `start`."""
        return time.monotonic() - self._started if self._stream is not None else 0.0

    @property
    def recording(self) -> bool:
        """True between `start` and `stop`."""
        return self._stream is not None

    def stop(self) -> np.ndarray:
        """Stop and return everything recorded."""
        if self._stream is not None:
            self._stopping.set()
            if self._reader is not None:
                self._reader.join(2)
            self._stream.stop()
            self._stream.close()
            self._stream = None
        self.drain()
        with self._lock:
            return np.concatenate(self._kept) if self._kept else np.zeros(0, np.float32)


def play(samples: np.ndarray) -> None:
    """Play a recording on the default output (returns at once)."""
    import sounddevice as sd

    sd.play(samples, SAMPLE_RATE)


def load_file(data: bytes, max_duration_s: float = 600.0) -> np.ndarray:
    """An audio file (wav, mp3, flac, ogg, m4a) as 16 kHz mono float32."""
    return decode(data, max_duration_s).samples


def local_preflight(samples: np.ndarray, role: Role, settings: PreflightSettings | None = None) -> Report:
    """The server's preflight on a local recording, before uploading it."""
    audio = DecodedAudio(samples.astype(np.float32), "wav", SAMPLE_RATE, 1, truncated=False)
    return preflight(audio, speech_regions(audio.samples), role, settings or PreflightSettings())
