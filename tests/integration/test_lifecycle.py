"""Warm registry, node restarts and GDPR erasure with real node processes (their own Redis db)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import redis

from appliance import redis_keys
from appliance.redis_server import BundledRedis
from edge_server import appkeys
from edge_server.speakers.reconciler import reconcile_once
from edge_server.storage.db import open_database
from tests.integration.conftest import Api, ApiFactory, NodeProcess, make_settings
from tests.integration.test_enrollment import BASE, enroll, speaker_files, tenant_of

pytestmark = pytest.mark.timeout(240)


class Cell:
    """An edge app with its own two nodes on a Redis database of their own."""

    def __init__(self, api: Api, nodes: dict[str, NodeProcess]) -> None:
        self.api = api
        self.nodes = nodes

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        resp = await self.api.client.get(f"{BASE}{path}", headers=self.api.headers(), **kw)
        return resp.status, await resp.json()

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        resp = await self.api.client.post(f"{BASE}{path}", json=body, headers=self.api.headers())
        return resp.status, await resp.json()

    async def delete(self, path: str) -> tuple[int, Any]:
        resp = await self.api.client.delete(f"{BASE}{path}", headers=self.api.headers())
        return resp.status, await resp.json()

    async def warm(self, speaker_id: str) -> dict[str, list[str]]:
        status, body = await self.get(f"/speakers/{speaker_id}/warm")
        assert status == 200, body
        return body["data"]

    async def held_by(self, node_id: str) -> list[str]:
        """Ask the node process itself what it holds for the tenant."""
        cluster = self.api.client.app[appkeys.CLUSTER]
        for node in await cluster.candidates():
            if node.node_id == node_id:
                return await cluster.held_by(node, tenant_of(self.api))
        raise LookupError(f"{node_id} is not online")

    async def until(self, check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if await check():
                return
            await asyncio.sleep(0.1)
        raise AssertionError("condition not reached in time")

    async def enroll(self) -> str:
        status, body = await enroll(self.api, *speaker_files())
        assert status == 201, body
        return str(body["data"]["id"])


#: Redis databases 6..15 are cycled through by cells; each is flushed before use.
_db_counter = itertools.cycle(range(6, 16))


@pytest.fixture
async def cell(
    api_factory: ApiFactory,
    tmp_path: Path,
    redis_server: BundledRedis,
    cluster_secret: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Cell]:
    """Settings sections a test needs changed come from its ``cell_settings`` marker."""
    marker = request.node.get_closest_marker("cell_settings")
    overrides = marker.kwargs if marker else {}
    url = redis_server.url.rsplit("/", 1)[0] + f"/{next(_db_counter)}"
    flush = redis.Redis.from_url(url)
    flush.flushdb()
    flush.close()
    started = {n: NodeProcess(n, url, cluster_secret).start(wait=False) for n in ("node-a", "node-b")}
    for node in started.values():
        assert node.registered() or await asyncio.to_thread(_wait_registered, node)
    api = await api_factory(make_settings(tmp_path / "data", url, cluster_secret, **overrides))
    yield Cell(api, started)
    for node in started.values():
        node.stop()


def _wait_registered(node: NodeProcess) -> bool:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not node.registered():
        time.sleep(0.2)
    return node.registered()


@contextlib.contextmanager
def frozen(node: NodeProcess) -> Iterator[None]:
    """SIGSTOP the node process for the block (it keeps its memory, misses heartbeats), then SIGCONT."""
    assert node.proc is not None
    node.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        node.proc.send_signal(signal.SIGCONT)


def kill9(node: NodeProcess) -> None:
    assert node.proc is not None
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait()


async def test_kill_restart_and_rewarm(cell: Cell) -> None:
    speaker = await cell.enroll()
    assert await cell.warm(speaker) == {
        "speaker_id": speaker,
        "warm_node_ids": ["node-a", "node-b"],
        "candidate_node_ids": ["node-a", "node-b"],
        "stale_node_ids": [],
    }

    kill9(cell.nodes["node-b"])

    async def b_gone() -> bool:
        return (await cell.warm(speaker))["candidate_node_ids"] == ["node-a"]

    await cell.until(b_gone, 15)
    warm = await cell.warm(speaker)
    assert warm["warm_node_ids"] == ["node-a", "node-b"]  # the registry still names the dead node
    assert warm["stale_node_ids"] == ["node-b"]
    _, body = await cell.get(f"/speakers/{speaker}")
    assert body["data"]["enrolled_on"] == ["node-a"] and body["data"]["enrollment_status"] == "ready"

    # explicit re-warm: a dead node is not a candidate
    status, body = await cell.post(f"/speakers/{speaker}/warm", {"node_ids": ["node-b"]})
    assert status == 422 and body["error"]["details"]["field"] == "node_ids"
    status, body = await cell.post(f"/speakers/{speaker}/warm", {"node_ids": []})
    assert status == 200
    assert body["data"]["results"] == {"node-a": {"ok": True}}
    assert body["data"]["enrolled_on"] == ["node-a"] and body["data"]["enrollment_status"] == "ready"

    # node-b comes back cold and the edge server re-warms it by itself
    cell.nodes["node-b"].start()

    async def b_warm_again() -> bool:
        return (await cell.warm(speaker))["stale_node_ids"] == [] and len(
            (await cell.warm(speaker))["warm_node_ids"]
        ) == 2

    await cell.until(b_warm_again, 30)
    assert speaker in await cell.held_by("node-b")


def cached_embeddings(cell: Cell) -> int:
    db = open_database(cell.api.settings.db_path)
    try:
        return int(db.execute("SELECT count(*) FROM speaker_embeddings").fetchone()[0])
    finally:
        db.conn.close()


async def test_rewarm_without_cache_re_embeds_the_reference(cell: Cell) -> None:
    speaker = await cell.enroll()
    db = open_database(cell.api.settings.db_path)
    db.execute("DELETE FROM speaker_embeddings")  # e.g. a node now runs another model
    db.conn.close()
    kill9(cell.nodes["node-b"])
    cell.nodes["node-b"].start()

    async def b_holds() -> bool:
        try:
            return speaker in await cell.held_by("node-b")
        except (aiohttp.ClientError, LookupError):
            return False  # the dead process's registry entry, or not registered yet

    await cell.until(b_holds, 30)
    assert cached_embeddings(cell) == 1  # computed again on the way


async def test_node_refuses_embeddings_of_another_model(cell: Cell) -> None:
    cluster = cell.api.client.app[appkeys.CLUSTER]
    node = (await cluster.candidates())[0]
    result = await cluster.push_embeddings(node, "some-other-model", [("ten_x", "spk_x", np.ones(256, np.float32))])
    assert not result.ok and result.refused
    assert "spk_x" not in await cluster.held_by(node, "ten_x")


async def test_evicted_when_no_node_holds_then_ready(cell: Cell) -> None:
    speaker = await cell.enroll()
    for node in cell.nodes.values():
        kill9(node)

    def status_is(expected: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return (await cell.get(f"/speakers/{speaker}"))[1]["data"]["enrollment_status"] == expected

        return check

    await cell.until(status_is("evicted"), 15)
    cell.nodes["node-a"].start()
    await cell.until(status_is("ready"), 30)
    assert (await cell.get(f"/speakers/{speaker}"))[1]["data"]["enrolled_on"] == ["node-a"]


async def test_erasure_receipt_and_no_trace_left(cell: Cell) -> None:
    speaker = await cell.enroll()
    settings = cell.api.settings
    assert cached_embeddings(cell) == 1
    files = list(settings.blob_dir.glob("*/*"))
    on_disk = sum(f.stat().st_size for f in files)

    status, body = await cell.delete(f"/speakers/{speaker}")
    assert status == 200, body
    receipt = body["data"]
    assert receipt["speaker_id"] == speaker and receipt["audit_id"].startswith("era_")
    assert receipt["blob_bytes_deleted"] == on_disk > 0
    assert receipt["evicted_from"] == ["node-a", "node-b"] and receipt["error_summary"] == {}

    # 410 with the audit id from now on, and not listed
    status, body = await cell.get(f"/speakers/{speaker}")
    assert status == 410 and body["error"]["details"]["audit_id"] == receipt["audit_id"]
    status, body = await cell.delete(f"/speakers/{speaker}")
    assert status == 410 and body["error"]["code"] == "speaker_deleted"
    assert (await cell.get(f"/speakers/{speaker}/warm"))[0] == 410
    assert (await cell.get("/speakers"))[1]["data"] == []

    # no trace: blob files, wrapped keys, Redis, node memory
    assert list(settings.blob_dir.glob("*/*")) == []
    db = open_database(settings.db_path)
    assert db.execute("SELECT count(*) FROM blobs WHERE wrapped_key IS NOT NULL").fetchone()[0] == 0
    assert db.execute("SELECT display_name, description FROM speakers").fetchone() == ("", None)
    db.conn.close()
    assert cached_embeddings(cell) == 0
    redis = cell.api.client.app[appkeys.REDIS]
    assert await redis.smembers(redis_keys.warm(speaker)) == set()
    assert speaker not in await cell.held_by("node-a") and speaker not in await cell.held_by("node-b")

    # the audit row, tenant-scoped
    _, log = await cell.get("/audit/erasures")
    assert [row["id"] for row in log["data"]] == [receipt["audit_id"]]
    assert log["data"][0]["blob_bytes_deleted"] == on_disk
    other = await cell.api.client.get(f"{BASE}/audit/erasures", headers=cell.api.headers(cell.api.other_key))
    assert other.status == 403  # the other tenant's key has no admin scope


async def test_erasure_with_a_dead_node_then_it_returns_cold(cell: Cell) -> None:
    speaker = await cell.enroll()
    kill9(cell.nodes["node-b"])

    async def b_gone() -> bool:
        return (await cell.warm(speaker))["candidate_node_ids"] == ["node-a"]

    await cell.until(b_gone, 15)
    status, body = await cell.delete(f"/speakers/{speaker}")
    assert status == 200
    assert body["data"]["evicted_from"] == ["node-a"]
    assert body["data"]["error_summary"] == {"node-b": "offline"}

    cell.nodes["node-b"].start()
    await asyncio.sleep(2.0)  # several reconcile ticks: re-warm of the joiner, pending evictions
    assert speaker not in await cell.held_by("node-b")
    db = open_database(cell.api.settings.db_path)
    assert db.execute("SELECT count(*) FROM pending_evictions").fetchone()[0] == 0
    db.conn.close()


async def test_erasure_while_a_node_is_frozen_then_it_is_evicted(cell: Cell) -> None:
    """A node that misses heartbeats but keeps its memory (SIGSTOP) is evicted when it is back."""
    speaker = await cell.enroll()
    with frozen(cell.nodes["node-b"]):

        async def b_gone() -> bool:
            return (await cell.warm(speaker))["candidate_node_ids"] == ["node-a"]

        await cell.until(b_gone, 15)
        status, body = await cell.delete(f"/speakers/{speaker}")
        assert status == 200 and body["data"]["error_summary"] == {"node-b": "offline"}

    async def b_evicted() -> bool:
        candidates = [n.node_id for n in await cell.api.client.app[appkeys.CLUSTER].candidates()]
        return "node-b" in candidates and speaker not in await cell.held_by("node-b")

    await cell.until(b_evicted, 20)


async def test_nodes_route(cell: Cell) -> None:
    await cell.enroll()
    status, body = await cell.get("/nodes")
    assert status == 200
    assert [(n["node_id"], n["engines"], n["warm_speakers"]) for n in body["data"]] == [
        ("node-a", ["pyannote", "segmentation"], 1),
        ("node-b", ["pyannote", "segmentation"], 1),
    ]
    assert body["data"][0]["model"] == "campplus-3dspeaker-zh-en"
    other = await cell.api.client.get(f"{BASE}/nodes", headers=cell.api.headers(cell.api.other_key))
    assert other.status == 403
    assert (await other.json())["error"]["details"]["required_scope"] == "scaiecho:admin"


def audit_verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance.programs.admin_cli", "--data-dir", str(data_dir), "audit", "verify"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("tamper", ["flipped byte", "deleted row", "reordered rows"])
async def test_audit_verify_catches_tampering(cell: Cell, tamper: str) -> None:
    for _ in range(3):
        assert (await cell.delete(f"/speakers/{await cell.enroll()}"))[0] == 200
    settings = cell.api.settings
    ok = audit_verify(settings.data_dir)
    assert ok.returncode == 0 and ok.stdout.startswith("OK: 3 erasure audit rows"), ok.stdout

    conn = sqlite3.connect(settings.db_path)
    (second_completed_at,) = conn.execute("SELECT completed_at FROM erasure_audit WHERE seq = 2").fetchone()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # the attacker has the file: triggers are no obstacle to them
    conn.execute("DROP TRIGGER erasure_audit_immutable_update")
    conn.execute("DROP TRIGGER erasure_audit_immutable_delete")
    conn.commit()
    if tamper == "deleted row":
        conn.execute("DELETE FROM erasure_audit WHERE seq = 2")
        conn.commit()
    elif tamper == "reordered rows":
        conn.execute("UPDATE erasure_audit SET seq = -1 WHERE seq = 2")
        conn.execute("UPDATE erasure_audit SET seq = 2 WHERE seq = 3")
        conn.execute("UPDATE erasure_audit SET seq = 3 WHERE seq = -1")
        conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    if tamper == "flipped byte":
        raw = bytearray(settings.db_path.read_bytes())
        needle = second_completed_at.encode()  # stored in the audit row only
        assert raw.count(needle) == 1
        raw[raw.find(needle) + len(needle) - 2] ^= 0x01  # one bit of a millisecond digit
        settings.db_path.write_bytes(bytes(raw))

    broken = audit_verify(settings.data_dir)
    assert broken.returncode == 1
    assert broken.stdout.startswith("BROKEN at erasure audit row 2"), broken.stdout


async def _stays_absent(cell: Cell, node_id: str, speaker: str, seconds: float) -> None:
    """The node neither holds the speaker in memory nor is registered as holding it, for a while."""
    redis = cell.api.client.app[appkeys.REDIS]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert speaker not in await cell.held_by(node_id)
        assert node_id not in await redis.smembers(redis_keys.warm(speaker))
        await asyncio.sleep(0.25)


@pytest.mark.cell_settings(
    enrollment={"reconcile_interval_s": 0.2, "holdings_check_interval_s": 1.0}, nodes={"request_timeout_s": 4.0}
)
async def test_a_hold_that_timed_out_in_a_freeze_does_not_outlive_the_erasure(cell: Cell) -> None:
    """SIGSTOP a node, enroll (its hold times out), erase, SIGCONT: it must never keep the speaker."""
    with frozen(cell.nodes["node-b"]):
        status, body = await enroll(cell.api, *speaker_files())
        assert status == 201 and body["data"]["enrolled_on"] == ["node-a"], body
        assert "node-b (timeout)" in body["data"]["note"]
        speaker = body["data"]["id"]
        status, body = await cell.delete(f"/speakers/{speaker}")
        assert status == 200 and "node-b" in body["data"]["error_summary"], body

    async def b_back() -> bool:
        return "node-b" in [n.node_id for n in await cell.api.client.app[appkeys.CLUSTER].candidates()]

    await cell.until(b_back, 20)
    await _stays_absent(cell, "node-b", speaker, 4.0)
    db = open_database(cell.api.settings.db_path)
    assert db.execute("SELECT count(*) FROM pending_evictions").fetchone()[0] == 0
    db.conn.close()


@pytest.mark.cell_settings(
    enrollment={"reconcile_interval_s": 0.2, "holdings_check_interval_s": 1.0}, nodes={"request_timeout_s": 4.0}
)
async def test_a_node_that_thaws_is_given_what_it_missed(cell: Cell) -> None:
    """A frozen node keeps its boot id; the edge still notices what it lacks and re-warms it."""
    with frozen(cell.nodes["node-b"]):
        status, body = await enroll(cell.api, *speaker_files())
        assert status == 201 and body["data"]["enrolled_on"] == ["node-a"], body
    speaker = body["data"]["id"]

    async def b_holds() -> bool:
        try:
            return speaker in await cell.held_by("node-b")
        except LookupError:
            return False

    await cell.until(b_holds, 30)
    assert (await cell.warm(speaker))["warm_node_ids"] == ["node-a", "node-b"]


async def test_a_node_holding_an_erased_speaker_behind_our_back_is_made_to_release_it(cell: Cell) -> None:
    """Whatever the path (a late hold, a lost release), an erased speaker found in a node's memory goes."""
    speaker = await cell.enroll()
    status, _ = await cell.delete(f"/speakers/{speaker}")
    assert status == 200
    cluster = cell.api.client.app[appkeys.CLUSTER]
    node = next(n for n in await cluster.candidates() if n.node_id == "node-a")
    tenant = tenant_of(cell.api)
    vector = np.ones(192, np.float32) / np.sqrt(192)  # the node model's dimension (CAM++)
    pushed = await cluster.push_embeddings(node, node.model, [(tenant, speaker, vector)])
    assert pushed.ok and speaker in await cell.held_by("node-a")

    async def released() -> bool:
        return speaker not in await cell.held_by("node-a")

    await cell.until(released, 15)


