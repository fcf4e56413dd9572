"""`/transcribe/stream`, `POST /transcriptions` and `/policy` on a real edge app with Whisper loaded,
the real node processes and Redis, and the real upstream process for Backend B."""

from __future__ import annotations

import asyncio
import itertools
import json
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from appliance.contract import BASE
from appliance.redis_server import BundledRedis
from appliance.settings import DiarizationSettings
from edge_server.access.tenancy import create_key, revoke_key
from edge_server.storage.db import open_database
from models.audio import SAMPLE_RATE, encode
from tests.integration.conftest import Api, ApiFactory, NodeProcess, RelayFactory, make_settings, stream_settings
from tests.integration.test_enrollment import enroll, tenant_of
from tests.stream_client import STREAM_PATH, pcm16
from tests.support import enrollment_audio, sample_audio, sample_speakers, sample_turns, solo_speech, wav_bytes

PCM = "audio/pcm;rate=16000"


@pytest.fixture
async def live(
    tmp_path: Path,
    redis_server: BundledRedis,
    cluster_secret: Path,
    nodes: list[NodeProcess],
    upstream: str,
    api_factory: ApiFactory,
) -> Api:
    """The edge app with Whisper loaded, Backend B pointed at the real upstream process."""
    return await api_factory(stream_settings(tmp_path, redis_server, cluster_secret, upstream))


def key_with(api: Api, scopes: list[str]) -> str:
    db = open_database(api.settings.db_path)
    try:
        return create_key(db, tenant_of(api), scopes, "test").token
    finally:
        db.conn.close()


