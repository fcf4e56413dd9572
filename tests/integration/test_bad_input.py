"""Every kind of bad enrollment gets the contract's error and leaves nothing stored anywhere."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from appliance.redis_server import BundledRedis
from appliance.settings import Settings
from edge_server import appkeys
from models.audio import SAMPLE_RATE, encode
from tests.integration.conftest import Api, ApiFactory, NodeProcess, make_settings
from tests.integration.test_enrollment import BASE, enroll, form, node_holds, stored_state, tenant_of
from tests.support import enrollment_audio, noise, sample_speakers, speech_like, wav_bytes

REFERENCE, CONSENT = (wav_bytes(x) for x in enrollment_audio(sample_speakers()[0]))


def lying_wav(seconds_claimed: float, seconds_real: float) -> bytes:
    """A WAV whose header claims ``seconds_claimed`` of audio but carries ``seconds_real``."""
    real = (speech_like(seconds_real) * 32767).astype("<i2").tobytes()
    claimed = int(seconds_claimed * SAMPLE_RATE * 2)
    header = b"RIFF" + struct.pack("<I", 36 + claimed) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)
    header += b"data" + struct.pack("<I", claimed)
    return header + real


FLAC = encode(enrollment_audio(sample_speakers()[0])[0], "flac")

#: name -> (form field overrides, reference bytes, consent bytes, status, error code, field or issue)
Case = tuple[dict[str, str | None], bytes | None, bytes | None, int, str, str]
CASES: dict[str, Case] = {
    "missing display_name": ({"display_name": None}, None, None, 422, "invalid_field", "display_name"),
    "overlong display_name": ({"display_name": "x" * 201}, None, None, 422, "invalid_field", "display_name"),
    "blank display_name": ({"display_name": "   "}, None, None, 422, "invalid_field", "display_name"),
    "bad language tag": ({"language_primary": "english!"}, None, None, 422, "invalid_field",
                         "language_primary"),
    "missing consent text": ({"consent_text": None}, None, None, 422, "invalid_field", "consent_text"),
    "control characters": ({"display_name": "Al\x00ice"}, None, None, 422, "invalid_field", "display_name"),
    "empty reference": ({}, b"", None, 422, "invalid_field", "reference"),
    "garbage bytes": ({}, b"\x13\x37" * 5000, None, 415, "unsupported_media", "reference"),
    "truncated flac": ({}, FLAC[:60], None, 415, "unsupported_media", "reference"),
    "unsupported format (webm)": ({}, b"\x1aE\xdf\xa3" + b"\x00" * 4000, None, 415, "unsupported_media",
                                  "reference"),
    "png as consent": ({}, None, b"\x89PNG\r\n\x1a\n" + b"\x00" * 400, 415, "unsupported_media", "consent"),
    "wav header claiming hours": ({}, lying_wav(5 * 3600, 0.5), None, 422, "preflight_failed", "too_short"),
    "silence": ({}, wav_bytes(np.zeros(10 * SAMPLE_RATE, np.float32)), None, 422, "preflight_failed",
                "no_speech"),
    "noise without speech": ({}, wav_bytes(noise(10.0)), None, 422, "preflight_failed", "no_speech"),
    "sub-second reference": ({}, wav_bytes(speech_like(0.8)), None, 422, "preflight_failed", "too_short"),
    "heavy clipping": (
        {}, wav_bytes(np.clip(speech_like(10.0) * 25, -1, 1)), None, 422, "preflight_failed", "clipping",
    ),
    "silent consent": ({}, None, wav_bytes(np.zeros(4 * SAMPLE_RATE, np.float32)), 422, "preflight_failed",
                       "no_speech"),
}  # fmt: skip


async def assert_nothing_stored(api: Api) -> None:
    assert stored_state(api) == {"speakers": 0, "blobs": 0, "consent_records": 0, "blob_files": 0}
    assert all(ids == [] for ids in (await node_holds(api, tenant_of(api))).values())


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
async def test_bad_enrollment(api: Api, case: str) -> None:
    fields, reference, consent, status, code, detail = CASES[case]
    got, body = await enroll(api, REFERENCE if reference is None else reference,
                             CONSENT if consent is None else consent, **fields)  # fmt: skip
    assert got == status, body
    error = body["error"]
    assert error["code"] == code and error["message"]
    if code == "preflight_failed":
        role = "consent" if consent is not None else "reference"
        assert error["details"]["passed"] is False
        issues = error["details"][role]["issues"]
        assert detail in {i["code"] for i in issues if i["severity"] == "error"}
    else:
        assert error["details"]["field"] == detail
    await assert_nothing_stored(api)


async def test_unknown_field_and_non_multipart(api: Api) -> None:
    data = form(REFERENCE, CONSENT)
    data.add_field("referance", b"typo", filename="x.wav")
    resp = await api.client.post(f"{BASE}/speakers", data=data, headers=api.headers())
    assert resp.status == 422 and (await resp.json())["error"]["details"]["field"] == "referance"
    resp = await api.client.post(f"{BASE}/speakers", json={"display_name": "x"}, headers=api.headers())
    assert resp.status == 415 and (await resp.json())["error"]["code"] == "unsupported_media"
    await assert_nothing_stored(api)


@pytest.fixture
def small_limit_settings(
    tmp_path: Path, redis_server: BundledRedis, cluster_secret: Path, nodes: list[NodeProcess]
) -> Settings:
    return make_settings(
        tmp_path / "data",
        redis_server.url,
        cluster_secret,
        server={"max_upload_bytes": 1_000_000},
        preflight={"max_duration_s": 20.0},
    )


async def test_oversized_upload_refused_before_read_whole(api_factory: ApiFactory, small_limit_settings: Settings):
    api = await api_factory(small_limit_settings)
    big = wav_bytes(speech_like(40.0))  # 1.28 MB > 1 MB

    # with a Content-Length: refused from the header alone
    got, body = await enroll(api, big, CONSENT)
    assert got == 413 and body["error"]["code"] == "payload_too_large"
    assert "the 1 MB limit" in body["error"]["message"] and "compressed format" in body["error"]["message"]
    assert body["error"]["details"] == {"max_upload_bytes": 1_000_000}

    # chunked, no Content-Length: refused while streaming, long before the generator is drained
    sent = 0
    total = 50 * 1024 * 1024

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        chunk = b"\x00" * 65536
        while sent < total:
            sent += len(chunk)
            yield chunk

    writer = aiohttp.MultipartWriter("form-data")
    part = writer.append(endless())
    part.set_content_disposition("form-data", name="reference", filename="r.wav")
    try:
        resp = await api.client.post(f"{BASE}/speakers", data=writer, headers=api.headers())
        assert resp.status == 413
    except aiohttp.ClientError:
        pass  # the server may close the connection on us mid-upload: also a refusal
    assert sent < total / 4
    await assert_nothing_stored(api)


async def test_recording_over_max_duration(api_factory: ApiFactory, small_limit_settings: Settings) -> None:
    api = await api_factory(small_limit_settings)
    long_flac = encode(speech_like(25.0), "flac")  # small enough to upload, longer than 20 s
    got, body = await enroll(api, long_flac, CONSENT)
    assert got == 422
    assert "too_long" in {i["code"] for i in body["error"]["details"]["reference"]["issues"]}
    await assert_nothing_stored(api)


async def test_failed_commit_leaves_no_blob(api: Api) -> None:
    """A database failure after the blobs were written removes them again."""
    db = api.client.app[appkeys.DB]
    db.execute("CREATE TRIGGER fail_speakers BEFORE INSERT ON speakers BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    got, body = await enroll(api, REFERENCE, CONSENT)
    assert got == 500 and body["error"]["code"] == "internal_error" and "disk full" not in str(body)
    db.execute("DROP TRIGGER fail_speakers")
    await assert_nothing_stored(api)


async def test_a_part_header_with_a_control_character_is_a_bad_request(api: Api) -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="display_name"\r\nX-Note: a\x01b\r\n\r\nAlice\r\n--b--\r\n'
    headers = api.headers() | {"Content-Type": "multipart/form-data; boundary=b"}
    resp = await api.client.post(f"{BASE}/speakers", data=body, headers=headers)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_request"
    await assert_nothing_stored(api)


DEEP_JSON = "[" * 100_000 + "]" * 100_000


async def test_json_nested_a_hundred_thousand_deep_is_a_bad_request(api: Api) -> None:
    headers = api.headers() | {"Content-Type": "application/json"}
    resp = await api.client.put(f"{BASE}/policy", data=DEEP_JSON, headers=headers)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_request"
    ws = await api.client.ws_connect(f"{BASE}/transcribe/stream", headers=api.headers())
    await ws.send_str(DEEP_JSON)
    frame = await ws.receive_json(timeout=10)
    assert frame == {"type": "error", "code": "bad_frame", "message": "text frames must be JSON objects"}
    await ws.send_str('{"type": "open", "media_type": "audio/pcm;rate=16000"}')
    assert (await ws.receive_json(timeout=10))["type"] in ("ready", "error")  # the stream goes on
    await ws.close()
