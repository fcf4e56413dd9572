"""A `/transcribe/stream` client for tests and benchmarks: send audio (paced or not), keep frames.

Each received frame is kept with the wall-clock seconds since the stream opened; when audio is
paced in real time, that clock is also the stream's audio clock (each frame leaves when its last
sample would have been spoken, as from a microphone), so a delta's latency is its arrival time
minus its ``end``.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np

from appliance.contract import STREAM_PATH
from models.audio import SAMPLE_RATE


@dataclass
class StreamResult:
    """Every server frame in order, with arrival times."""

    frames: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    close_code: int | None = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        """Frames of one type."""
        return [f for f in self.frames if f["type"] == kind]

    @property
    def deltas(self) -> list[dict[str, Any]]:
        """The final segments."""
        return self.of("delta")

    def latencies(self) -> list[float]:
        """Seconds from each delta's audio end to its arrival (meaningful when paced in real time)."""
        return [t - f["end"] for f, t in zip(self.frames, self.arrivals, strict=True) if f["type"] == "delta"]

    @property
    def text(self) -> str:
        """The deltas' text joined."""
        return " ".join(d["text"] for d in self.deltas)


def pcm16(samples: np.ndarray) -> bytes:
    """float32 -> s16le bytes."""
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


async def stream(
    base_url: str,
    key: str,
    audio: np.ndarray,
    *,
    diarize: bool = False,
    realtime: bool = False,
    frame_s: float = 0.1,
    media_type: str = "audio/pcm;rate=16000",
    payload: bytes | None = None,
    language: str | None = "en",
    timeout_s: float = 300.0,
    max_delay_s: float | None = None,
) -> StreamResult:
    """Open, send ``audio`` (16 kHz float32, as s16le PCM unless ``payload`` bytes are given), close.

    Returns once the server closes the socket.
    """
    data = payload if payload is not None else pcm16(audio)
    seconds = max(len(audio) / SAMPLE_RATE, 1e-3)
    step = max(1, int(len(data) / seconds * frame_s))  # bytes per frame_s of audio
    result = StreamResult()
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as http, http.ws_connect(base_url + STREAM_PATH, headers=headers) as ws:
        opening: dict[str, Any] = {"type": "open", "media_type": media_type, "diarize": diarize}
        if language:
            opening["language_hint"] = language
        if max_delay_s is not None:
            opening["max_delay_s"] = max_delay_s
        await ws.send_str(json.dumps(opening))
        start = time.monotonic()

        async def receive() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    result.frames.append(json.loads(msg.data))
                    result.arrivals.append(time.monotonic() - start)

        reader = asyncio.create_task(receive())
        for i, offset in enumerate(range(0, len(data), step)):
            if realtime:
                await asyncio.sleep(max(0.0, start + (i + 1) * frame_s - time.monotonic()))
            if ws.closed:
                break
            await ws.send_bytes(data[offset : offset + step])
        if not ws.closed:
            await ws.send_str(json.dumps({"type": "close"}))
        await asyncio.wait_for(reader, timeout_s)
        result.close_code = ws.close_code
    return result