async def test_a_redis_that_lost_the_warm_registry_learns_it_again_from_the_nodes(cell: Cell) -> None:
    speaker = await cell.enroll()
    redis = cell.api.client.app[appkeys.REDIS]
    await redis.flushdb()  # what a restarted, empty Redis looks like

    async def healed() -> bool:
        warm = (await cell.warm(speaker))["warm_node_ids"] == ["node-a", "node-b"]
        # the status follows the holders on the reconciler's next tick (it may have seen no node meanwhile)
        return warm and (await cell.get(f"/speakers/{speaker}"))[1]["data"]["enrollment_status"] == "ready"

    await cell.until(healed, 10)


async def test_erasure_leaves_no_key_material_in_the_database_files(cell: Cell) -> None:
    """Crypto-shredding must not be undone by the WAL: no wrapped key, no sealed embedding survives."""
    speaker = await cell.enroll()
    path = cell.api.settings.db_path
    db = sqlite3.connect(path)
    secrets = [bytes(r[0]) for r in db.execute("SELECT wrapped_key FROM blobs WHERE wrapped_key IS NOT NULL")]
    for wrapped_key, ciphertext in db.execute("SELECT wrapped_key, ciphertext FROM speaker_embeddings"):
        secrets += [bytes(wrapped_key), bytes(ciphertext)]
    db.close()
    assert len(secrets) == 4 and all(len(s) >= 32 for s in secrets)
    status, _ = await cell.delete(f"/speakers/{speaker}")
    assert status == 200
    files = [f for f in (path, path.with_name(path.name + "-wal")) if f.exists()]
    content = b"".join(f.read_bytes() for f in files)
    assert content and not [s for s in secrets if s in content]


