"""The desktop client's side of the public API (docs/api.md), on an asyncio loop of its own.

Network work never runs on the GUI thread: `Worker` owns an event loop in a background thread;
screens submit coroutines and get `concurrent.futures.Future`s, whose results Qt delivers back
to the GUI thread through a signal (gui/window.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import numpy as np

from appliance.contract import BASE, STREAM_PATH
from models.audio import SAMPLE_RATE, encode

T = TypeVar("T")


class ApiFailure(Exception):
    """A request that did not succeed: HTTP status (None when unreachable) and the error body."""

    def __init__(self, status: int | None, body: dict[str, Any] | None) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class Worker:
    """An asyncio loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="scaiecho-net", daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run ``coro`` on the loop."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        """Cancel pending work, then stop the loop."""

        async def cancel_all() -> None:
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@dataclass(frozen=True)
class Connection:
    """Where the appliance is and the key to use."""

    url: str
    key: str
    #: PEM file of the appliance CA (`scaiecho-admin ca export`), trusted beside the system's CAs.
    ca_file: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        """Bearer authorization."""
        return {"Authorization": f"Bearer {self.key}"}

    def session(self, timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientSession:
        """An HTTP session that verifies the appliance's certificate against ``ca_file`` too."""
        connector = None
        if self.ca_file:
            context = ssl.create_default_context()
            context.load_verify_locations(self.ca_file)
            connector = aiohttp.TCPConnector(ssl=context)
        return aiohttp.ClientSession(timeout=timeout, connector=connector)


class ApiClient:
    """Async calls of the public API; every failure is an `ApiFailure`."""

    def __init__(self, connection: Connection, timeout_s: float = 15.0) -> None:
        self.connection = connection
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = self.connection.url.rstrip("/") + path
        try:
            async with (
                self.connection.session(self.timeout) as http,
                http.request(method, url, headers=self.connection.headers, **kwargs) as resp,
            ):
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
                if resp.status >= 400 or not isinstance(body, dict):
                    raise ApiFailure(resp.status, body if isinstance(body, dict) else None)
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiFailure(None, None) from exc

    async def health(self) -> dict[str, Any]:
        """`/healthz` (a degraded appliance answers 503 with the same document)."""
        try:
            return await self._request("GET", "/healthz")
        except ApiFailure as exc:
            if exc.status == 503 and exc.body:
                return exc.body
            raise

    async def scopes(self) -> set[str]:
        """The key's scopes, found with requests that change nothing."""
        held: set[str] = set()
        checks = {
            "scaiecho:enroll": ("GET", f"{BASE}/speakers?limit=1"),
            "scaiecho:admin": ("GET", f"{BASE}/policy"),
        }
        for scope, (method, path) in checks.items():
            try:
                await self._request(method, path)
                held.add(scope)
            except ApiFailure as exc:
                if exc.status in (None, 401):
                    raise
        # transcribe: a form without a file is refused for its content (422) only when the scope is held
        form = aiohttp.FormData()
        form.add_field("language_hint", "en", content_type="text/plain")  # a content type makes it multipart
        try:
            await self._request("POST", f"{BASE}/transcriptions", data=form)
        except ApiFailure as exc:
            if exc.status == 422:
                held.add("scaiecho:transcribe")
        if "scaiecho:transcribe" in held and await self._can_diarize():
            held.add("scaiecho:diarize")
        return held

    async def _can_diarize(self) -> bool:
        """Open a stream with diarize on and close it at once: `ready` means the scope is held."""
        try:
            async with (
                self.connection.session(self.timeout) as http,
                http.ws_connect(self.connection.url.rstrip("/") + STREAM_PATH, headers=self.connection.headers) as ws,
            ):
                await ws.send_json({"type": "open", "media_type": "audio/pcm;rate=16000", "diarize": True})
                frame = await ws.receive_json(timeout=10)
                await ws.send_json({"type": "close"})
                return bool(frame.get("type") == "ready")
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False

    async def speakers(self) -> list[dict[str, Any]]:
        """Every speaker of the tenant (all pages)."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = f"?limit=200&cursor={cursor}" if cursor else "?limit=200"
            page = await self._request("GET", f"{BASE}/speakers{query}")
            out += page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    async def speaker(self, speaker_id: str) -> dict[str, Any]:
        """One speaker."""
        return dict((await self._request("GET", f"{BASE}/speakers/{speaker_id}"))["data"])

    async def warm(self, speaker_id: str) -> dict[str, Any]:
        """Warm, candidate and stale nodes of a speaker."""
        return dict((await self._request("GET", f"{BASE}/speakers/{speaker_id}/warm"))["data"])

    async def rewarm(self, speaker_id: str, node_ids: list[str] | None = None) -> dict[str, Any]:
        """Re-warm on every candidate node, or the listed ones."""
        body = {"node_ids": node_ids or []}
        return dict((await self._request("POST", f"{BASE}/speakers/{speaker_id}/warm", json=body))["data"])

    async def delete(self, speaker_id: str) -> dict[str, Any]:
        """Erase a speaker; the receipt."""
        return dict((await self._request("DELETE", f"{BASE}/speakers/{speaker_id}"))["data"])

    async def enroll(self, fields: dict[str, str], reference: np.ndarray, consent: np.ndarray) -> dict[str, Any]:
        """`POST /speakers` with two 16 kHz recordings (sent as WAV)."""
        form = aiohttp.FormData()
        for name, value in fields.items():
            if value:
                form.add_field(name, value)
        form.add_field("reference", encode(reference, "wav"), filename="reference.wav", content_type="audio/wav")
        form.add_field("consent", encode(consent, "wav"), filename="consent.wav", content_type="audio/wav")
        return dict((await self._request("POST", f"{BASE}/speakers", data=form))["data"])

    async def add_reference(self, speaker_id: str, reference: np.ndarray) -> dict[str, Any]:
        """`POST /speakers/{id}/references` with one more 16 kHz recording of the person (sent as WAV)."""
        form = aiohttp.FormData()
        form.add_field("reference", encode(reference, "wav"), filename="reference.wav", content_type="audio/wav")
        return dict((await self._request("POST", f"{BASE}/speakers/{speaker_id}/references", data=form))["data"])

    async def stream(
        self,
        chunks: Callable[[], Awaitable[np.ndarray | None]],
        on_frame: Callable[[dict[str, Any]], None],
        diarize: bool,
        language: str = "en",
    ) -> None:
        """Stream 16 kHz float32 audio pulled from ``chunks`` (None ends it); every frame to ``on_frame``."""
        url = self.connection.url.rstrip("/") + STREAM_PATH
        try:
            async with self.connection.session() as http, http.ws_connect(url, headers=self.connection.headers) as ws:
                opening = {"type": "open", "media_type": f"audio/pcm;rate={SAMPLE_RATE}", "diarize": diarize,
                           "language_hint": language}  # fmt: skip
                await ws.send_str(json.dumps(opening))

                async def send() -> None:
                    while (block := await chunks()) is not None:
                        if ws.closed:
                            return
                        await ws.send_bytes((np.clip(block, -1, 1) * 32767).astype("<i2").tobytes())
                    if not ws.closed:
                        await ws.send_str(json.dumps({"type": "close"}))

                sender = asyncio.create_task(send())
                try:
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            on_frame(json.loads(msg.data))
                finally:
                    sender.cancel()
        except aiohttp.WSServerHandshakeError as exc:
            raise ApiFailure(exc.status, None) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiFailure(None, None) from exc
