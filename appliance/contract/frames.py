"""The `/transcribe/stream` WebSocket's text frames (docs/api.md), as pydantic models.

Client -> server: `OpenRequest`, binary audio frames, then ``{"type": "close"}``.
Server -> client: `ReadyFrame`, `PartialFrame`, `DeltaFrame`, `ErrorFrame`, `DoneFrame`; each
goes out as JSON with its ``type`` and without the optional fields it does not have (never null).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from appliance.contract.documents import Segment

#: Range of the open frame's ``max_delay_s``.
MIN_DELAY_S, MAX_DELAY_S = 0.5, 20.0


class ServerFrame(BaseModel):
    """Base of the frames the server sends."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """The frame as a JSON-ready mapping, ``type`` first, unset optional fields left out."""
        return {"type": self.type, **self.model_dump(mode="json", exclude_none=True)}

    def to_json(self) -> str:
        """The frame as sent."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


class ReadyFrame(ServerFrame):
    """The session is open."""

    type: ClassVar[str] = "ready"
    backend_used: Literal["A", "B"]
    session_id: str


class PartialFrame(ServerFrame):
    """Unstable text of the phrase still being spoken."""

    type: ClassVar[str] = "partial"
    text: str
    start: float
    #: Who is probably speaking these words (may still change; the final delta decides).
    speaker_label: str | None = None


class DeltaFrame(ServerFrame, Segment):
    """A final segment; speaker fields only when a label is available."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: ClassVar[str] = "delta"


class ErrorFrame(ServerFrame):
    """Something went wrong; the session may go on or close, as the code says."""

    type: ClassVar[str] = "error"
    code: str
    message: str


class DoneFrame(ServerFrame):
    """The session is finished."""

    type: ClassVar[str] = "done"
    duration_s: float
    segments: int
    #: Words sent final, and how many of them later than ``max_delay_s`` after they were spoken.
    words: int
    late_words: int
    #: The bound this session kept (the open frame's, or the box default).
    max_delay_s: float


class OpenRequest(BaseModel):
    """The client's first text frame."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["open"]
    media_type: str
    language_hint: str | None = None
    diarize: bool = False
    #: Seconds from the end of a spoken word to its final delta (0.5-20; box default 2).
    max_delay_s: float | None = Field(default=None, ge=MIN_DELAY_S, le=MAX_DELAY_S)


#: Server frame classes by their ``type``.
SERVER_FRAMES: dict[str, type[ServerFrame]] = {
    frame.type: frame for frame in (ReadyFrame, PartialFrame, DeltaFrame, ErrorFrame, DoneFrame)
}


def parse_server_frame(data: dict[str, Any]) -> ServerFrame | None:
    """A received server frame as its model; None for a type this version does not know (newer
    servers may add frames); pydantic's ValidationError for a known type with bad fields."""
    kind = SERVER_FRAMES.get(str(data.get("type")))
    if kind is None:
        return None
    return kind.model_validate({k: v for k, v in data.items() if k != "type"})
