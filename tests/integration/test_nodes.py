"""Node processes: registration and TTL liveness, cluster-secret auth, pending -> ready by itself."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from appliance import node_protocol, node_registry
from appliance.crypto import cluster_token
from appliance.redis_server import BundledRedis
from edge_server import appkeys
from edge_server.speakers.store import set_status
from tests.integration.conftest import Api, ApiFactory, NodeProcess, make_settings
from tests.integration.test_enrollment import BASE, enroll, speaker_files


async def test_internal_api_needs_the_cluster_secret(nodes: list[NodeProcess], redis_server: BundledRedis) -> None:
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    node = next(n for n in await node_registry.candidates(redis) if n.node_id == "node-1")
    await redis.aclose()
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            async with http.get(node.url + node_protocol.STATUS_PATH, headers=headers) as resp:
                assert resp.status == 401
            async with http.put(node.url + node_protocol.speaker_path("t", "s"), data=b"\0" * 64000,
                                headers=headers) as resp:  # fmt: skip
                assert resp.status == 401


async def test_pending_until_a_node_starts_then_ready(
    api_factory: ApiFactory, tmp_path: Path, redis_server: BundledRedis, cluster_secret: Path
) -> None:
    # Redis database 3 has no node at all.
    url = redis_server.url.rsplit("/", 1)[0] + "/3"
    api = await api_factory(make_settings(tmp_path / "data", url, cluster_secret))
    status, body = await enroll(api, *speaker_files())
    assert status == 201
    speaker = body["data"]
    assert speaker["enrollment_status"] == "pending"
    assert speaker["enrolled_on"] == []
    assert speaker["note"] == "no pyannote node is online; the profile stays pending until one is"

    node = NodeProcess("node-9", url, cluster_secret).start()
    try:
        started = time.monotonic()
        while time.monotonic() - started < 30:
            resp = await api.client.get(f"{BASE}/speakers/{speaker['id']}", headers=api.headers())
            current = (await resp.json())["data"]
            if current["enrollment_status"] == "ready":
                break
            await asyncio.sleep(0.2)
        assert current["enrollment_status"] == "ready"
        assert current["enrolled_on"] == ["node-9"]
    finally:
        node.stop()


async def test_dead_node_leaves_candidates_within_its_ttl(redis_server: BundledRedis, cluster_secret: Path) -> None:
    url = redis_server.url.rsplit("/", 1)[0] + "/4"
    node = NodeProcess("node-k", url, cluster_secret).start()
    redis = Redis.from_url(url, decode_responses=True)
    try:
        assert [n.node_id for n in await node_registry.candidates(redis)] == ["node-k"]
        assert node.proc is not None
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait()
        killed = time.monotonic()
        while await node_registry.candidates(redis) and time.monotonic() - killed < 15:
            await asyncio.sleep(0.1)
        assert await node_registry.candidates(redis) == []
    finally:
        await redis.aclose()


async def test_clean_stop_deregisters_at_once(redis_server: BundledRedis, cluster_secret: Path) -> None:
    url = redis_server.url.rsplit("/", 1)[0] + "/5"
    node = NodeProcess("node-s", url, cluster_secret).start()
    node.stop()  # SIGTERM: the node deregisters itself
    redis = Redis.from_url(url, decode_responses=True)
    try:
        assert await node_registry.candidates(redis) == []
    finally:
        await redis.aclose()


async def test_one_unreadable_reference_does_not_stall_the_others(
    api_factory: ApiFactory, tmp_path: Path, redis_server: BundledRedis, cluster_secret: Path
) -> None:
    url = redis_server.url.rsplit("/", 1)[0] + "/2"
    api = await api_factory(make_settings(tmp_path / "data", url, cluster_secret))
    ids = []
    for _ in range(2):
        status, body = await enroll(api, *speaker_files())
        assert status == 201 and body["data"]["enrollment_status"] == "pending"
        ids.append(body["data"]["id"])
    # damage the first speaker's reference ciphertext on disk
    db = api.client.app[appkeys.DB]
    blob_id, tenant_id = db.execute(
        "SELECT reference_blob_id, tenant_id FROM speakers WHERE id = ?", [ids[0]]
    ).fetchone()
    path = api.settings.blob_dir / tenant_id / f"{blob_id}.blob"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))

    node = NodeProcess("node-7", url, cluster_secret).start()
    try:
        started = time.monotonic()
        statuses: list[str] = []
        while time.monotonic() - started < 30:
            statuses = [
                (await (await api.client.get(f"{BASE}/speakers/{i}", headers=api.headers())).json())["data"][
                    "enrollment_status"
                ]
                for i in ids
            ]
            if statuses[1] == "ready":
                break
            await asyncio.sleep(0.2)
        assert statuses == ["pending", "ready"]
    finally:
        node.stop()


async def test_status_never_resurrects_an_erased_speaker(api: Api) -> None:
    status, body = await enroll(api, *speaker_files())
    assert status == 201
    speaker_id = body["data"]["id"]
    assert (await api.client.delete(f"{BASE}/speakers/{speaker_id}", headers=api.headers())).status == 200
    db = api.client.app[appkeys.DB]
    set_status(db, speaker_id, "ready")  # what a late fan-out would do
    assert db.execute("SELECT enrollment_status FROM speakers WHERE id = ?", [speaker_id]).fetchone()[0] == "deleted"


async def test_node_refuses_unusable_speech_with_an_error_document(
    nodes: list[NodeProcess], redis_server: BundledRedis, cluster_secret: Path
) -> None:
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    node = next(n for n in await node_registry.candidates(redis) if n.node_id == "node-1")
    await redis.aclose()
    headers = {"Authorization": f"Bearer {cluster_token(cluster_secret).decode()}"}
    async with aiohttp.ClientSession() as http:
        for path in (node_protocol.speaker_path("ten_x", "spk_x"), node_protocol.identify_path("ten_x")):
            method = http.put if "speakers" in path else http.post
            async with method(node.url + path, data=b"\0" * 12800, headers=headers) as resp:  # 0.2 s
                assert resp.status == 422
                assert (await resp.json())["error"]["code"] == "too_short"
            async with method(node.url + path, data=b"\0" * 7, headers=headers) as resp:  # not whole samples
                assert resp.status == 400
                assert (await resp.json())["error"]["code"] == "invalid_audio"


async def test_a_node_cuts_a_streams_stretch_into_speaker_turns(
    nodes: list[NodeProcess], redis_server: BundledRedis, cluster_secret: Path
) -> None:
    """A live stream asks with ?turns=1: the node segments the speech and gives each local speaker a
    voice heard alone; enrollment's plain identify gets windows only."""
    from edge_server.speakers.voices import heard_of
    from tests.support import sample_audio

    redis = Redis.from_url(redis_server.url, decode_responses=True)
    node = next(n for n in await node_registry.candidates(redis) if n.node_id == "node-1")
    await redis.aclose()
    headers = {"Authorization": f"Bearer {cluster_token(cluster_secret).decode()}"}
    speech = node_protocol.encode_samples(sample_audio()[10 * 16000 : 19 * 16000])  # the callers alternate
    async with aiohttp.ClientSession() as http:
        async with http.post(node.url + node_protocol.identify_path("ten_x"), data=speech, headers=headers) as resp:
            plain = await resp.json()
        path = node_protocol.identify_path("ten_x", turns=True)
        async with http.post(node.url + path, data=speech, headers=headers) as resp:
            assert resp.status == 200
            body = await resp.json()
    assert "turns" not in plain and plain["windows"]
    heard = heard_of(body)
    assert heard.turns is not None and len(heard.windows) == len(plain["windows"])
    assert len({t.voice.embedding.tobytes() for t in heard.turns}) == 2  # two local speakers
    assert [t.start for t in heard.turns[1:]] == [t.end for t in heard.turns[:-1]]  # they tile the stretch
    assert heard.turns[0].start == 0.0 and abs(heard.turns[-1].end - 9.0) < 0.01
