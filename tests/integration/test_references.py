"""`POST /speakers/{id}/references` on a real edge app, node processes and Redis: another recording
of the same person joins the profile; another voice is refused and leaves nothing; erasure and
export cover the added recordings; a looped reference is warned about."""

from __future__ import annotations

import io
import zipfile

import aiohttp
import numpy as np

from appliance.contract import BASE
from edge_server.storage.db import open_database
from models.audio import SAMPLE_RATE, encode
from tests.integration.conftest import Api
from tests.integration.test_enrollment import enroll, node_holds, speaker_files, tenant_of
from tests.support import enrollment_audio, sample_speakers


async def add(api: Api, speaker_id: str, recording: bytes, field: str = "reference") -> tuple[int, dict]:
    data = aiohttp.FormData()
    data.add_field(field, recording, filename="more.wav", content_type="audio/wav")
    resp = await api.client.post(f"{BASE}/speakers/{speaker_id}/references", data=data, headers=api.headers())
    return resp.status, await resp.json()


def blob_state(api: Api) -> tuple[int, int, int]:
    """(blob rows, blobs not destroyed, added-reference rows)."""
    db = open_database(api.settings.db_path)
    try:
        return (
            db.execute("SELECT count(*) FROM blobs").fetchone()[0],
            db.execute("SELECT count(*) FROM blobs WHERE destroyed_at IS NULL").fetchone()[0],
            db.execute("SELECT count(*) FROM speaker_references").fetchone()[0],
        )
    finally:
        db.conn.close()


async def test_another_recording_of_the_person_joins_the_profile(api: Api) -> None:
    first = sample_speakers()[0]
    reference, consent = enrollment_audio(first)
    status, body = await enroll(api, encode(reference[: len(reference) // 2], "wav"), encode(consent, "wav"))
    assert status == 201 and body["data"]["reference_count"] == 1
    speaker_id = body["data"]["id"]
    status, body = await add(api, speaker_id, encode(reference[len(reference) // 2 :], "wav"))
    assert status == 201, body
    speaker = body["data"]
    assert speaker["reference_count"] == 2 and speaker["enrolled_on"] == ["node-1", "node-2"]
    added = speaker["added_reference"]
    assert added["speaker_score"] >= added["threshold"] and added["preflight"]["speech_s"] > 3
    assert "embedded from 2 recordings" in speaker["note"]
    resp = await api.client.get(f"{BASE}/speakers/{speaker_id}", headers=api.headers())
    assert (await resp.json())["data"]["reference_count"] == 2
    # the export has it; the erasure destroys it with the others
    resp = await api.client.get(f"{BASE}/speakers/{speaker_id}/export", headers=api.headers())
    archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    assert archive.read("references/2.wav") == encode(reference[len(reference) // 2 :], "wav")
    assert blob_state(api) == (3, 3, 1)
    assert (await api.client.delete(f"{BASE}/speakers/{speaker_id}", headers=api.headers())).status == 200
    assert blob_state(api) == (3, 0, 0)


async def test_another_voice_is_refused_and_nothing_is_stored(api: Api) -> None:
    status, body = await enroll(api, *speaker_files(0))
    speaker_id = body["data"]["id"]
    before = blob_state(api)
    other, _ = enrollment_audio(sample_speakers()[1])
    status, body = await add(api, speaker_id, encode(other, "wav"))
    assert status == 422 and body["error"]["code"] == "reference_speaker_mismatch", body
    assert body["error"]["details"]["speaker_score"] < body["error"]["details"]["threshold"]
    assert blob_state(api) == before
    status, body = await add(api, speaker_id, encode(np.zeros(5 * SAMPLE_RATE, np.float32), "wav"))
    assert status == 422 and body["error"]["code"] == "preflight_failed"
    status, body = await add(api, speaker_id, b"RIFF", "consent")
    assert status == 422 and body["error"]["details"]["field"] == "consent"
    assert blob_state(api) == before
    held = await node_holds(api, tenant_of(api))
    assert all(held_ids == [speaker_id] for held_ids in held.values())


async def test_a_looped_reference_is_enrolled_with_a_warning(api: Api) -> None:
    reference, consent = enrollment_audio(sample_speakers()[0])
    looped = np.tile(reference[: 3 * SAMPLE_RATE], 6)
    status, body = await enroll(api, encode(looped, "wav"), encode(consent, "wav"))
    assert status == 201
    issues = body["data"]["preflight"]["reference"]["issues"]
    assert [i["code"] for i in issues] == ["repetitive"]
    assert body["data"]["preflight"]["reference"]["repetition"] > 0.9
