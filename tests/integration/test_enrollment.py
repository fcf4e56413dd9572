"""POST/GET /speakers against real node processes, real Redis and a real SQLite file."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from typing import Any

import aiohttp
import numpy as np
import pytest
from openapi_spec_validator import validate

from appliance.contract import BASE
from appliance.crypto import MasterKey
from edge_server import appkeys
from edge_server.speakers.voices import windows_of
from edge_server.storage.blobs import BlobStore
from edge_server.storage.db import open_database
from edge_server.streaming.diarization import merge
from models.audio import encode
from tests.integration.conftest import Api
from tests.support import ENROLL_FIELDS, enrollment_audio, sample_speakers


def form(reference: bytes, consent: bytes, **fields: str | None) -> aiohttp.FormData:
    data = aiohttp.FormData()
    values = {**ENROLL_FIELDS, **fields}
    for name, value in values.items():
        if value is not None:
            data.add_field(name, value)
    data.add_field("reference", reference, filename="reference.wav", content_type="audio/wav")
    data.add_field("consent", consent, filename="consent.wav", content_type="audio/wav")
    return data


def speaker_files(index: int = 0, fmt: str = "wav") -> tuple[bytes, bytes]:
    reference, consent = enrollment_audio(sample_speakers()[index])
    return encode(reference, fmt), encode(consent, fmt)


async def enroll(api: Api, reference: bytes, consent: bytes, key: str | None = None, **fields: str | None):
    resp = await api.client.post(f"{BASE}/speakers", data=form(reference, consent, **fields), headers=api.headers(key))
    return resp.status, await resp.json()


async def node_holds(api: Api, tenant_id: str) -> dict[str, list[str]]:
    """Ask every node process itself (not Redis) which speakers it holds for a tenant."""
    cluster = api.client.app[appkeys.CLUSTER]
    return {node.node_id: await cluster.held_by(node, tenant_id) for node in await cluster.candidates()}


def tenant_of(api: Api) -> str:
    db = open_database(api.settings.db_path)
    try:
        return db.execute("SELECT id FROM tenants WHERE name = 'default'").fetchone()[0]
    finally:
        db.conn.close()


def stored_state(api: Api) -> dict[str, Any]:
    db = open_database(api.settings.db_path)
    try:
        counts = {
            t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("speakers", "blobs", "consent_records")
        }
    finally:
        db.conn.close()
    counts["blob_files"] = len(list(api.settings.blob_dir.glob("*/*")))
    return counts


async def test_enroll_ready_on_both_nodes(api: Api) -> None:
    reference, consent = speaker_files()
    status, body = await enroll(api, reference, consent)
    assert status == 201, body
    speaker = body["data"]
    assert speaker["id"].startswith("spk_")
    assert speaker["enrollment_status"] == "ready"
    assert speaker["enrolled_on"] == ["node-1", "node-2"]
    assert "note" not in speaker
    assert speaker["consent"]["reference_audio_sha256"] == hashlib.sha256(reference).hexdigest()
    assert speaker["consent"]["consent_audio_sha256"] == hashlib.sha256(consent).hexdigest()
    pre = speaker["preflight"]
    assert pre["passed"] is True
    assert pre["reference"]["speech_s"] > 5 and pre["reference"]["format"] == "wav"
    assert set(pre["consent"]) >= {"duration_s", "speech_s", "sample_rate_in", "channels_in", "rms_dbfs",
                                   "peak_dbfs", "clipping_ratio", "snr_db", "issues"}  # fmt: skip

    # the node processes themselves hold it, not just the registry
    held = await node_holds(api, tenant_of(api))
    assert all(speaker["id"] in ids for ids in held.values()) and len(held) == 2

    resp = await api.client.get(f"{BASE}/speakers/{speaker['id']}", headers=api.headers())
    assert resp.status == 200
    fetched = (await resp.json())["data"]
    assert fetched["enrolled_on"] == ["node-1", "node-2"] and fetched["display_name"] == "Alice Example"


async def windows_embedded(api: Api) -> int:
    """Windows the model ran on, summed over the node processes (their /status counters)."""
    cluster = api.client.app[appkeys.CLUSTER]
    total = 0
    for node in await cluster.candidates():
        result = await cluster.status(node)
        assert result.ok and result.body is not None
        total += result.body["windows"]["embedded"]
    return total


def window_count(speech_s: float, window_s: float = 1.6, step_s: float = 0.4) -> int:
    """How many windows a node cuts from ``speech_s`` of speech (models.embedding's rule)."""
    return 1 + max(0, math.floor((speech_s - 0.75 * window_s) / step_s))


async def test_each_recording_is_embedded_once_for_the_whole_cluster(api: Api) -> None:
    # The checks embed the reference and the consent on a node each; the fan-out hands the
    # reference's vector to every node instead of embedding it again on each of them.
    reference, consent = enrollment_audio(sample_speakers()[0])
    noise = np.random.default_rng(7)  # samples no node has cached from earlier tests
    reference, consent = (x + noise.normal(0, 1e-4, len(x)).astype(np.float32) for x in (reference, consent))
    before = await windows_embedded(api)
    status, body = await enroll(api, encode(reference, "wav"), encode(consent, "wav"))
    assert status == 201, body
    speaker = body["data"]
    assert speaker["enrollment_status"] == "ready" and speaker["enrolled_on"] == ["node-1", "node-2"]
    pre = speaker["preflight"]
    once = window_count(pre["reference"]["speech_s"]) + window_count(pre["consent"]["speech_s"])
    assert await windows_embedded(api) - before <= once + 2
    # both nodes hold the same vector: the same speech scores the same against it on each
    cluster = api.client.app[appkeys.CLUSTER]
    probe = consent[: 4 * 16000]
    scores = []
    for node in await cluster.candidates():
        result = await cluster.identify(node, tenant_of(api), probe)
        assert result.ok and result.body is not None
        scores.append(merge(windows_of(result.body)).scores[speaker["id"]])
    assert len(scores) == 2 and abs(scores[0] - scores[1]) < 1e-4 and scores[0] > 0.5


async def test_blobs_are_encrypted_at_rest(api: Api) -> None:
    reference, consent = speaker_files()
    status, _ = await enroll(api, reference, consent)
    assert status == 201
    db = open_database(api.settings.db_path)
    try:
        rows = db.execute("SELECT id, tenant_id, kind FROM blobs").fetchall()
        assert {r[2] for r in rows} == {"reference", "consent"}
        for path in api.settings.blob_dir.glob("*/*"):
            on_disk = path.read_bytes()
            assert b"RIFF" not in on_disk and reference[1000:1100] not in on_disk
        store = BlobStore(api.settings.blob_dir, MasterKey.load_or_create(api.settings.master_key_path), db)
        by_kind = {kind: store.get(tenant, blob_id) for blob_id, tenant, kind in rows}
        assert by_kind == {"reference": reference, "consent": consent}
    finally:
        db.conn.close()


async def test_consent_records_are_immutable(api: Api) -> None:
    status, _ = await enroll(api, *speaker_files())
    assert status == 201
    conn = sqlite3.connect(api.settings.db_path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="immutable"):
            conn.execute("UPDATE consent_records SET consent_text = 'forged'")
        with pytest.raises(sqlite3.DatabaseError, match="immutable"):
            conn.execute("DELETE FROM consent_records")
    finally:
        conn.close()


async def test_list_newest_first_with_cursor_and_filter(api: Api) -> None:
    ids = []
    reference, consent = speaker_files(1)
    for i in range(3):
        status, body = await enroll(api, reference, consent, display_name=f"Speaker {i}")
        assert status == 201
        ids.append(body["data"]["id"])
    resp = await api.client.get(f"{BASE}/speakers?limit=2", headers=api.headers())
    page = await resp.json()
    assert [s["id"] for s in page["data"]] == ids[::-1][:2]
    assert page["next_cursor"]
    resp = await api.client.get(f"{BASE}/speakers?limit=2&cursor={page['next_cursor']}", headers=api.headers())
    page2 = await resp.json()
    assert [s["id"] for s in page2["data"]] == [ids[0]] and page2["next_cursor"] is None
    resp = await api.client.get(f"{BASE}/speakers?status=pending", headers=api.headers())
    assert (await resp.json())["data"] == []
    for query in ("status=bogus", "limit=0", "limit=201", "cursor=%%%"):
        resp = await api.client.get(f"{BASE}/speakers?{query}", headers=api.headers())
        assert resp.status == 422 and (await resp.json())["error"]["code"] == "invalid_field"


async def test_other_tenant_gets_identical_404(api: Api) -> None:
    status, body = await enroll(api, *speaker_files())
    assert status == 201
    foreign = await api.client.get(f"{BASE}/speakers/{body['data']['id']}", headers=api.headers(api.other_key))
    missing = await api.client.get(f"{BASE}/speakers/spk_0000000000000000", headers=api.headers(api.other_key))
    assert foreign.status == missing.status == 404
    assert await foreign.read() == await missing.read()
    listed = await api.client.get(f"{BASE}/speakers", headers=api.headers(api.other_key))
    assert (await listed.json())["data"] == []


@pytest.mark.parametrize(
    ("headers", "advice"),
    [
        ({}, "send 'Authorization: Bearer <key>'"),
        ({"Authorization": "Basic abc"}, "send 'Authorization: Bearer <key>'"),
        # a well-formed but wrong key is told it is wrong, not how to send a header it already sent
        ({"Authorization": "Bearer sce_0000_nope"}, "this API key is not valid"),
    ],
)
async def test_unauthenticated(api: Api, headers: dict, advice: str) -> None:
    resp = await api.client.get(f"{BASE}/speakers", headers=headers)
    assert resp.status == 401
    error = (await resp.json())["error"]
    assert error["code"] == "unauthenticated" and advice in error["message"]


async def test_missing_scope_and_revoked_key(api: Api) -> None:
    from edge_server.access.tenancy import create_key, revoke_key

    db = open_database(api.settings.db_path)
    tenant = tenant_of(api)
    transcribe_only = create_key(db, tenant, ["scaiecho:transcribe", "scaiecho:admin"], "t")
    resp = await api.client.post(
        f"{BASE}/speakers", data=form(*speaker_files()), headers=api.headers(transcribe_only.token)
    )
    body = await resp.json()
    assert resp.status == 403
    assert body["error"]["code"] == "forbidden"
    assert body["error"]["details"]["required_scope"] == "scaiecho:enroll"
    enroller = create_key(db, tenant, ["scaiecho:enroll"], "e")
    assert (await api.client.get(f"{BASE}/speakers", headers=api.headers(enroller.token))).status == 200
    assert revoke_key(db, enroller.id)
    db.conn.close()
    assert (await api.client.get(f"{BASE}/speakers", headers=api.headers(enroller.token))).status == 401
    assert stored_state(api)["speakers"] == 0


async def test_errors_never_leak_internals(api: Api) -> None:
    resp = await api.client.get("/v1/modules/scaiecho/nope", headers=api.headers())
    body = await resp.text()
    assert resp.status == 404 and json.loads(body)["error"]["code"] == "not_found"
    assert "Traceback" not in body and "/work" not in body


async def test_openapi_is_valid_and_covers_every_route(api: Api) -> None:
    spec = await (await api.client.get(f"{BASE}/openapi.json")).json()
    validate(spec)  # a valid OpenAPI 3.1 document
    served = set()
    for route in api.client.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/admin") or path in ("/", "/favicon.ico") or route.method == "HEAD":
            continue  # the browser console's HTML pages and its way in (docs/operator.md), not API
        served.add((route.method.lower(), path))
    documented = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert served == documented


async def test_healthz(api: Api) -> None:
    resp = await api.client.get("/healthz")
    body = await resp.json()
    assert body["redis"] == "ok" and body["nodes_online"] >= 2
    # these apps run without the ASR engine: degraded and 503, honestly
    assert (resp.status, body["status"], body["asr"]) == (503, "degraded", "down")


async def test_identify_scores_held_speakers_on_unseen_speech(api: Api) -> None:
    """A node scores speech it never saw (each speaker's consent part) highest for its speaker."""
    ids = {}
    for index, label in enumerate(sample_speakers()):
        status, body = await enroll(api, *speaker_files(index), display_name=label)
        assert status == 201
        ids[label] = body["data"]["id"]
    cluster = api.client.app[appkeys.CLUSTER]
    for node in await cluster.candidates():
        for label, speaker_id in ids.items():
            _, unseen = enrollment_audio(label)
            result = await cluster.identify(node, tenant_of(api), unseen)
            assert result.ok and result.body is not None
            windows = windows_of(result.body)
            assert len(windows) > 3 and windows[1].start > windows[0].start
            scores = merge(windows).scores
            assert set(scores) == set(ids.values())
            assert max(scores, key=lambda s: scores[s]) == speaker_id