class Client:
    """A WebSocket on the test app, reading frames as they come."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def open(self, media_type: str = PCM, diarize: bool = False, **extra: Any) -> dict[str, Any]:
        await self.ws.send_str(json.dumps({"type": "open", "media_type": media_type, "diarize": diarize, **extra}))
        return await self.next()

    async def next(self, timeout: float = 30) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, f"expected a text frame, got {msg.type} {msg.data!r}"
        return dict(json.loads(msg.data))

    async def send_audio(self, data: bytes, piece: int = 3200) -> None:
        for i in range(0, len(data), piece):
            await self.ws.send_bytes(data[i : i + piece])

    async def finish(self, timeout: float = 120) -> list[dict[str, Any]]:
        """Send close; every frame up to and including done."""
        await self.ws.send_str(json.dumps({"type": "close"}))
        return await self.until_closed(timeout)

    async def until_closed(self, timeout: float = 120) -> list[dict[str, Any]]:
        frames = []
        async with asyncio.timeout(timeout):
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    frames.append(json.loads(msg.data))
        return frames


async def connect(api: Api, key: str | None = None) -> Client:
    return Client(await api.client.ws_connect(STREAM_PATH, headers=api.headers(key)))


async def enroll_sample_speakers(api: Api, which: list[str]) -> dict[str, str]:
    """Enroll sample speakers by RTTM label; returns label -> display name."""
    names = {}
    for label in which:
        reference, consent = enrollment_audio(label)
        status, body = await enroll(api, wav_bytes(reference), wav_bytes(consent), display_name=f"Person {label}")
        assert status == 201 and body["data"]["enrollment_status"] == "ready", body
        names[label] = body["data"]["display_name"]
    return names


async def test_pcm_stream_gives_ready_ordered_deltas_and_done(live: Api) -> None:
    client = await connect(live)
    ready = await client.open(language_hint="en")
    assert ready["type"] == "ready" and ready["backend_used"] == "A" and ready["session_id"].startswith("ses_")
    audio = sample_audio()[: 20 * SAMPLE_RATE]
    await client.send_audio(pcm16(audio), piece=1234)  # odd sizes: samples split across frames
    frames = await client.finish()
    deltas = [f for f in frames if f["type"] == "delta"]
    words = sum(len(d["text"].split()) for d in deltas)
    done = frames[-1]
    assert done["type"] == "done" and done["duration_s"] == 20.0 and done["segments"] == len(deltas)
    assert abs(done["words"] - words) <= 2 and 0 <= done["late_words"] <= done["words"] and done["max_delay_s"] == 2.0
    assert [d["segment_id"] for d in deltas] == list(range(len(deltas)))
    assert all(d["end"] >= d["start"] >= 0 for d in deltas)
    assert all(b["start"] >= a["start"] for a, b in itertools.pairwise(deltas))
    text = " ".join(d["text"] for d in deltas).lower()
    assert "hello" in text and "new jersey" in text
    assert all("speaker_label" not in d for d in deltas)  # diarize was not asked for
    assert client.ws.close_code == 1000


async def test_wav_stream_with_diarization_names_enrolled_and_clusters_the_rest(live: Api) -> None:
    speakers = sample_speakers()
    names = await enroll_sample_speakers(live, speakers[:1])  # the second speaker stays unknown
    client = await connect(live)
    assert (await client.open("audio/wav", diarize=True))["type"] == "ready"
    await client.send_audio(encode(sample_audio(), "wav"), piece=7001)
    deltas = [f for f in await client.finish() if f["type"] == "delta"]
    labels = {d.get("speaker_label") for d in deltas}
    assert names[speakers[0]] in labels
    # the unknown caller is one or more session voices (sent at once, whole 12 s phrases are
    # labelled, and a turn mixing both callers can open a voice of its own), never a name
    voices = labels - {names[speakers[0]], None}
    assert "spk_0" in voices and all(str(v).startswith("spk_") for v in voices) and len(voices) <= 3, labels
    for d in deltas:
        if d.get("speaker_label") == names[speakers[0]]:
            assert d["speaker_id"].startswith("spk_") and 0 < d["speaker_confidence"] <= 1
        else:
            assert "speaker_id" not in d and "speaker_confidence" not in d
    # the unknown speaker's solo stretches are never given the enrolled name
    unknown = [t for t in sample_turns() if t.speaker == speakers[1] and t.end - t.start > 2]
    for d in deltas:
        inside = any(t.start + 0.5 <= d["start"] and d["end"] <= t.end - 0.5 for t in unknown)
        assert not (inside and d.get("speaker_label") == names[speakers[0]]), d


async def test_a_person_enrolled_twice_is_warned_about_and_still_named(live: Api) -> None:
    """Two profiles of one voice must not cancel each other's runner-up margin."""
    a, b = sample_speakers()
    reference, consent = (wav_bytes(x) for x in enrollment_audio(a))
    status, first = await enroll(live, reference, consent, display_name="Ada Twice")
    assert status == 201 and "possible_duplicates" not in first["data"]
    status, second = await enroll(live, reference, consent, display_name="Ada Again")
    assert status == 201, second
    flagged = second["data"]["possible_duplicates"]
    assert [d["speaker_id"] for d in flagged] == [first["data"]["id"]]
    assert flagged[0]["score"] >= DiarizationSettings().duplicate_warn
    assert "same person enrolled twice" in second["data"]["note"]
    other_reference, other_consent = (wav_bytes(x) for x in enrollment_audio(b))
    status, other = await enroll(live, other_reference, other_consent, display_name="Bo Other")
    assert status == 201 and "possible_duplicates" not in other["data"]

    client = await connect(live)
    assert (await client.open(diarize=True))["type"] == "ready"
    await client.send_audio(pcm16(solo_speech(a)))
    deltas = [f for f in await client.finish() if f["type"] == "delta"]
    labels = [d.get("speaker_label") for d in deltas]
    named = [label for label in labels if label in ("Ada Twice", "Ada Again")]
    assert len(named) >= 0.8 * len(labels) and "Bo Other" not in labels, labels


