"""A node's speech handlers: the request body as speech, its embedding, and `identify` (windows
scored against the tenant's held speakers and, for a live stream, the turns segmentation cuts)."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
from aiohttp import web

from appliance import node_protocol as proto
from appliance.node.state import STATE, Refused
from models.segmentation import hear_speakers

log = logging.getLogger("scaiecho.node")

#: Less speech than this cannot give a usable embedding.
MIN_SPEECH_S = 0.5


async def speech_body(request: web.Request) -> np.ndarray:
    """The request body as speech (f32le, 16 kHz); `Refused` when it is not that, or too short."""
    try:
        samples = proto.decode_samples(await request.read())
    except ValueError as exc:
        raise Refused(400, "invalid_audio", str(exc)) from exc
    if len(samples) < MIN_SPEECH_S * 16000:
        raise Refused(422, "too_short", f"at least {MIN_SPEECH_S} s of speech is needed")
    return samples


async def embed_body(request: web.Request) -> np.ndarray:
    """The request body's speech (f32le, 16 kHz) embedded off the event loop; `Refused` if unusable."""
    samples = await speech_body(request)
    try:
        return await asyncio.to_thread(request.app[STATE].embedder.embed, samples)
    except ValueError as exc:
        raise Refused(422, "embedding_failed", str(exc)) from exc


async def embed_windows_of(request: web.Request, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like `embed_body`, per sliding window: (starts (w,), unit embeddings (w, dim), the whole speech's
    embedding exactly as `hold_speaker` would hold it)."""
    try:
        starts, data = await asyncio.to_thread(request.app[STATE].embedder.embed_windows, samples)
    except ValueError as exc:
        raise Refused(422, "embedding_failed", str(exc)) from exc
    norms = np.linalg.norm(data, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise Refused(422, "embedding_failed", "the embedding is degenerate (silent input?)")
    mean = data.mean(axis=0)
    length = float(np.linalg.norm(mean))
    if not np.isfinite(length) or length == 0.0:
        raise Refused(422, "embedding_failed", "the embedding is degenerate (silent input?)")
    return starts, (data / norms).astype(np.float32), (mean / length).astype(np.float32)


async def identify(request: web.Request) -> web.Response:
    """POST speech -> its sliding windows' embeddings and their cosine to every speaker held for the tenant.

    The whole phrase's embedding is the normalized mean of its windows, so the caller can score
    any run of windows (a speaker turn) without asking again. ``profile`` is the embedding a hold
    of the same speech computes: enrollment pushes it to the other nodes instead of embedding the
    reference once more on each of them. With ``?turns=1`` (a live stream) the node also cuts the
    speech into turns of one local speaker each (segmentation) and gives each local speaker's voice.
    """
    state = request.app[STATE]
    samples = await speech_body(request)
    starts, windows, profile = await embed_windows_of(request, samples)
    held = state.embeddings.get(request.match_info["tenant_id"], {})
    ids = list(held)
    matrix = np.stack([held[s] for s in ids]) if ids else np.zeros((0, windows.shape[1]), dtype=np.float32)
    scores = matrix @ windows.T
    window_s = state.embedder.window_s

    def scored(vector: np.ndarray, values: np.ndarray) -> dict[str, object]:
        return {
            "embedding": proto.encode_vector(vector),
            "scores": {s: round(float(values[j]), 5) for j, s in enumerate(ids)},
        }

    body: dict[str, object] = {
        "node_id": state.node_id,
        "model": state.embedder.model_name,
        "profile": proto.encode_vector(profile),
        "windows": [
            {
                "start": round(float(start), 3),
                "end": round(float(start) + window_s, 3),
                **scored(windows[i], scores[:, i]),
            }
            for i, start in enumerate(starts)
        ],
    }
    if request.query.get("turns") == "1" and state.segmenter is not None:
        try:
            turns, voices = await asyncio.to_thread(
                hear_speakers, state.segmenter, state.embedder, samples, (starts, windows)
            )
        except ValueError as exc:  # the caller cuts turns from the windows instead
            log.warning("segmenting a stretch failed: %s", exc)
            return web.json_response(body)
        body["turns"] = [{"start": round(t.start, 3), "end": round(t.end, 3), "speaker": t.speaker} for t in turns]
        body["speakers"] = [
            {"speaker": k, "seconds": round(seconds, 3), **scored(vector, matrix @ vector)}
            for k, (vector, seconds) in voices.items()
        ]
    return web.json_response(body)
