"""A stand-in for the external OpenAI-compatible speech-to-text service, run as its own process.

It is the *external* peer of Backend B (not a component of ours), so tests run it for real on a
loopback port. Behaviour is chosen by the `model` form field: `ok`, `text-only`, `fail`, `slow`,
`garbage`. It checks the bearer key and that the file is a decodable WAV, and echoes what it got.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

from models.audio import decode

KEY = "upstream-test-key"


async def transcriptions(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Authorization") != f"Bearer {KEY}":
        return web.json_response({"error": {"message": "bad key"}}, status=401)
    form = await request.post()
    upload = form["file"]
    assert isinstance(upload, web.FileField)
    audio = decode(upload.file.read(), 600)
    model, language = str(form.get("model", "")), str(form.get("language", ""))
    if model == "fail":
        return web.json_response({"error": {"message": "boom"}}, status=500)
    if model == "slow":
        await asyncio.sleep(10)
    if model == "garbage":
        return web.Response(text="<html>oops</html>", content_type="text/html")
    text = f"heard {audio.duration_s:.1f} seconds in {language or 'auto'}"
    if model == "text-only":
        return web.json_response({"text": text})
    half = audio.duration_s / 2
    return web.json_response(
        {
            "text": text,
            "segments": [
                {"start": 0.0, "end": half, "text": f" {text} part one"},
                {"start": half, "end": audio.duration_s, "text": " part two"},
            ],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
