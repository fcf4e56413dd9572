"""SQLite migrations, orphan-blob sweep and the operator CLI on a real data dir."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from appliance.crypto import MasterKey
from edge_server.access.tenancy import authenticate, bootstrap, create_tenant
from edge_server.storage.blobs import BlobStore
from edge_server.storage.db import migrate, migration_scripts, open_database


def test_migrations_apply_once_and_record_versions(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations").fetchall()]
    assert versions == [v for v, _, _ in migration_scripts()]
    assert migrate(db) == []
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE(os.stat(tmp_path / "x.db").st_mode) == 0o600


def test_orphan_blob_files_are_swept(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    tenant = create_tenant(db, "t")
    store = BlobStore(tmp_path / "blobs", MasterKey(os.urandom(32)), db)
    kept = store.put(tenant, "reference", b"kept")
    with db.atomic():
        db.table("blobs").insert(kept.row())
    orphan = store.put(tenant, "consent", b"never committed")  # crash before the commit
    assert store.sweep_orphans() == 1
    assert kept.path.exists() and not orphan.path.exists()
    assert store.get(tenant, kept.id) == b"kept"


def test_bootstrap_once_with_private_key_file(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    key_file = tmp_path / "bootstrap-api-key"
    assert bootstrap(db, key_file) is True
    assert bootstrap(db, key_file) is False
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    principal = authenticate(db, key_file.read_text().strip())
    assert principal is not None and len(principal.scopes) == 4


def admin(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance.programs.admin_cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_admin_cli_takes_the_data_dir_after_the_subcommand_too(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "appliance.programs.admin_cli", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    created = run("tenant", "create", "acme", "--data-dir", str(tmp_path))
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "scaiecho.db").exists()
    verified = run("audit", "verify", "--data-dir", str(tmp_path))
    assert verified.returncode == 0 and verified.stdout.startswith("OK"), verified.stderr
    assert run("--data-dir", str(tmp_path), "tenant", "create", "acme").returncode == 1  # same dir either way


def test_admin_cli_tenants_and_keys(tmp_path: Path) -> None:
    created = admin(tmp_path, "tenant", "create", "acme")
    assert created.returncode == 0
    tenant_id = created.stdout.strip()
    assert tenant_id.startswith("ten_")
    assert admin(tmp_path, "tenant", "create", "acme").returncode == 1

    key = admin(tmp_path, "key", "create", "--tenant", "acme", "--scopes", "scaiecho:enroll,scaiecho:transcribe")
    assert key.returncode == 0
    token = key.stdout.strip()
    db = open_database(tmp_path / "scaiecho.db")
    principal = authenticate(db, token)
    assert principal is not None
    assert principal.tenant_id == tenant_id
    assert principal.scopes == {"scaiecho:enroll", "scaiecho:transcribe"}
    stored = db.execute("SELECT secret_sha256 FROM api_keys WHERE id = ?", [principal.key_id]).fetchone()[0]
    assert token.split("_", 2)[2] not in stored  # only a digest is kept

    assert admin(tmp_path, "key", "create", "--tenant", "acme", "--scopes", "scaiecho:root").returncode == 1
    assert admin(tmp_path, "key", "revoke", principal.key_id).returncode == 0
    assert authenticate(db, token) is None
    assert admin(tmp_path, "key", "revoke", principal.key_id).returncode == 1
