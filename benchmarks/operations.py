"""Backup, restore and master-key rotation times on a data dir of synthetic speakers; prints tables.

Each speaker is what an enrollment stores: a 30 s reference and a 10 s consent recording
(16 kHz 16-bit WAV, 960 KB and 320 KB of random bytes, sealed like real uploads) and one cached
embedding. Rotation re-wraps keys only, so it is also measured on many small blobs.

    python -m benchmarks.operations [--speakers 100 500] [--keys 1000 10000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from appliance.clock import utc_now
from appliance.crypto import Keyring
from appliance.programs import key_rotation
from appliance.programs.backup import backup, restore
from appliance.programs.supervisor import prepare_data_dir
from appliance.settings import load_settings
from edge_server.access.tenancy import find_tenant, new_id
from edge_server.storage import embedding_cache
from edge_server.storage.blobs import BlobStore
from edge_server.storage.db import open_database

REFERENCE_BYTES = 960_000
CONSENT_BYTES = 320_000


def populate(data_dir: Path, speakers: int, reference_bytes: int, consent_bytes: int) -> Path:
    """A data dir holding ``speakers`` sealed speakers; returns it."""
    settings = load_settings(data_dir)
    prepare_data_dir(settings)
    db = open_database(settings.db_path)
    keyring = Keyring.load_or_create(settings.master_key_path)
    store = BlobStore(settings.blob_dir, keyring, db)
    tenant_id = find_tenant(db, "default")
    assert tenant_id is not None
    rng = np.random.default_rng(7)
    for _ in range(speakers):
        ref = store.put(tenant_id, "reference", rng.bytes(reference_bytes))
        con = store.put(tenant_id, "consent", rng.bytes(consent_bytes))
        speaker_id, consent_id, now = new_id("spk"), new_id("cns"), utc_now()
        with db.atomic():
            db.table("blobs").insert_all([ref.row(), con.row()])
            db.execute(
                "INSERT INTO speakers (id, tenant_id, display_name, language_primary, enrollment_status, preflight, "
                "reference_blob_id, consent_blob_id, consent_id, created_by_key_id, created_at, updated_at) "
                "VALUES (?, ?, 'x', 'en', 'ready', '{}', ?, ?, ?, 'bench', ?, ?)",
                [speaker_id, tenant_id, ref.id, con.id, consent_id, now, now],
            )
            db.execute(
                "INSERT INTO consent_records (id, tenant_id, speaker_id, user_full_name, stated_purpose, consent_text, "
                "consent_audio_sha256, reference_audio_sha256, enrolled_by_key_id, recorded_at) "
                "VALUES (?, ?, ?, 'x', 'x', 'x', 'x', 'x', 'x', ?)",
                [consent_id, tenant_id, speaker_id, now],
            )
        embedding_cache.store(db, keyring, tenant_id, speaker_id, "ge2e", rng.random(256, dtype=np.float32))
    db.conn.close()
    return data_dir


def timed(step: object) -> float:
    started = time.perf_counter()
    assert callable(step)
    step()
    return time.perf_counter() - started


def backup_table(counts: list[int]) -> None:
    print("| speakers | data dir (MB) | backup (s) | archive (MB) | restore (s) |")
    print("|---:|---:|---:|---:|---:|")
    for count in counts:
        with tempfile.TemporaryDirectory() as tmp:
            data = populate(Path(tmp) / "data", count, REFERENCE_BYTES, CONSENT_BYTES)
            size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file()) / 1e6
            archive = Path(tmp) / "backup.tar"
            settings = load_settings(data)
            backup_s = timed(lambda s=settings, a=archive: backup(s, a, with_master_key=False))
            target = load_settings(Path(tmp) / "restored")
            restore_s = timed(lambda t=target, a=archive, s=settings: restore(a, t, s.master_key_path, force=False))
            print(f"| {count} | {size:.0f} | {backup_s:.2f} | {archive.stat().st_size / 1e6:.0f} | {restore_s:.2f} |")


def rotation_table(counts: list[int]) -> None:
    print("| data keys (recordings + embeddings) | re-wrap (s) | keys/s | rotate incl. 3 s quiet wait (s) |")
    print("|---:|---:|---:|---:|")
    for count in counts:
        speakers = count // 3  # two recordings and one embedding each
        with tempfile.TemporaryDirectory() as tmp:
            data = populate(Path(tmp) / "data", speakers, 64, 64)
            settings = load_settings(data)
            db = open_database(settings.db_path)
            started = time.perf_counter()
            done = key_rotation.rotate(db, settings.master_key_path)
            total = time.perf_counter() - started
            db.conn.close()
            rewrap = total - key_rotation.QUIET_S
            print(f"| {done.rewrapped} | {rewrap:.2f} | {done.rewrapped / rewrap:.0f} | {total:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--speakers", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--keys", type=int, nargs="+", default=[1500, 15000])
    args = parser.parse_args()
    print(f"operations on this box ({os.cpu_count()} CPUs)\n")
    backup_table(args.speakers)
    print()
    rotation_table(args.keys)


if __name__ == "__main__":
    main()