async def test_bad_frames_get_error_frames_and_the_stream_goes_on(live: Api) -> None:
    client = await connect(live)
    await client.ws.send_bytes(b"\x00\x01" * 100)
    error = await client.next()
    assert (error["type"], error["code"]) == ("error", "bad_frame") and error["message"].startswith("audio before open")
    await client.ws.send_str("{not json")
    assert (await client.next())["code"] == "bad_frame"
    await client.ws.send_str('{"type": "dance"}')
    assert (await client.next())["code"] == "bad_frame"
    await client.ws.send_str('["open"]')
    assert (await client.next())["code"] == "bad_frame"
    assert (await client.open("audio/flac"))["code"] == "unsupported_media"
    assert (await client.open("audio/pcm"))["code"] == "unsupported_media"  # no rate
    await client.ws.send_str('{"type": "close"}')
    assert (await client.next())["code"] == "bad_frame"  # close before open
    assert (await client.open())["type"] == "ready"
    second = await client.open()
    assert second["code"] == "bad_frame" and "already open" in second["message"]
    await client.send_audio(pcm16(solo_speech(sample_speakers()[0])[: 4 * SAMPLE_RATE]))
    frames = await client.finish()
    assert frames[-1]["type"] == "done" and frames[-1]["segments"] >= 1


async def test_a_broken_wav_header_ends_the_stream_cleanly(live: Api) -> None:
    client = await connect(live)
    assert (await client.open("audio/wav"))["type"] == "ready"
    await client.ws.send_bytes(b"OggS" + bytes(100))
    error = await client.next()
    assert error["type"] == "error" and error["code"] == "unsupported_media"
    await client.until_closed()
    assert client.ws.close_code == 1003
    # the server is fine: the next stream works
    client = await connect(live)
    assert (await client.open())["type"] == "ready"


async def test_permissions_at_the_upgrade_and_for_diarize(live: Api) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(live, key_with(live, ["scaiecho:enroll", "scaiecho:diarize"]))
    assert refused.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as unknown:
        await connect(live, "sce_nope_nope")
    assert unknown.value.status == 401
    client = await connect(live, key_with(live, ["scaiecho:transcribe"]))
    error = await client.open(diarize=True)
    assert error["type"] == "error" and error["code"] == "forbidden" and "scaiecho:diarize" in error["message"]
    await client.until_closed()
    assert client.ws.close_code == 4403
    # query-string token, as browsers send it
    token = key_with(live, ["scaiecho:transcribe", "scaiecho:diarize"])
    ws = await live.client.ws_connect(f"{STREAM_PATH}?access_token={token}")
    assert (await Client(ws).open(diarize=True))["type"] == "ready"


async def test_a_revoked_key_closes_its_open_stream(live: Api) -> None:
    token = key_with(live, ["scaiecho:transcribe"])
    client = await connect(live, token)
    assert (await client.open())["type"] == "ready"
    db = open_database(live.settings.db_path)
    try:
        assert revoke_key(db, token.split("_")[1])
    finally:
        db.conn.close()
    error = await client.next(timeout=5)
    assert error["code"] == "unauthenticated" and "revoked" in error["message"]
    await client.until_closed(10)
    assert client.ws.close_code == 4401


async def test_an_idle_stream_is_closed(relay_api_factory: RelayFactory) -> None:
    client = await connect(await relay_api_factory(stream={"idle_timeout_s": 0.5}))
    assert (await client.next(timeout=5))["code"] == "idle_timeout"
    await client.until_closed(5)
    assert client.ws.close_code == 4408


async def test_pings_do_not_keep_an_idle_stream_open(relay_api_factory: RelayFactory) -> None:
    """A client whose WebSocket layer pings (and answers pings) but sends no frame is still idle."""
    client = await connect(await relay_api_factory(stream={"idle_timeout_s": 1.0}))
    assert (await client.open())["type"] == "ready"
    started = asyncio.get_running_loop().time()

    async def keep_pinging() -> None:
        while not client.ws.closed:
            await client.ws.ping()
            await asyncio.sleep(0.2)

    pinger = asyncio.create_task(keep_pinging())
    try:
        assert (await client.next(timeout=10))["code"] == "idle_timeout"
    finally:
        pinger.cancel()
    assert asyncio.get_running_loop().time() - started < 5
    await client.until_closed(5)
    assert client.ws.close_code == 4408


