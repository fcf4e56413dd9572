"""The nodes' internal HTTP API, named in one place for the node and the edge server's client.

Authenticated with the cluster secret (``Authorization: Bearer <secret>``), never with a
tenant's API key. Audio travels as raw little-endian float32 samples at 16 kHz mono.
"""

from __future__ import annotations

import base64

import numpy as np

AUDIO_CONTENT_TYPE = "application/x-scaiecho-f32le"
STATUS_PATH = "/internal/v1/status"
#: POST {"model": str, "items": [{"tenant_id", "speaker_id", "embedding": base64 f32le}]}
EMBEDDINGS_PATH = "/internal/v1/embeddings"
#: GET -> {"node_id", "held": [[tenant_id, speaker_id], ...]}: what the process holds in memory.
HELD_PATH = "/internal/v1/held"
#: Header of a hold request: Unix time after which the node must not apply the hold. A caller
#: that timed out counts the hold as possibly applied; a node that was frozen past this instant
#: (SIGSTOP, swap storm) drops the hold instead of holding a speaker erased in the meantime.
HOLD_DEADLINE_HEADER = "X-Scaiecho-Hold-Deadline"


def speakers_path(tenant_id: str) -> str:
    """Collection of one tenant's held speakers."""
    return f"/internal/v1/tenants/{tenant_id}/speakers"


def identify_path(tenant_id: str, turns: bool = False) -> str:
    """POST speech -> its embedding and its cosine score against each held speaker of the tenant
    (``turns``: and its speaker turns with each local speaker's voice)."""
    return f"/internal/v1/tenants/{tenant_id}/identify" + ("?turns=1" if turns else "")


def speaker_path(tenant_id: str, speaker_id: str) -> str:
    """One held speaker: PUT audio to hold it, DELETE to evict it."""
    return f"{speakers_path(tenant_id)}/{speaker_id}"


def encode_samples(samples: np.ndarray) -> bytes:
    """(n,) float32 at 16 kHz -> request body."""
    return np.ascontiguousarray(samples, dtype="<f4").tobytes()


def decode_samples(body: bytes) -> np.ndarray:
    """Request body -> (n,) float32; ValueError when the length is not whole samples."""
    if len(body) % 4:
        raise ValueError("body is not a whole number of float32 samples")
    return np.frombuffer(body, dtype="<f4").astype(np.float32)


def encode_vector(vector: np.ndarray) -> str:
    """(dim,) float32 embedding -> base64 text for JSON."""
    return base64.b64encode(encode_samples(vector)).decode()


def decode_vector(text: str) -> np.ndarray:
    """Inverse of `encode_vector`; ValueError when malformed."""
    return decode_samples(base64.b64decode(text.encode(), validate=True))
