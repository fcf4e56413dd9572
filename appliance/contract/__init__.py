"""The public API's contract, typed once (docs/api.md): base path, scopes, limits, and — in the
modules beside this one — every request body, response document, error envelope and WebSocket
frame as pydantic models. The edge server answers with them, `/openapi.json` is generated from
them (edge_server/openapi.py), and the desktop client and the tests import them.

It lives in the shared base (pydantic only) so the desktop client can import it without the
appliance's dependencies.
"""

from __future__ import annotations

from typing import Literal

BASE = "/v1/modules/scaiecho"
STREAM_PATH = f"{BASE}/transcribe/stream"

ENROLL = "scaiecho:enroll"
TRANSCRIBE = "scaiecho:transcribe"
DIARIZE = "scaiecho:diarize"
ADMIN = "scaiecho:admin"
ALL_SCOPES = (ENROLL, TRANSCRIBE, DIARIZE, ADMIN)
Scope = Literal["scaiecho:enroll", "scaiecho:transcribe", "scaiecho:diarize", "scaiecho:admin"]

#: Listing pages: ``?limit=`` default and maximum.
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
