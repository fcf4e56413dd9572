"""The `/transcribe/stream` WebSocket's text frames (docs/api.md), as pydantic models.

Client -> server: `OpenRequest`, binary audio frames, then ``{"type": "close"}``.
Server -> client: `ReadyFrame`, `PartialFrame`, `DeltaFrame`, `ErrorFrame`, `DoneFrame`; each
goes out as JSON with its ``type`` and without the optional fields it does not have (never null).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from appliance.contract.documents import Segment


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


class OpenRequest(BaseModel):
    """The client's first text frame."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["open"]
    media_type: str
    language_hint: str | None = None
    diarize: bool = False
