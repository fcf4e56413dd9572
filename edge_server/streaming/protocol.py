"""The `/transcribe/stream` WebSocket protocol: every text frame, as dataclasses.

Client -> server: `OpenFrame`, then binary audio frames, then `CloseFrame`.
Server -> client: `ReadyFrame`, `PartialFrame`, `DeltaFrame`, `ErrorFrame`, `DoneFrame`.
Parsing never raises anything but `ProtocolError`, whose code and message go back to the client
in an `ErrorFrame`. Optional fields are omitted from the JSON, never sent as null.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from appliance.contract.errors import CodedError

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
    return OpenFrame(MediaType.parse(media_type), language, diarize)


class ServerFrame:
    """Base of server frames: ``to_json`` drops None fields and adds ``type``."""

    type: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """The frame as a JSON-ready mapping."""
        fields = {k: v for k, v in vars(self).items() if v is not None}
        return {"type": self.type, **fields}

    def to_json(self) -> str:
        """The frame as sent."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class ReadyFrame(ServerFrame):
    """The session is open."""

    type: ClassVar[str] = "ready"
    backend_used: Literal["A", "B"]
    session_id: str


@dataclass(frozen=True)
class PartialFrame(ServerFrame):
    """Unstable text of the phrase still being spoken."""

    type: ClassVar[str] = "partial"
    text: str
    start: float


@dataclass(frozen=True)
class DeltaFrame(ServerFrame):
    """A final segment; speaker fields only when a label is available."""

    type: ClassVar[str] = "delta"
    segment_id: int
    text: str
    start: float
    end: float
    speaker_label: str | None = None
    speaker_id: str | None = None
    speaker_confidence: float | None = None


@dataclass(frozen=True)
class ErrorFrame(ServerFrame):
    """Something went wrong; the session may go on or close, as the code says."""

    type: ClassVar[str] = "error"
    code: str
    message: str


@dataclass(frozen=True)
class DoneFrame(ServerFrame):
    """The session is finished."""

    type: ClassVar[str] = "done"
    duration_s: float
    segments: int