@pytest.mark.cell_settings(enrollment={"reconcile_interval_s": 300.0}, models={"load_asr": True})
async def test_health_says_warming_until_a_restarted_node_holds_its_speakers_again(cell: Cell) -> None:
    """The reconciler ticks only when the test says so (once at start, then by hand), so the
    warming window cannot slip between two polls."""
    speaker = await cell.enroll()
    app = cell.api.client.app

    async def health() -> tuple[int, dict[str, Any]]:
        resp = await cell.api.client.get("/healthz")
        return resp.status, await resp.json()

    async def healthy() -> bool:
        return (await health())[0] == 200

    await cell.until(healthy, 20)  # the tick at start reconciled both nodes' boots
    kill9(cell.nodes["node-b"])
    cell.nodes["node-b"].start()

    async def warming() -> bool:
        status, body = await health()
        return status == 503 and body["status"] == "warming" and body.get("warming_nodes") == ["node-b"]

    await cell.until(warming, 20)  # node-b's new boot is online, not reconciled yet
    await reconcile_once(app)
    await asyncio.gather(*app[appkeys.REWARMING].values())
    status, body = await health()
    assert (status, body) == (200, {"status": "ok", "redis": "ok", "nodes_online": 2, "asr": "ok", "disk": "ok"})
    assert speaker in await cell.held_by("node-b")


