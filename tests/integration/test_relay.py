"""Backend B's relay against a real upstream HTTP server process."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from appliance.settings import BackendBSettings
from edge_server.streaming.relay import RelayError, SpeechRelay
from tests.support import free_port, speech_like
from tests.upstream_stub import KEY


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def relay(http: aiohttp.ClientSession, url: str | None, model: str = "ok", key: str = KEY, timeout: float = 5.0):
    return SpeechRelay(BackendBSettings(url=url, api_key=key, model=model, timeout_s=timeout), http)


async def test_segments_come_back_with_times(upstream: str, http: aiohttp.ClientSession) -> None:
    segments = await relay(http, upstream).transcribe(speech_like(3.0), language="en-US")
    assert [s.text for s in segments] == ["heard 3.0 seconds in en part one", "part two"]
    assert segments[0].start == 0.0 and segments[-1].end == pytest.approx(3.0, abs=0.01)


async def test_plain_text_answer_is_one_segment(upstream: str, http: aiohttp.ClientSession) -> None:
    segments = await relay(http, upstream, model="text-only").transcribe(speech_like(2.0))
    assert len(segments) == 1 and segments[0].text == "heard 2.0 seconds in auto"
    assert (segments[0].start, segments[0].end) == (0.0, 2.0)


@pytest.mark.parametrize(
    ("model", "key", "timeout", "code"),
    [
        ("fail", KEY, 5.0, "upstream_error"),
        ("ok", "wrong-key", 5.0, "upstream_error"),
        ("garbage", KEY, 5.0, "upstream_error"),
        ("slow", KEY, 0.5, "upstream_timeout"),
    ],
)
async def test_upstream_failures_are_clear_errors(
    upstream: str, http: aiohttp.ClientSession, model: str, key: str, timeout: float, code: str
) -> None:
    started = time.monotonic()
    with pytest.raises(RelayError) as err:
        await relay(http, upstream, model=model, key=key, timeout=timeout).transcribe(speech_like(1.0))
    assert err.value.code == code and err.value.message
    assert time.monotonic() - started < 5.0  # bounded by the timeout, never a hang


async def test_unreachable_and_unconfigured(http: aiohttp.ClientSession) -> None:
    with pytest.raises(RelayError) as err:
        await relay(http, f"http://127.0.0.1:{free_port()}").transcribe(speech_like(1.0))
    assert err.value.code == "upstream_unavailable"
    with pytest.raises(RelayError) as err:
        await relay(http, None).transcribe(speech_like(1.0))
    assert err.value.code == "upstream_unconfigured"
