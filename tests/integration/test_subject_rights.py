"""The data subject's rights on a real edge app, node processes and Redis: access (the export
round-trips), retention (expired speakers erased with the audit reason), and erasure reaching
a stream that is open while the DELETE runs."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

from appliance.contract import BASE
from edge_server.speakers import retention
from edge_server.storage.db import open_database
from models.audio import SAMPLE_RATE, decode
from tests.integration.conftest import Api
from tests.integration.test_enrollment import enroll, node_holds, speaker_files, tenant_of
from tests.integration.test_lifecycle import audit_verify
from tests.integration.test_streaming import PCM, connect, enroll_sample_speakers, live  # noqa: F401
from tests.stream_client import pcm16
from tests.support import sample_audio, sample_speakers


async def test_the_export_round_trips_and_is_audited(api: Api) -> None:
    reference, consent = speaker_files(0, "flac")
    status, body = await enroll(api, reference, consent)
    assert status == 201
    speaker = body["data"]
    resp = await api.client.get(f"{BASE}/speakers/{speaker['id']}/export", headers=api.headers())
    assert resp.status == 200 and resp.content_type == "application/zip"
    assert resp.headers["Cache-Control"] == "no-store"
    archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    assert sorted(archive.namelist()) == [
        "README.txt", "audit.json", "consent.flac", "consent_record.json", "reference.flac", "speaker.json",
    ]  # fmt: skip
    # the recordings come back byte for byte as uploaded, decrypted
    assert archive.read("reference.flac") == reference and archive.read("consent.flac") == consent
    assert decode(archive.read("consent.flac"), 60).duration_s > 1
    record = json.loads(archive.read("consent_record.json"))
    assert record["id"] == speaker["consent"]["id"] and record["user_full_name"] == "Alice Example"
    assert json.loads(archive.read("speaker.json"))["id"] == speaker["id"]
    assert json.loads(archive.read("audit.json")) == {"exports": []}
    # the second export lists the first
    resp = await api.client.get(f"{BASE}/speakers/{speaker['id']}/export", headers=api.headers())
    exports = json.loads(zipfile.ZipFile(io.BytesIO(await resp.read())).read("audit.json"))["exports"]
    assert len(exports) == 1 and exports[0]["archive_bytes"] > 0
    resp = await api.client.get(f"{BASE}/audit/exports", headers=api.headers())
    listed = (await resp.json())["data"]
    assert [e["speaker_id"] for e in listed] == [speaker["id"]] * 2 and listed[1]["id"] == exports[0]["id"]
    # another tenant's key cannot export it; an erased speaker has nothing to export
    resp = await api.client.get(f"{BASE}/speakers/{speaker['id']}/export", headers=api.headers(api.other_key))
    assert resp.status == 404
    assert (await api.client.delete(f"{BASE}/speakers/{speaker['id']}", headers=api.headers())).status == 200
    resp = await api.client.get(f"{BASE}/speakers/{speaker['id']}/export", headers=api.headers())
    assert resp.status == 410


def age_speakers(api: Api, days: int) -> None:
    """Pretend every speaker was last active ``days`` ago."""
    stamp = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    db = open_database(api.settings.db_path)
    try:
        with db.conn:
            db.execute("UPDATE speakers SET last_active_at = ?", [stamp])
    finally:
        db.conn.close()


async def test_retention_erases_expired_speakers_with_the_audit_reason(api: Api) -> None:
    _, body = await enroll(api, *speaker_files(0))
    old = body["data"]["id"]
    age_speakers(api, 40)
    _, body = await enroll(api, *speaker_files(1), display_name="Recent Example")
    recent = body["data"]["id"]
    resp = await api.client.put(f"{BASE}/policy", json={"retention_days": 30}, headers=api.headers())
    assert resp.status == 200 and (await resp.json())["data"]["retention_days"] == 30
    # the dry run lists only the expired one and changes nothing
    resp = await api.client.get(f"{BASE}/retention", headers=api.headers())
    assert [d["speaker_id"] for d in (await resp.json())["data"]] == [old]
    receipts = await retention.run_once(api.client.app)
    assert [r.speaker_id for r in receipts] == [old]
    resp = await api.client.get(f"{BASE}/audit/erasures", headers=api.headers())
    rows = (await resp.json())["data"]
    assert [(r["speaker_id"], r["reason"], r["requested_by_key_id"]) for r in rows] == [
        (old, "retention", retention.RETENTION_KEY_ID)
    ]
    assert (await api.client.get(f"{BASE}/speakers/{old}", headers=api.headers())).status == 410
    assert (await api.client.get(f"{BASE}/speakers/{recent}", headers=api.headers())).status == 200
    assert all(old not in held for held in (await node_holds(api, tenant_of(api))).values())
    resp = await api.client.get(f"{BASE}/retention", headers=api.headers())
    assert (await resp.json())["data"] == []
    # the hash chain, now with the reason column, still verifies
    verified = audit_verify(api.settings.data_dir)
    assert verified.returncode == 0 and verified.stdout.startswith("OK: 1 erasure audit rows"), verified.stdout


async def test_a_delete_request_is_audited_as_a_request(api: Api) -> None:
    _, body = await enroll(api, *speaker_files(0))
    assert (await api.client.delete(f"{BASE}/speakers/{body['data']['id']}", headers=api.headers())).status == 200
    resp = await api.client.get(f"{BASE}/audit/erasures", headers=api.headers())
    assert (await resp.json())["data"][0]["reason"] == "request"


async def test_an_open_stream_stops_naming_an_erased_speaker(live: Api) -> None:  # noqa: F811
    first = sample_speakers()[0]
    names = await enroll_sample_speakers(live, [first])
    speaker_id = (await (await live.client.get(f"{BASE}/speakers", headers=live.headers())).json())["data"][0]["id"]
    client = await connect(live)
    assert (await client.open(PCM, diarize=True))["type"] == "ready"
    frames: list[dict[str, object]] = []

    async def read() -> None:
        async for msg in client.ws:
            frames.append(json.loads(msg.data))

    reader = asyncio.create_task(read())
    audio = sample_audio()
    step = SAMPLE_RATE // 2
    erased_at: float | None = None
    for start in range(0, len(audio), step):  # twice real time, so the stream is live while the DELETE runs
        await client.ws.send_bytes(pcm16(audio[start : start + step]))
        await asyncio.sleep(0.25)
        named = any(f.get("speaker_label") == names[first] for f in frames)
        if erased_at is None and named:
            resp = await live.client.delete(f"{BASE}/speakers/{speaker_id}", headers=live.headers())
            assert resp.status == 200
            erased_at = (start + step) / SAMPLE_RATE  # the audio the stream had when the erasure was done
    await client.ws.send_str(json.dumps({"type": "close"}))
    await asyncio.wait_for(reader, 120)
    assert erased_at is not None and erased_at < 25, "the caller was never named while enrolled"
    # the caller speaks again at 17.8-21.5 s and 27.9-30 s: audio sent after the erasure is never named
    late = [f for f in frames if f["type"] == "delta" and float(str(f["start"])) >= erased_at]
    assert late and all(d.get("speaker_label") != names[first] and "speaker_id" not in d for d in late), late
