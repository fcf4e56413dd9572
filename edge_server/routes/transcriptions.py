"""`POST /transcriptions`: a whole file, decoded a piece at a time, as JSON, SRT, WebVTT or RTTM."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from aiohttp import web

from appliance.contract import BASE
from appliance.contract.documents import TranscriptionForm
from edge_server import appkeys
from edge_server.access import scopes as auth
from edge_server.access.authorize import authorize
from edge_server.access.scopes import Principal, missing_scope
from edge_server.errors import ApiError, invalid_field, json_response, validated
from edge_server.routes.forms import clean_text, multipart_parts, read_part, too_large
from edge_server.streaming.backends import backend_for, new_session
from edge_server.streaming.exports import FORMATS, to_rttm, to_srt, to_vtt
from edge_server.streaming.policy import NoBackend
from edge_server.streaming.protocol import DeltaFrame, ErrorFrame, ServerFrame
from models.audio import SAMPLE_RATE, AudioError, AudioPieces

routes = web.RouteTableDef()


async def _transcription_form(request: web.Request) -> TranscriptionForm:
    settings = request.app[appkeys.SETTINGS]
    limit = settings.server.max_upload_bytes
    values: dict[str, bytes] = {}
    async for part in multipart_parts(request, limit, "POST /transcriptions"):
        if part.name not in TranscriptionForm.model_fields:
            raise invalid_field(str(part.name), "fields are file, diarize and language_hint")
        if part.name in values:
            raise invalid_field(part.name, f"{part.name} is given more than once")
        budget = limit if part.name == "file" else 64
        values[part.name] = await read_part(part, budget, too_large(limit))
    if not values.get("file"):
        raise invalid_field("file", "the file to transcribe is required")
    texts = {name: clean_text(name, raw) or None for name, raw in values.items() if name != "file"}
    return validated(TranscriptionForm, {**texts, "file": values["file"]})


def _segment_json(frame: DeltaFrame) -> dict[str, Any]:
    return {k: v for k, v in frame.to_dict().items() if k != "type"}


@routes.post(f"{BASE}/transcriptions")
async def transcribe_file(request: web.Request) -> web.Response:
    """A whole file -> its segments as JSON, or ``?format=srt|vtt|rttm``."""
    principal = authorize(request, auth.TRANSCRIBE)
    output = request.query.get("format", "json")
    if output not in FORMATS:
        raise invalid_field("format", f"format must be one of {', '.join(FORMATS)}")
    form = await _transcription_form(request)
    data, diarize, language = form.file, form.diarize, form.language_hint
    if diarize and (lacking := missing_scope(principal.scopes, auth.DIARIZE)) is not None:
        raise ApiError(403, "forbidden", f"diarize needs the {lacking} scope", {"required_scope": lacking})
    try:
        backend = backend_for(request.app, principal.tenant_id)
    except NoBackend as exc:
        raise ApiError(503, exc.code, exc.message) from exc
    # Decoded a piece at a time and fed as it comes: memory is one piece per request however far
    # the file expands, and the box decodes at most `stream.max_file_decodes` files at once.
    async with request.app[appkeys.FILE_DECODES]:
        return await _transcribe_pieces(request, principal, backend, data, diarize, language, output)


async def _transcribe_pieces(
    request: web.Request,
    principal: Principal,
    backend: Literal["A", "B"],
    data: bytes,
    diarize: bool,
    language: str | None,
    output: str,
) -> web.Response:
    settings = request.app[appkeys.SETTINGS]
    try:
        audio = AudioPieces(data, settings.stream.max_session_s)
        pieces = iter(audio)
        first = await asyncio.to_thread(next, pieces, None)
    except AudioError as exc:
        raise ApiError(415, exc.code, f"file: {exc}", {"field": "file"}) from exc
    segments: list[DeltaFrame] = []
    errors: list[ErrorFrame] = []

    async def collect(frame: ServerFrame) -> None:
        if isinstance(frame, DeltaFrame):
            segments.append(frame)
        elif isinstance(frame, ErrorFrame):
            errors.append(frame)

    session = new_session(request.app, principal, backend, collect, diarize=diarize, language=language, realtime=False)
    try:
        piece = first
        while piece is not None:
            await session.feed(piece)
            try:
                piece = await asyncio.to_thread(next, pieces, None)
            except AudioError as exc:  # corrupt further in
                raise ApiError(415, exc.code, f"file: {exc}", {"field": "file"}) from exc
        await session.finish()
    except BaseException:
        await session.abort()
        raise
    if errors:
        raise ApiError(503, errors[0].code, errors[0].message, {"segments_lost": len(errors)})
    if output == "srt":
        return web.Response(text=to_srt(segments), content_type=FORMATS["srt"])
    if output == "vtt":
        return web.Response(text=to_vtt(segments), content_type=FORMATS["vtt"])
    if output == "rttm":
        return web.Response(text=to_rttm(segments, "transcription"), content_type=FORMATS["rttm"])
    return json_response(
        {
            "backend_used": backend,
            "duration_s": round(audio.samples_out / SAMPLE_RATE, 3),
            "truncated": audio.truncated,
            "segments": [_segment_json(s) for s in segments],
        }
    )
