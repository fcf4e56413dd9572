"""`scaiecho-admin backup` / `restore`: the data dir in one tar file, taken while the appliance runs.

What goes in, explicitly (`manifest.json` lists every member with its SHA-256):

- `scaiecho.db`: a consistent snapshot through SQLite's online backup API;
- `blobs/`: the encrypted recordings the snapshot's rows point at (ciphertext only);
- `tls/` (the appliance CA and its key), `cluster-secret`, `config.toml` when present;
- the master keys (`master.key`, `master-keys/`) **only** with ``--with-master-key``. Without
  them the archive cannot be decrypted: keep the master key somewhere else, and give it to
  `restore --master-key`.

`bootstrap-api-key` is never included (revoke it, make keys in the console). Restore goes into
an empty data dir (or moves the old one aside with ``--force``) with the appliance stopped, and
refuses unless the master keys it gets can unwrap every data key in the snapshot.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.clock import utc_now
from appliance.crypto import DecryptionError, MasterKey, retiring_dir, write_secret_file
from appliance.programs.key_rotation import LIVE_KEY_IDS_SQL
from appliance.settings import Settings

FORMAT = "scaiecho-backup-v1"
MANIFEST = "manifest.json"
SECRET_FILES = (
    "cluster-secret",
    "audit-key",
    "audit-anchor",
    "tls/ca.pem",
    "tls/ca.key",
    "tls/server.pem",
    "tls/server.key",
)


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Summary:
    """What a backup or restore handled."""

    path: Path
    blobs: int
    missing_blobs: int
    master_key_included: bool
    master_key_ids: list[str]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _snapshot(db_path: Path, target: Path) -> None:
    source = sqlite3.connect(db_path, timeout=30.0)
    dest = sqlite3.connect(target)
    try:
        with dest:
            source.backup(dest)
    finally:
        dest.close()
        source.close()


def _key_ids(db_path: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(tenant id, blob id) of live blobs and the master key ids live data keys name."""
    conn = sqlite3.connect(db_path)
    try:
        blobs = conn.execute("SELECT tenant_id, id FROM blobs WHERE wrapped_key IS NOT NULL").fetchall()
        ids = conn.execute(LIVE_KEY_IDS_SQL).fetchall()
    finally:
        conn.close()
    return [(t, b) for t, b in blobs], sorted(r[0] for r in ids)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> str:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))
    return _sha256(data)


