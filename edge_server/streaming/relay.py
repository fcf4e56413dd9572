"""Backend B: relay phrases to an upstream OpenAI-compatible `POST /v1/audio/transcriptions`.

The upstream sees 16 kHz mono WAV built in memory (nothing touches the disk) and answers with
`verbose_json` segments (or plain `text`, taken as one segment). Every failure becomes a
`RelayError` whose code the stream turns into an `error` frame: never a hang, never a traceback.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import numpy as np

from appliance.contract.errors import CodedError
from appliance.settings import BackendBSettings
from models.audio import SAMPLE_RATE, encode
from models.base import Segment

PATH = "/v1/audio/transcriptions"


class RelayError(CodedError):
    """The upstream failed; ``code`` is one of upstream_unconfigured|unavailable|timeout|error."""


def _segments(payload: dict[str, Any], duration_s: float) -> list[Segment]:
    found = payload.get("segments")
    if isinstance(found, list) and found:
        return [
            Segment(float(s.get("start", 0.0)), float(s.get("end", duration_s)), str(s.get("text", "")).strip())
            for s in found
            if isinstance(s, dict) and str(s.get("text", "")).strip()
        ]
    text = str(payload.get("text", "")).strip()
    return [Segment(0.0, duration_s, text)] if text else []


class SpeechRelay:
    """A client of one upstream, sharing the app's HTTP session."""

    def __init__(self, settings: BackendBSettings, http: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.http = http

    @property
    def configured(self) -> bool:
        """True when an upstream URL is set."""
        return self.settings.url is not None

    async def transcribe(self, samples: np.ndarray, language: str | None = None) -> list[Segment]:
        """(n,) float32 at 16 kHz -> segments with times relative to ``samples``."""
        if self.settings.url is None:
            raise RelayError("upstream_unconfigured", "Backend B has no upstream URL configured")
        form = aiohttp.FormData()
        form.add_field("file", encode(samples, "wav"), filename="phrase.wav", content_type="audio/wav")
        form.add_field("model", self.settings.model)
        form.add_field("response_format", "verbose_json")
        if language:
            form.add_field("language", language.split("-")[0])
        headers = {"Authorization": f"Bearer {self.settings.api_key}"} if self.settings.api_key else {}
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        url = self.settings.url.rstrip("/") + PATH
        try:
            async with self.http.post(url, data=form, headers=headers, timeout=timeout) as resp:
                if resp.status != 200:
                    raise RelayError("upstream_error", f"the speech-to-text upstream answered HTTP {resp.status}")
                try:
                    payload = await resp.json(content_type=None)
                except ValueError as exc:
                    raise RelayError("upstream_error", "the speech-to-text upstream sent malformed JSON") from exc
        except TimeoutError as exc:
            raise RelayError(
                "upstream_timeout", f"the speech-to-text upstream did not answer within {self.settings.timeout_s:g} s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise RelayError("upstream_unavailable", "the speech-to-text upstream cannot be reached") from exc
        if not isinstance(payload, dict):
            raise RelayError("upstream_error", "the speech-to-text upstream sent an unexpected document")
        return _segments(payload, len(samples) / SAMPLE_RATE)