async def test_the_maximum_session_length_ends_the_stream(
    tmp_path: Path,
    redis_server: BundledRedis,
    cluster_secret: Path,
    nodes: list[NodeProcess],
    upstream: str,
    api_factory: ApiFactory,
) -> None:
    settings = stream_settings(tmp_path, redis_server, cluster_secret, upstream, stream={"max_session_s": 3.0})
    client = await connect(await api_factory(settings))
    assert (await client.open())["type"] == "ready"
    await client.send_audio(pcm16(sample_audio()[: 10 * SAMPLE_RATE]))
    frames = await client.until_closed()
    assert [f["code"] for f in frames if f["type"] == "error"] == ["session_too_long"]
    assert frames[-1]["type"] == "done" and frames[-1]["duration_s"] == 3.0


# -- Backend B and the policy --------------------------------------------------------------------


async def put_policy(api: Api, backend: str, key: str | None = None) -> aiohttp.ClientResponse:
    return await api.client.put(f"{BASE}/policy", json={"backend": backend}, headers=api.headers(key))


async def test_policy_routes(live: Api) -> None:
    resp = await live.client.get(f"{BASE}/policy", headers=live.headers())
    assert (resp.status, (await resp.json())["data"]["backend"]) == (200, "auto")
    resp = await put_policy(live, "B")
    body = await resp.json()
    assert resp.status == 200 and body["data"]["backend"] == "B" and body["data"]["updated_at"].endswith("Z")
    resp = await put_policy(live, "C")
    assert (resp.status, (await resp.json())["error"]["details"]["field"]) == (422, "backend")
    resp = await live.client.put(f"{BASE}/policy", data="nope", headers=live.headers())
    assert resp.status == 400
    resp = await put_policy(live, "A", key_with(live, ["scaiecho:transcribe"]))
    assert (resp.status, (await resp.json())["error"]["details"]["required_scope"]) == (403, "scaiecho:admin")
    # another tenant's policy is its own
    resp = await live.client.get(f"{BASE}/policy", headers=live.headers(live.other_key))
    assert resp.status == 403  # the other tenant's key has no admin scope


async def test_backend_b_cannot_be_chosen_without_an_upstream(api: Api) -> None:
    """Choosing B on a box with no upstream would break every stream: refused, and nothing changes."""
    resp = await put_policy(api, "B")
    error = (await resp.json())["error"]
    assert resp.status == 422 and error["code"] == "backend_unavailable" and error["details"]["field"] == "backend"
    assert "no upstream configured" in error["message"]
    resp = await api.client.get(f"{BASE}/policy", headers=api.headers())
    assert (await resp.json())["data"]["backend"] == "auto"
    assert (await put_policy(api, "A")).status == 200


async def test_backend_b_relays_phrases_and_ignores_diarize(live: Api) -> None:
    assert (await put_policy(live, "B")).status == 200
    client = await connect(live)
    ready = await client.open(diarize=True, language_hint="en-US")
    assert ready["backend_used"] == "B"
    await client.send_audio(pcm16(sample_audio()[: 12 * SAMPLE_RATE]))
    frames = await client.finish()
    deltas = [f for f in frames if f["type"] == "delta"]
    assert deltas and all(d["text"].startswith("heard") and "in en" in d["text"] for d in deltas)
    assert all("speaker_label" not in d for d in deltas)
    assert frames[-1]["type"] == "done"


@pytest.mark.parametrize(("model", "code"), [("fail", "upstream_error"), ("slow", "upstream_timeout")])
async def test_backend_b_upstream_failures_are_error_frames(
    tmp_path: Path,
    redis_server: BundledRedis,
    cluster_secret: Path,
    nodes: list[NodeProcess],
    upstream: str,
    api_factory: ApiFactory,
    model: str,
    code: str,
) -> None:
    settings = stream_settings(tmp_path, redis_server, cluster_secret, upstream, load_asr=False, upstream_model=model)
    client = await connect(await api_factory(settings))
    assert (await client.open())["backend_used"] == "B"  # auto falls back to B without Whisper
    await client.send_audio(pcm16(solo_speech(sample_speakers()[0])[: 4 * SAMPLE_RATE]))
    frames = await client.finish(timeout=30)
    assert [f["code"] for f in frames if f["type"] == "error"][:1] == [code]
    assert frames[-1]["type"] == "done" and frames[-1]["segments"] == 0