def backup(settings: Settings, out: Path, with_master_key: bool) -> Summary:
    """Write the archive to ``out`` (mode 0600, never over an existing file), one member at a time."""
    if out.exists():
        raise BackupError(f"{out} exists already; give a new file name")
    if not settings.db_path.exists():
        raise BackupError(f"no appliance data in {settings.data_dir}")
    with tempfile.TemporaryDirectory(prefix="scaiecho-backup-") as tmp:
        snapshot = Path(tmp) / "scaiecho.db"
        _snapshot(settings.db_path, snapshot)
        live, key_ids = _key_ids(snapshot)
        members: list[tuple[str, Path]] = [("scaiecho.db", snapshot)]
        missing = 0
        for tenant_id, blob_id in live:
            path = settings.blob_dir / tenant_id / f"{blob_id}.blob"
            if path.exists():
                members.append((f"blobs/{tenant_id}/{blob_id}.blob", path))
            else:  # erased after the snapshot was taken: its key is destroyed by now
                missing += 1
        members += [
            (n, settings.data_dir / n) for n in (*SECRET_FILES, "config.toml") if (settings.data_dir / n).exists()
        ]
        if with_master_key:
            members.append(("master.key", settings.master_key_path))
            members += [
                (f"master-keys/{p.name}", p) for p in sorted(retiring_dir(settings.master_key_path).glob("*.key"))
            ]
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w") as tar:
                digests = {name: _add(tar, name, path.read_bytes()) for name, path in members}
                manifest = {
                    "format": FORMAT,
                    "created_at": utc_now(),
                    "master_key_included": with_master_key,
                    "master_key_ids": key_ids,
                    "missing_blobs": missing,
                    "members": digests,
                }
                _add(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
                tar.close()
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            out.unlink(missing_ok=True)
            raise
    return Summary(out, len(live) - missing, missing, with_master_key, key_ids)


def _is_key_member(name: str) -> bool:
    return name == "master.key" or name.startswith("master-keys/")


def _unpack(archive: Path, staging: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Extract into ``staging`` checking every member against the manifest; returns the manifest
    and the master keys found (kept in memory, written by the caller)."""
    digests: dict[str, str] = {}
    keys: dict[str, bytes] = {}
    manifest: dict[str, Any] | None = None
    try:
        with tarfile.open(archive, mode="r") as tar:
            for member in tar:
                name = member.name
                if not member.isfile() or name.startswith("/") or ".." in Path(name).parts:
                    raise BackupError(f"{archive} holds an unexpected entry {name!r}; not a ScaiEcho backup")
                extracted = tar.extractfile(member)
                assert extracted is not None
                data = extracted.read()
                if name == MANIFEST:
                    manifest = json.loads(data)
                    continue
                digests[name] = _sha256(data)
                if _is_key_member(name):
                    keys[name] = data
                    continue
                path = staging / name
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                write_secret_file(path, data)
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise BackupError(f"cannot read {archive}: {exc}") from exc
    if manifest is None or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive} is not a {FORMAT} archive (no manifest)")
    if manifest["members"] != digests:
        raise BackupError(f"{archive} is damaged or incomplete: its members do not match the manifest")
    return manifest, keys


def _master_keys(master_key: Path | None, in_archive: dict[str, bytes]) -> list[tuple[MasterKey, bytes]]:
    """Every master key on offer, the one given on the command line first, without repeats."""
    raw = [master_key.read_bytes()] if master_key is not None else []
    raw += [data for _, data in sorted(in_archive.items())]
    keys: dict[str, tuple[MasterKey, bytes]] = {}
    for data in raw:
        try:
            key = MasterKey(data)
        except ValueError as exc:
            raise BackupError("a master key file must hold exactly 32 bytes") from exc
        keys.setdefault(key.key_id, (key, data))
    return list(keys.values())


def _check_keys(db_path: Path, keys: list[MasterKey], needed: list[str]) -> None:
    lacking = [k for k in needed if k not in {key.key_id for key in keys}]
    if lacking:
        raise BackupError(
            f"the backup's data keys are wrapped by master key {', '.join(lacking)}, which was not given: "
            "pass --master-key with the master.key file of the backed-up appliance"
        )
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute(
            "SELECT tenant_id, id, wrapped_key, master_key_id FROM blobs WHERE wrapped_key IS NOT NULL"
        ).fetchall()
    finally:
        conn.close()
    by_id = {k.key_id: k for k in keys}
    for tenant_id, blob_id, wrapped, key_id in rows:
        try:
            by_id[key_id].unwrap(wrapped, tenant_id, blob_id)
        except (KeyError, DecryptionError) as exc:
            raise BackupError(f"the master keys given do not open the data key of {blob_id}") from exc


def restore(archive: Path, settings: Settings, master_key: Path | None, force: bool) -> Summary:
    """Unpack ``archive`` into the (stopped) appliance's data dir, all or nothing."""
    target = settings.data_dir
    if target.exists() and any(target.iterdir()) and not force:
        raise BackupError(
            f"{target} is not empty: stop the appliance and pass --force to move it aside, or use another --data-dir"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.restore-", dir=target.parent))
    try:
        manifest, in_archive = _unpack(archive, staging)
        keys = _master_keys(master_key, in_archive)
        if not keys:
            raise BackupError("this backup holds no master key: pass --master-key with the appliance's master.key")
        needed = [str(k) for k in manifest["master_key_ids"]]
        _check_keys(staging / "scaiecho.db", [k for k, _ in keys], needed)
        # the first key becomes the current one; the others stay until a rotation retires them
        (_, current), *others = keys
        write_secret_file(staging / "master.key", current)
        for key, data in others:
            write_secret_file(retiring_dir(staging / "master.key") / f"{key.key_id}.key", data)
        if target.exists():
            target.rename(target.with_name(f"{target.name}.before-restore-{int(time.time())}"))
        staging.rename(target)
        target.chmod(0o700)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        raise
    blobs = sum(1 for name in manifest["members"] if name.startswith("blobs/"))
    return Summary(target, blobs, int(manifest["missing_blobs"]), bool(manifest["master_key_included"]), needed)
