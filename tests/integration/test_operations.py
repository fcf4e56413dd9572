"""Backup, restore and master-key rotation through `scaiecho-admin`, against a running edge app
with the real node processes, Redis and SQLite."""

from __future__ import annotations

import asyncio
import io
import stat
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from appliance.contract import BASE
from appliance.crypto import MasterKey, retiring_dir
from appliance.programs import admin_cli
from appliance.redis_server import BundledRedis
from edge_server.app import create_app
from edge_server.storage.db import open_database
from tests.integration.conftest import Api, NodeProcess, make_settings
from tests.integration.test_enrollment import enroll, speaker_files


def admin(data_dir: Path, *args: str) -> int:
    return admin_cli.main(["--data-dir", str(data_dir), *args])


def key_ids_in_use(api: Api) -> set[str]:
    db = open_database(api.settings.db_path)
    try:
        rows = db.execute(
            "SELECT master_key_id FROM blobs WHERE wrapped_key IS NOT NULL "
            "UNION SELECT master_key_id FROM speaker_embeddings"
        ).fetchall()
        return {r[0] for r in rows}
    finally:
        db.conn.close()


async def rewarm_ok(api: Api, speaker_id: str) -> bool:
    resp = await api.client.post(f"{BASE}/speakers/{speaker_id}/warm", json={}, headers=api.headers())
    body = await resp.json()
    return resp.status == 200 and all(r["ok"] for r in body["data"]["results"].values())


async def test_backup_while_running_then_restore_elsewhere(
    api: Api,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    tmp_path: Path,
    redis_server: BundledRedis,
    cluster_secret: Path,
    nodes: list[NodeProcess],
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, body = await enroll(api, *speaker_files(0))
    assert status == 201
    speaker_id = body["data"]["id"]
    archive = tmp_path / "backup.tar"
    assert await asyncio.to_thread(admin, api.settings.data_dir, "backup", str(archive)) == 0
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "scaiecho.db" in names and "cluster-secret" in names and sum(n.startswith("blobs/") for n in names) == 2
    assert "master.key" not in names and "bootstrap-api-key" not in names
    assert "master key is NOT in the archive" in capsys.readouterr().err

    target = tmp_path / "restored"
    assert admin(target, "restore", str(archive)) == 1  # no master key anywhere
    assert "pass --master-key" in capsys.readouterr().err
    assert not target.exists()
    assert admin(target, "restore", str(archive), "--master-key", str(api.settings.master_key_path)) == 0
    assert admin(target, "restore", str(archive), "--master-key", str(api.settings.master_key_path)) == 1  # not empty
    assert "not empty" in capsys.readouterr().err

    restored = await aiohttp_client(create_app(make_settings(target, redis_server.url, cluster_secret)))
    resp = await restored.get(f"{BASE}/speakers/{speaker_id}", headers=api.headers())  # the same keys work
    assert resp.status == 200 and (await resp.json())["data"]["display_name"] == "Alice Example"
    resp = await restored.post(f"{BASE}/speakers/{speaker_id}/warm", json={}, headers=api.headers())
    results = (await resp.json())["data"]["results"]
    assert resp.status == 200 and results and all(r["ok"] for r in results.values())  # recordings decrypt


async def test_a_damaged_archive_is_refused_and_leaves_nothing(api: Api, tmp_path: Path) -> None:
    status, _ = await enroll(api, *speaker_files(0))
    assert status == 201
    archive = tmp_path / "backup.tar"
    assert admin(api.settings.data_dir, "backup", str(archive), "--with-master-key") == 0
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.startswith("blobs/"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(member, io.BytesIO(data))
    target = tmp_path / "restored"
    assert admin(target, "restore", str(damaged)) == 1
    assert not target.exists() and not list(tmp_path.glob(".restored.restore-*"))
    assert admin(target, "restore", str(archive)) == 0  # the key rode along
    assert MasterKey((target / "master.key").read_bytes()).key_id in key_ids_in_use(api)


async def test_rotation_while_enrolling_then_old_backups_need_the_old_key(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, body = await enroll(api, *speaker_files(0))
    assert status == 201
    first = body["data"]["id"]
    old_id = MasterKey(api.settings.master_key_path.read_bytes()).key_id
    old_backup = tmp_path / "before.tar"
    assert admin(api.settings.data_dir, "backup", str(old_backup)) == 0

    rotation = asyncio.create_task(asyncio.to_thread(admin, api.settings.data_dir, "master-key", "rotate"))
    status, body = await enroll(api, *speaker_files(1))  # served while the rotation runs
    assert status == 201
    second = body["data"]["id"]
    assert await rotation == 0
    new_id = MasterKey(api.settings.master_key_path.read_bytes()).key_id
    assert new_id != old_id
    assert key_ids_in_use(api) == {new_id}
    assert list(retiring_dir(api.settings.master_key_path).glob("*.key")) == []
    assert await rewarm_ok(api, first) and await rewarm_ok(api, second)

    # a backup from before the rotation is unreadable without the retired key
    capsys.readouterr()
    target = tmp_path / "old"
    assert admin(target, "restore", str(old_backup), "--master-key", str(api.settings.master_key_path)) == 1
    assert old_id in capsys.readouterr().err and not target.exists()
