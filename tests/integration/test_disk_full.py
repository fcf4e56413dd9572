"""A full disk: enrollment answers 507 and keeps nothing, never a 201 over a truncated recording.

Two ways to fill it: short writes injected into the blob store (what a nearly full disk does to
``os.write``), and a real small file system (a tmpfs mounted over the blob folder, as root).
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.settings import Settings
from edge_server import appkeys
from edge_server.storage import blobs
from edge_server.storage.db import open_database
from tests.integration.conftest import ApiFactory, make_settings
from tests.integration.test_enrollment import BASE, enroll, node_holds, speaker_files, tenant_of


def stored_state(settings: Settings) -> tuple[int, int, list[str]]:
    """(speaker rows, blob rows, files under the blob folder)."""
    db = open_database(settings.db_path)
    try:
        speakers = db.execute("SELECT count(*) FROM speakers").fetchone()[0]
        rows = db.execute("SELECT count(*) FROM blobs").fetchone()[0]
    finally:
        db.conn.close()
    return speakers, rows, sorted(p.name for p in settings.blob_dir.rglob("*") if p.is_file())


def keeping_free(settings: Settings, min_free_bytes: int) -> Settings:
    server = settings.server.model_copy(update={"min_free_bytes": min_free_bytes})
    return settings.model_copy(update={"server": server})


async def test_short_writes_then_no_space_answer_507_and_leave_nothing(
    api_factory: ApiFactory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = await api_factory(
        settings.model_copy(update={"server": settings.server.model_copy(update={"min_free_bytes": 0})})
    )
    real_write = os.write
    calls = {"n": 0}

    def nearly_full(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data)[: len(data) // 3])  # the disk takes a third
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(blobs.os, "write", nearly_full)
    status, body = await enroll(api, *speaker_files())
    assert status == 507, body
    assert body["error"]["code"] == "insufficient_storage" and "free space" in body["error"]["message"]
    assert calls["n"] == 2  # the short write was noticed and the rest attempted
    assert stored_state(api.settings) == (0, 0, [])
    assert all(not held for held in (await node_holds(api, tenant_of(api))).values())

    monkeypatch.setattr(blobs.os, "write", real_write)  # space again: the same request now succeeds
    status, body = await enroll(api, *speaker_files())
    assert status == 201, body


async def test_the_low_water_mark_refuses_before_writing_and_health_says_so(
    api_factory: ApiFactory, settings: Settings
) -> None:
    huge = 1 << 62
    api = await api_factory(
        settings.model_copy(update={"server": settings.server.model_copy(update={"min_free_bytes": huge})})
    )
    status, body = await enroll(api, *speaker_files())
    assert status == 507 and body["error"]["code"] == "insufficient_storage", body
    assert stored_state(api.settings) == (0, 0, [])
    resp = await api.client.get("/healthz")
    assert resp.status == 503 and (await resp.json())["disk"] == "low"


@pytest.fixture
def small_blob_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1000 KiB tmpfs where the blobs go: room for two enrollments of the sample, not three."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (CI runs as root)")
    folder = tmp_path / "data" / "blobs"
    folder.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1000k,mode=0700", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


async def test_a_real_full_file_system_never_keeps_a_truncated_recording(
    api_factory: ApiFactory, tmp_path: Path, redis_server, cluster_secret: Path, nodes, small_blob_disk: Path
) -> None:
    settings = make_settings(tmp_path / "data", redis_server.url, cluster_secret, server={"min_free_bytes": 0})
    assert settings.blob_dir == small_blob_disk
    api = await api_factory(settings)
    reference, consent = speaker_files()
    outcomes = []
    for _ in range(4):
        status, body = await enroll(api, reference, consent)
        outcomes.append(status)
        if status == 507:
            assert body["error"]["code"] == "insufficient_storage"
    assert outcomes[:2] == [201, 201] and 507 in outcomes, outcomes

    # every kept recording decrypts whole and matches the consent record's hash; nothing else is on disk
    store = api.client.app[appkeys.BLOBS]
    db = open_database(settings.db_path)
    rows = db.execute(
        "SELECT s.tenant_id, s.reference_blob_id, s.consent_blob_id, c.reference_audio_sha256, c.consent_audio_sha256 "
        "FROM speakers s JOIN consent_records c ON c.id = s.consent_id"
    ).fetchall()
    db.conn.close()
    assert len(rows) == outcomes.count(201)
    for tenant_id, reference_id, consent_id, reference_sha, consent_sha in rows:
        assert hashlib.sha256(store.get(tenant_id, reference_id)).hexdigest() == reference_sha
        assert hashlib.sha256(store.get(tenant_id, consent_id)).hexdigest() == consent_sha
    speakers, blob_rows, files = stored_state(settings)
    assert (speakers, blob_rows) == (len(rows), 2 * len(rows))
    assert len(files) == blob_rows and not [f for f in files if f.endswith(".tmp")]
    resp = await api.client.get(f"{BASE}/speakers", headers=api.headers())
    assert len((await resp.json())["data"]) == len(rows)