def _open_for_attack(path: Path) -> sqlite3.Connection:
    """The database file as an attacker with file access has it: triggers dropped."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER erasure_audit_immutable_update")
    conn.execute("DROP TRIGGER erasure_audit_immutable_delete")
    conn.commit()
    return conn


def _rehash_from(conn: sqlite3.Connection, seq: int) -> None:
    """Recompute the plain SHA-256 chain from row ``seq`` on (what a forger without the key can do)."""
    from edge_server.storage.audit import CHAINED, row_hash

    conn.row_factory = sqlite3.Row
    prev = conn.execute("SELECT row_hash FROM erasure_audit WHERE seq = ?", [seq - 1]).fetchone()[0]
    for row in conn.execute("SELECT * FROM erasure_audit WHERE seq >= ? ORDER BY seq", [seq]).fetchall():
        new = row_hash(prev, {c: row[c] for c in (*CHAINED, "reason")})
        conn.execute("UPDATE erasure_audit SET prev_hash = ?, row_hash = ? WHERE seq = ?", [prev, new, row["seq"]])
        prev = new
    conn.commit()


@pytest.mark.parametrize(
    ("attack", "expected"),
    [
        ("edited and re-hashed", "BROKEN at erasure audit row 2: MAC does not match"),
        ("forged row appended", "BROKEN at erasure audit row 4: has no MAC after keyed rows"),
        ("newest row deleted", "BROKEN at erasure audit row 3: the newest rows were deleted"),
        ("newest row and anchor deleted", "names erasure row"),
        ("a blob value", "BROKEN at erasure audit row 2: holds a value of the wrong type"),
    ],
)
async def test_audit_verify_catches_what_a_plain_hash_chain_cannot(cell: Cell, attack: str, expected: str) -> None:
    for _ in range(3):
        assert (await cell.delete(f"/speakers/{await cell.enroll()}"))[0] == 200
    settings = cell.api.settings
    assert audit_verify(settings.data_dir).returncode == 0
    conn = _open_for_attack(settings.db_path)
    if attack == "edited and re-hashed":
        conn.execute("UPDATE erasure_audit SET blob_bytes_deleted = 0 WHERE seq = 2")
        _rehash_from(conn, 2)
    elif attack == "forged row appended":
        conn.execute(
            "INSERT INTO erasure_audit SELECT 4, 'era_forged', tenant_id, speaker_id, consent_id, requested_by_key_id, "
            "requested_at, completed_at, blob_ids, blob_bytes_deleted, evicted_from, error_summary, prev_hash, "
            "row_hash, NULL, reason FROM erasure_audit WHERE seq = 3"
        )
        _rehash_from(conn, 4)
    elif attack.startswith("newest row"):
        conn.execute("DELETE FROM erasure_audit WHERE seq = 3")
        conn.commit()
        if "anchor" in attack:
            (settings.data_dir / "audit-anchor").unlink()
    else:
        conn.execute("UPDATE erasure_audit SET consent_id = X'00ff' WHERE seq = 2")
        conn.commit()
    conn.close()
    broken = audit_verify(settings.data_dir)
    assert broken.returncode == 1 and expected in broken.stdout, broken.stdout + broken.stderr
