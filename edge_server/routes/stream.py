"""`GET /transcribe/stream`: the live transcription WebSocket (frames in edge_server/streaming/protocol.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import WSMsgType, web

from appliance.contract import STREAM_PATH
from edge_server import appkeys
from edge_server.access import scopes as auth
from edge_server.access.authorize import authorize, bearer_token
from edge_server.access.scopes import Principal, missing_scope
from edge_server.access.tenancy import authenticate, new_id
from edge_server.errors import ApiError
from edge_server.streaming.backends import backend_for, new_session
from edge_server.streaming.policy import NoBackend
from edge_server.streaming.protocol import (
    CloseFrame,
    DoneFrame,
    ErrorFrame,
    MediaType,
    OpenFrame,
    ProtocolError,
    ReadyFrame,
    ServerFrame,
    parse_client_frame,
)
from edge_server.streaming.session import Transcription
from models.stream_audio import ContainerDecoder, PcmDecoder, StreamDecoder, StreamFormatError, WavDecoder

log = logging.getLogger("scaiecho.stream")
routes = web.RouteTableDef()
#: Largest single WebSocket message accepted (about 30 s of 16 kHz PCM).
MAX_MESSAGE_BYTES = 1 << 20
#: Close codes beyond the WebSocket standard ones (4000-4999 are the application's).
CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN, CLOSE_IDLE, CLOSE_UNAVAILABLE = 4401, 4403, 4408, 4503
CLOSE_UNSUPPORTED = 1003


class Stream:
    """One WebSocket connection: frames in, a `Transcription`, frames out."""

    def __init__(self, app: web.Application, ws: web.WebSocketResponse, principal: Principal, token: str) -> None:
        self.app = app
        self.ws = ws
        self.principal = principal
        self.token = token
        self.settings = app[appkeys.SETTINGS].stream
        self.session: Transcription | None = None
        self.decoder: StreamDecoder | None = None
        self.session_id = new_id("ses")
        self._send_lock = asyncio.Lock()

    async def send(self, frame: ServerFrame) -> None:
        """Send one frame unless the socket is closed already."""
        async with self._send_lock:
            if not self.ws.closed:
                with contextlib.suppress(ConnectionError):  # the client is gone; the reader sees it next
                    await self.ws.send_str(frame.to_json())

    async def fail(self, code: str, message: str, close_code: int) -> None:
        """An error frame, then close the socket."""
        await self.send(ErrorFrame(code=code, message=message))
        await self.ws.close(code=close_code, message=code.encode()[:120])

    async def run(self) -> None:
        """Serve until the client closes, finishes or is cut off; nothing survives the session."""
        watchdog = asyncio.get_running_loop().create_task(self._watch_key())
        finished = False
        open_streams = self.app[appkeys.METRICS].streams_open
        open_streams.inc()
        try:
            finished = await self._serve()
        finally:
            open_streams.dec()
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
            if self.decoder is not None:
                with contextlib.suppress(StreamFormatError):
                    await asyncio.to_thread(self.decoder.close)  # ends a demuxer thread, if any
            if self.session is not None and not finished:
                await self.session.abort()
            log.info("stream %s ended (%s)", self.session_id, "finished" if finished else "aborted")

    async def _watch_key(self) -> None:
        """Close the stream once its key is revoked."""
        db = self.app[appkeys.DB]
        while True:
            await asyncio.sleep(self.settings.key_check_interval_s)
            if authenticate(db, self.token) is None:
                await self.fail("unauthenticated", "the API key of this stream was revoked", CLOSE_UNAUTHENTICATED)
                return

    async def _serve(self) -> bool:
        """The frame loop; True when the session finished with a `done` frame.

        Idle means no text or audio frame from the client: pings and pongs do not count, so the
        deadline wraps the whole receive (aiohttp restarts its own receive timeout at each ping).
        """
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with asyncio.timeout_at(loop.time() + self.settings.idle_timeout_s):
                    msg = await self.ws.receive()
            except TimeoutError:
                idle = f"no frame for {self.settings.idle_timeout_s:g} s; the stream is closed"
                await self.fail("idle_timeout", idle, CLOSE_IDLE)
                return False
            if msg.type == WSMsgType.TEXT:
                try:
                    frame = parse_client_frame(msg.data)
                except ProtocolError as exc:
                    await self.send(ErrorFrame(code=exc.code, message=exc.message))
                    continue
                if isinstance(frame, OpenFrame):
                    if not await self._open(frame):
                        return False
                elif isinstance(frame, CloseFrame):
                    if self.session is None:
                        await self.send(
                            ErrorFrame(code="bad_frame", message="close before open: send an open frame first")
                        )
                        continue
                    await self._finish()
                    return True
            elif msg.type == WSMsgType.BINARY:
                if self.session is None or self.decoder is None:
                    await self.send(ErrorFrame(code="bad_frame", message="audio before open: send an open frame first"))
                    continue
                try:
                    samples = self.decoder.feed(msg.data)
                except StreamFormatError as exc:
                    await self.fail("unsupported_media", str(exc), CLOSE_UNSUPPORTED)
                    return False
                await self.session.feed(samples)
                if self.session.full:
                    limit = f"the session reached its maximum length of {self.settings.max_session_s:g} s"
                    await self.send(ErrorFrame(code="session_too_long", message=limit))
                    await self._finish()
                    return True
            else:  # the client closed, or the connection broke
                return False

    async def _open(self, frame: OpenFrame) -> bool:
        if self.session is not None:
            await self.send(
                ErrorFrame(code="bad_frame", message="this stream is already open; one open per connection")
            )
            return True
        if frame.diarize and (lacking := missing_scope(self.principal.scopes, auth.DIARIZE)) is not None:
            await self.fail("forbidden", f"diarize needs the {lacking} scope, which this key lacks", CLOSE_FORBIDDEN)
            return False
        try:
            backend = backend_for(self.app, self.principal.tenant_id)
        except NoBackend as exc:
            await self.fail(exc.code, exc.message, CLOSE_UNAVAILABLE)
            return False
        self.decoder = _decoder(frame.media_type)
        self.session = new_session(
            self.app,
            self.principal,
            backend,
            self.send,
            diarize=frame.diarize,
            language=frame.language_hint,
            max_delay_s=frame.max_delay_s,
        )
        log.info("stream %s open: backend %s, diarize %s", self.session_id, backend, frame.diarize)
        await self.send(ReadyFrame(backend_used=backend, session_id=self.session_id))
        return True

    async def _finish(self) -> None:
        assert self.session is not None and self.decoder is not None
        try:
            rest = await asyncio.to_thread(self.decoder.close)
        except StreamFormatError as exc:
            await self.send(ErrorFrame(code="unsupported_media", message=str(exc)))
        else:
            await self.session.feed(rest)
        await self.session.finish()
        session = self.session
        await self.send(
            DoneFrame(
                duration_s=round(session.duration_s, 3),
                segments=session.segments,
                words=session.words,
                late_words=session.late_words,
                max_delay_s=session.max_delay_s,
            )
        )
        await self.ws.close()


def _decoder(media: MediaType) -> StreamDecoder:
    if media.kind == "pcm":
        assert media.rate is not None
        return PcmDecoder(media.rate)
    if media.name == "audio/wav":
        return WavDecoder()
    return ContainerDecoder("ogg" if media.name == "audio/ogg" else "matroska")


@routes.get(STREAM_PATH)
async def transcribe_stream(request: web.Request) -> web.StreamResponse:
    """The streaming WebSocket; keys without scaiecho:transcribe are refused before the upgrade."""
    principal = authorize(request, auth.TRANSCRIBE, allow_query=True)
    token = bearer_token(request, allow_query=True)
    assert token is not None
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=30.0)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "bad_request", "this route is a WebSocket: send an Upgrade request")
    await ws.prepare(request)
    await Stream(request.app, ws, principal, token).run()
    return ws
