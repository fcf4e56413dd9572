"""Consent that proves itself, against `scaiecho-appliance up` with its default policy (enforce):
the pyannote sample's two callers and a synthesized voice; nothing stored on refusal; the
retention job erases with its audit reason; the subject-access export round-trips."""

from __future__ import annotations

import asyncio
import io
import shutil
import sqlite3
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from appliance.contract import BASE
from appliance.settings import ConsentSettings
from models.audio import decode, encode
from tests.appliance_process import Appliance
from tests.support import CONSENT_SAID, enroll_fields, enrollment_audio

FIRST, SECOND = "speaker90", "speaker91"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    """`up` with two nodes; its retention job runs every 2 s (instead of daily) so a test can see it."""
    data_dir = tmp_path_factory.mktemp("consent") / "data"
    data_dir.mkdir()
    (data_dir / "config.toml").write_text("[consent]\nretention_check_interval_s = 2.0\n")
    app = Appliance(data_dir, nodes=2)
    try:
        app.wait_for(r"ScaiEcho ready: 2/2 pyannote nodes online")
        yield app
    finally:
        app.stop()


async def post(box: Appliance, fields: dict[str, str], reference: np.ndarray, consent: np.ndarray) -> tuple[int, Any]:
    data = aiohttp.FormData()
    for name, value in fields.items():
        data.add_field(name, value)
    data.add_field("reference", encode(reference, "wav"), filename="reference.wav")
    data.add_field("consent", encode(consent, "wav"), filename="consent.wav")
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{box.url}{BASE}/speakers", data=data, headers=box.headers()) as resp,
    ):
        return resp.status, await resp.json()


def stored(box: Appliance) -> tuple[int, int, int]:
    """(live speakers, consent records, blob files) of the box."""
    speakers = len(box.get_json("/speakers")[1]["data"])
    consents = len(box.get_json("/audit/consents")[1]["data"])
    return speakers, consents, sum(1 for p in (box.data_dir / "blobs").rglob("*") if p.is_file())


def test_the_person_saying_the_consent_text_is_enrolled_with_the_proof(box: Appliance) -> None:
    reference, consent = enrollment_audio(FIRST)
    status, body = asyncio.run(post(box, enroll_fields(FIRST), reference, consent))
    assert status == 201, body
    proof = body["data"]["consent"]["verification"]
    assert proof["policy"] == "enforce" and proof["passed"] is True
    assert proof["speaker"]["score"] >= proof["speaker"]["threshold"] == ConsentSettings().speaker_threshold
    assert proof["text"]["match_ratio"] >= proof["text"]["threshold"]
    assert "jersey" in proof["text"]["heard"].lower()
    assert box.get_json(f"/speakers/{body['data']['id']}")[1]["data"]["consent"]["verification"] == proof


def test_the_other_callers_consent_is_refused_and_nothing_is_stored(box: Appliance) -> None:
    before = stored(box)
    reference, _ = enrollment_audio(FIRST)
    _, other_consent = enrollment_audio(SECOND)
    status, body = asyncio.run(post(box, enroll_fields(SECOND), reference, other_consent))
    assert status == 422 and body["error"]["code"] == "consent_speaker_mismatch", body
    assert body["error"]["details"]["speaker"]["score"] < ConsentSettings().speaker_threshold
    assert stored(box) == before


def test_a_consent_that_says_something_else_is_refused(box: Appliance) -> None:
    before = stored(box)
    reference, consent = enrollment_audio(SECOND)
    fields = {**enroll_fields(SECOND), "consent_text": CONSENT_SAID[FIRST]}
    status, body = asyncio.run(post(box, fields, reference, consent))
    assert status == 422 and body["error"]["code"] == "consent_text_mismatch", body
    assert "yankee" in body["error"]["details"]["text"]["heard"].lower()
    assert stored(box) == before


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_a_synthesized_voice_reading_the_right_words_is_another_voice(box: Appliance, tmp_path: Path) -> None:
    before = stored(box)
    text = "I, Alice Example, consent to ScaiEcho enrolling my voice so that meeting transcripts show my name."
    wav = tmp_path / "tts.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    synthesized = decode(wav.read_bytes(), 60).samples
    reference, _ = enrollment_audio(FIRST)
    fields = {**enroll_fields(FIRST), "consent_text": text}
    status, body = asyncio.run(post(box, fields, reference, synthesized))
    assert status == 422 and body["error"]["code"] == "consent_speaker_mismatch", body
    assert stored(box) == before


def test_the_export_round_trips(box: Appliance) -> None:
    speaker = box.get_json("/speakers")[1]["data"][0]
    request_url = f"{box.url}{BASE}/speakers/{speaker['id']}/export"

    async def fetch() -> bytes:
        async with aiohttp.ClientSession() as http, http.get(request_url, headers=box.headers()) as resp:
            assert resp.status == 200 and resp.content_type == "application/zip"
            return await resp.read()

    archive = zipfile.ZipFile(io.BytesIO(asyncio.run(fetch())))
    reference, consent = enrollment_audio(FIRST)
    assert archive.read("reference.wav") == encode(reference, "wav")
    assert archive.read("consent.wav") == encode(consent, "wav")
    assert b'"passed": true' in archive.read("consent_record.json")


def test_retention_erases_an_expired_speaker_with_the_audit_reason(box: Appliance) -> None:
    speaker = box.get_json("/speakers")[1]["data"][0]
    assert box.get_json("/policy", "PUT", {"retention_days": 30})[0] == 200
    assert box.get_json("/retention")[1]["data"] == []
    # time passes: the speaker was last enrolled or named 31 days ago
    with sqlite3.connect(box.data_dir / "scaiecho.db") as conn:
        conn.execute("UPDATE speakers SET last_active_at = '2000-01-01T00:00:00.000Z' WHERE id = ?", [speaker["id"]])
    # the tombstone (410) comes first; the audit row when the job has evicted it from every node
    deadline = time.monotonic() + 60
    while not box.get_json("/audit/erasures")[1]["data"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert box.get_json(f"/speakers/{speaker['id']}")[0] == 410
    rows = box.get_json("/audit/erasures")[1]["data"]
    assert [(r["speaker_id"], r["reason"]) for r in rows] == [(speaker["id"], "retention")]
    changes = box.get_json("/audit/policy")[1]["data"]
    assert [(c["field"], c["new_value"]) for c in changes] == [("retention_days", "30")]
    assert stored(box)[2] == 0  # both recordings destroyed
