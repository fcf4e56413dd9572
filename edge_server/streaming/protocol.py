"""The `/transcribe/stream` WebSocket protocol: parsing the client's frames (the server's frames
are the contract's models, appliance/contract/frames.py, re-exported here).

Client -> server: `OpenFrame`, then binary audio frames, then `CloseFrame`.
Server -> client: `ReadyFrame`, `PartialFrame`, `DeltaFrame`, `ErrorFrame`, `DoneFrame`.
Parsing never raises anything but `ProtocolError`, whose code and message go back to the client
in an `ErrorFrame`. Optional fields are omitted from the JSON, never sent as null.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from appliance.contract.errors import CodedError
from appliance.contract.frames import (
    MAX_DELAY_S,
    MIN_DELAY_S,
    DeltaFrame,
    DoneFrame,
    ErrorFrame,
    PartialFrame,
    ReadyFrame,
    ServerFrame,
)

#: Containers the stream decoder accepts besides raw PCM.
CONTAINER_TYPES = ("audio/wav", "audio/ogg", "audio/webm")
PCM_TYPE = "audio/pcm"
MAX_LANGUAGE_CHARS = 35
_PCM_RATE = re.compile(r"^\s*rate\s*=\s*(\d{4,6})\s*$")


class ProtocolError(CodedError):
    """A frame the server cannot accept; ``code`` is the error frame's code."""


@dataclass(frozen=True)
class MediaType:
    """What the binary frames carry: a container, or raw s16le mono PCM at ``rate``."""

    kind: Literal["container", "pcm"]
    name: str
    rate: int | None = None

    @classmethod
    def parse(cls, value: str) -> MediaType:
        """``audio/wav``, ``audio/pcm;rate=16000``, ``audio/ogg``, ``audio/webm``."""
        base, _, params = value.partition(";")
        base = base.strip().lower()
        if base == PCM_TYPE:
            match = _PCM_RATE.match(params)
            if not match or not 8000 <= int(match.group(1)) <= 192000:
                raise ProtocolError("unsupported_media", "audio/pcm needs a rate, e.g. 'audio/pcm;rate=16000'")
            return cls("pcm", PCM_TYPE, int(match.group(1)))
        if base in CONTAINER_TYPES and not params.strip():
            return cls("container", base)
        supported = ", ".join([*CONTAINER_TYPES, "audio/pcm;rate=N"])
        raise ProtocolError("unsupported_media", f"media_type {value!r} is not supported ({supported})")


@dataclass(frozen=True)
class OpenFrame:
    """Starts a session."""

    media_type: MediaType
    language_hint: str | None = None
    diarize: bool = False
    #: Bound on the delay of finals; None: the box default (``stream.max_delay_s``).
    max_delay_s: float | None = None


@dataclass(frozen=True)
class CloseFrame:
    """No more audio: flush and finish."""


ClientFrame = OpenFrame | CloseFrame


def parse_client_frame(text: str) -> ClientFrame:
    """One client text frame; `ProtocolError` for bad JSON, unknown types or bad fields."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested thousands deep
        raise ProtocolError("bad_frame", "text frames must be JSON objects") from exc
    if not isinstance(data, dict):
        raise ProtocolError("bad_frame", "text frames must be JSON objects")
    kind = data.get("type")
    if kind == "close":
        return CloseFrame()
    if kind != "open":
        raise ProtocolError("bad_frame", f"unknown frame type {kind!r}; expected 'open' or 'close'")
    media_type = data.get("media_type")
    if not isinstance(media_type, str):
        raise ProtocolError("bad_frame", "open needs a media_type string")
    language = data.get("language_hint")
    if language is not None and (not isinstance(language, str) or not 0 < len(language) <= MAX_LANGUAGE_CHARS):
        raise ProtocolError("bad_frame", "language_hint must be a BCP-47 tag such as 'en'")
    diarize = data.get("diarize", False)
    if not isinstance(diarize, bool):
        raise ProtocolError("bad_frame", "diarize must be true or false")
    max_delay = data.get("max_delay_s")
    if max_delay is not None and (
        isinstance(max_delay, bool)
        or not isinstance(max_delay, int | float)
        or not MIN_DELAY_S <= max_delay <= MAX_DELAY_S
    ):
        raise ProtocolError("bad_frame", f"max_delay_s must be a number of seconds from {MIN_DELAY_S} to {MAX_DELAY_S}")
    return OpenFrame(MediaType.parse(media_type), language, diarize, None if max_delay is None else float(max_delay))


__all__ = [
    "ClientFrame", "CloseFrame", "DeltaFrame", "DoneFrame", "ErrorFrame", "MediaType", "OpenFrame", "PartialFrame",
    "ProtocolError", "ReadyFrame", "ServerFrame", "parse_client_frame",
]  # fmt: skip
