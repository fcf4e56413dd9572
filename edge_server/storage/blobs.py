"""Encrypted blob storage: ciphertext files under the data dir, wrapped keys in SQLite.

Plaintext never reaches the disk: `put` seals in memory and writes only ciphertext (through a
temporary file of ciphertext, renamed into place). A blob becomes visible only when the caller
inserts its row in the same transaction as whatever owns it; `discard` removes the file of a
blob whose transaction failed, and `sweep_orphans` removes files whose row never committed
(a crash between the write and the commit).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from appliance.clock import utc_now
from appliance.crypto import Sealer
from edge_server.access.tenancy import new_id

SUFFIX = ".blob"


@dataclass(frozen=True)
class StoredBlob:
    """A ciphertext file written to disk whose row the caller still has to insert."""

    id: str
    tenant_id: str
    kind: str
    path: Path
    size: int
    wrapped_key: bytes
    master_key_id: str

    def row(self) -> dict[str, Any]:
        """The ``blobs`` row to insert in the owner's transaction."""
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "kind": self.kind,
            "size": self.size,
            "wrapped_key": self.wrapped_key,
            "master_key_id": self.master_key_id,
            "created_at": utc_now(),
            "destroyed_at": None,
        }


def _write_whole(path: Path, data: bytes) -> None:
    """Create ``path`` (0600) holding exactly ``data``, synced; OSError (ENOSPC on a full disk) otherwise.

    ``os.write`` may write less than asked (a nearly full disk does): the rest is written again
    until the disk refuses, so a truncated ciphertext can never be kept as if it were whole.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            if written <= 0:
                raise OSError(errno.ENOSPC, "no space left on device", str(path))
            view = view[written:]
        os.fsync(fd)
        if os.fstat(fd).st_size != len(data):
            raise OSError(errno.EIO, "the ciphertext was not stored whole", str(path))
    finally:
        os.close(fd)


class BlobStore:
    """Sealed blobs in ``root/<tenant_id>/<blob_id>.blob``."""

    def __init__(self, root: Path, master_key: Sealer, db: sqlite_utils.Database) -> None:
        self.root = root
        self.master_key = master_key
        self.db = db
        root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, tenant_id: str, blob_id: str) -> Path:
        return self.root / tenant_id / f"{blob_id}{SUFFIX}"

    def put(self, tenant_id: str, kind: str, plaintext: bytes) -> StoredBlob:
        """Seal and write; the returned row must be inserted by the caller (or `discard`ed)."""
        blob_id = new_id("blob")
        sealed = self.master_key.seal(plaintext, tenant_id, blob_id)
        path = self._path(tenant_id, blob_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        try:
            _write_whole(tmp, sealed.ciphertext)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk leaves no temporary behind
            raise
        return StoredBlob(
            blob_id, tenant_id, kind, path, len(sealed.ciphertext), sealed.wrapped_key, sealed.master_key_id
        )

    def record(self, stored: list[StoredBlob]) -> None:
        """Insert the rows of written blobs (inside the owner's transaction)."""
        self.db.table("blobs").insert_all([b.row() for b in stored])

    def destroy_keys(self, blob_ids: list[str]) -> int:
        """Crypto-shred: drop the wrapped data keys (inside the caller's transaction); returns the
        ciphertext bytes they protected. Idempotent."""
        marks = ",".join("?" * len(blob_ids))
        size = self.db.execute(f"SELECT coalesce(sum(size), 0) FROM blobs WHERE id IN ({marks})", blob_ids)
        total = int(size.fetchone()[0])
        self.db.execute(
            f"UPDATE blobs SET wrapped_key = NULL, destroyed_at = coalesce(destroyed_at, ?) WHERE id IN ({marks})",
            [utc_now(), *blob_ids],
        )
        return total

    def usage(self, tenant_id: str) -> tuple[int, int]:
        """(live recordings, their ciphertext bytes) of a tenant."""
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs WHERE tenant_id = ? AND destroyed_at IS NULL",
            [tenant_id],
        ).fetchone()
        return int(row[0]), int(row[1])

    def discard(self, blob: StoredBlob) -> None:
        """Remove the file of a blob whose row was never committed."""
        blob.path.unlink(missing_ok=True)

    def remove_files(self, tenant_id: str, blob_ids: list[str]) -> None:
        """Unlink the ciphertext of blobs whose keys were destroyed (idempotent)."""
        for blob_id in blob_ids:
            self._path(tenant_id, blob_id).unlink(missing_ok=True)

    def get(self, tenant_id: str, blob_id: str) -> bytes:
        """Decrypt a live blob of ``tenant_id``; KeyError when absent or destroyed."""
        row = self.db.execute(
            "SELECT wrapped_key FROM blobs WHERE id = ? AND tenant_id = ? AND destroyed_at IS NULL",
            [blob_id, tenant_id],
        ).fetchone()
        if row is None or row[0] is None:
            raise KeyError(blob_id)
        ciphertext = self._path(tenant_id, blob_id).read_bytes()
        return self.master_key.open(ciphertext, row[0], tenant_id, blob_id)

    def sweep_orphans(self) -> int:
        """Delete ciphertext files (and temporaries) that have no committed row; returns how many."""
        live = {r[0] for r in self.db.execute("SELECT id FROM blobs WHERE destroyed_at IS NULL").fetchall()}
        removed = 0
        for path in self.root.glob("*/*"):
            if path.suffix == SUFFIX and path.stem in live:
                continue
            path.unlink(missing_ok=True)
            removed += 1
        return removed
