"""Stream a WAV file to ScaiEcho in real time and print who said what.

    SCAIGRID_HOST=http://127.0.0.1:8080 SCAIGRID_API_KEY=sce_... python live_transcript.py call.wav

Needs only aiohttp. The file is sent as it is (a RIFF header, then PCM) in 100 ms frames, paced
like a live microphone; `--fast` sends it as fast as the appliance takes it. Words arrive final
while people speak (within `--max-delay` seconds); a speaker's words stay on one line, and a new
line starts when someone else speaks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import wave
from pathlib import Path

import aiohttp


async def main(path: str, fast: bool, max_delay_s: float) -> None:
    host = os.environ.get("SCAIGRID_HOST", "http://127.0.0.1:8080").rstrip("/")
    key = os.environ["SCAIGRID_API_KEY"]
    with wave.open(path, "rb") as w:
        bytes_per_second = w.getframerate() * w.getnchannels() * w.getsampwidth()
    data = Path(path).read_bytes()
    step = bytes_per_second // 10
    url = host + "/v1/modules/scaiecho/transcribe/stream"
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers={"Authorization": f"Bearer {key}"}) as ws:
        opening = {"type": "open", "language_hint": "en", "media_type": "audio/wav", "diarize": True}
        await ws.send_json({**opening, "max_delay_s": max_delay_s})

        async def send() -> None:
            for offset in range(0, len(data), step):
                await ws.send_bytes(data[offset : offset + step])
                if not fast:
                    await asyncio.sleep(0.1)
            await ws.send_json({"type": "close"})

        sender = asyncio.create_task(send())
        speaking = None  # whose line is open
        async for msg in ws:
            frame = json.loads(msg.data)
            if frame["type"] == "delta":
                label = frame.get("speaker_label", "?")
                if label == speaking:
                    print(" " + frame["text"], end="", flush=True)
                else:
                    print(("\n" if speaking else "") + f"{label}: {frame['text']}", end="", flush=True)
                    speaking = label
            elif frame["type"] in ("error", "done"):
                print(("\n" if speaking else "") + str(frame), flush=True)
                speaking = None
        sender.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("wav")
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--max-delay", type=float, default=2.0, help="seconds from a word to its final text")
    args = parser.parse_args()
    asyncio.run(main(args.wav, args.fast, args.max_delay))