async def test_no_backend_at_all_is_an_error_frame(
    tmp_path: Path, redis_server: BundledRedis, cluster_secret: Path, nodes: list[NodeProcess], api_factory: ApiFactory
) -> None:
    settings = make_settings(tmp_path / "data", redis_server.url, cluster_secret)  # no Whisper, no upstream
    client = await connect(await api_factory(settings))
    error = await client.open()
    assert error["code"] == "asr_unavailable"
    await client.until_closed(5)
    assert client.ws.close_code == 4503


# -- whole files ---------------------------------------------------------------------------------


def file_form(data: bytes, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", data, filename="call.flac")
    for name, value in fields.items():
        form.add_field(name, value)
    return form


async def test_transcriptions_json_and_exports(live: Api) -> None:
    names = await enroll_sample_speakers(live, sample_speakers())
    flac = encode(sample_audio(), "flac")
    resp = await live.client.post(
        f"{BASE}/transcriptions", data=file_form(flac, diarize="true", language_hint="en"), headers=live.headers()
    )
    body = await resp.json()
    assert resp.status == 200, body
    data = body["data"]
    assert data["backend_used"] == "A" and data["duration_s"] == 30.0 and data["segments"]
    assert set(names.values()) <= {s.get("speaker_label") for s in data["segments"]}
    for fmt, marker in (("srt", "00:00:0"), ("vtt", "WEBVTT"), ("rttm", "SPEAKER transcription 1 ")):
        resp = await live.client.post(
            f"{BASE}/transcriptions?format={fmt}", data=file_form(flac, diarize="true"), headers=live.headers()
        )
        text = await resp.text()
        assert resp.status == 200 and marker in text
        assert any(name.replace(" ", "_" if fmt == "rttm" else " ") in text for name in names.values())


async def test_transcriptions_refusals(live: Api) -> None:
    wav = wav_bytes(sample_audio()[: 3 * SAMPLE_RATE])
    transcribe_only = key_with(live, ["scaiecho:transcribe"])
    cases = [
        (file_form(wav, diarize="true"), transcribe_only, "", 403, "forbidden"),
        (file_form(b"not audio at all"), None, "", 415, "unsupported_media"),
        (file_form(wav, diarize="maybe"), None, "", 422, "invalid_field"),
        (file_form(wav), None, "?format=docx", 422, "invalid_field"),
        (file_form(wav), key_with(live, ["scaiecho:enroll"]), "", 403, "forbidden"),
    ]
    for form, key, query, status, code in cases:
        resp = await live.client.post(f"{BASE}/transcriptions{query}", data=form, headers=live.headers(key))
        assert (resp.status, (await resp.json())["error"]["code"]) == (status, code)


async def test_a_file_that_expands_enormously_is_transcribed_in_bounded_memory(live: Api) -> None:
    """A decompression bomb: 20 minutes of silence in a small FLAC. Decoded whole it would take
    77 MB of samples (and copies of them); decoded a piece at a time it takes a few MB."""
    silence = encode(np.zeros(20 * 60 * SAMPLE_RATE, np.float32), "flac")
    assert len(silence) < 2_000_000
    tracemalloc.start()
    try:
        resp = await live.client.post(f"{BASE}/transcriptions", data=file_form(silence), headers=live.headers())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    body = await resp.json()
    assert resp.status == 200 and body["data"]["duration_s"] == 1200.0 and body["data"]["segments"] == []
    assert peak < 40_000_000, f"peak {peak / 1e6:.0f} MB"


async def test_ogg_opus_stream(live: Api) -> None:
    client = await connect(live)
    assert (await client.open("audio/ogg"))["type"] == "ready"
    await client.send_audio(encode(sample_audio()[: 12 * SAMPLE_RATE], "ogg"), piece=999)
    frames = await client.finish()
    assert "hello" in " ".join(f["text"] for f in frames if f["type"] == "delta").lower()
    assert frames[-1]["type"] == "done" and abs(frames[-1]["duration_s"] - 12.0) < 0.1
