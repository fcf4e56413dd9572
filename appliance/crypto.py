"""Envelope encryption for blobs: AES-256-GCM data keys wrapped by a master key.

Each blob gets a fresh 256-bit data key. The blob is sealed with it, and the data key is sealed
(wrapped) with the master key. Both seals bind associated data naming the tenant and the blob id,
so ciphertext moved to another tenant or id fails authentication. Destroying the wrapped data key
makes the blob unrecoverable (crypto-shredding) even if a copy of its ciphertext survives.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
#: A running `Keyring` looks for a rotated or retired master key at most this often.
RECHECK_S = 0.5
NONCE_BYTES = 12
FORMAT = b"scaiecho-blob-v1"


class DecryptionError(Exception):
    """A ciphertext or wrapped key failed authentication (tampered, moved, or wrong key)."""


def write_secret_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 and ``data``; refuses to overwrite an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_or_create_secret(path: Path, nbytes: int = KEY_BYTES) -> bytes:
    """The secret in ``path``, creating it (0600, random) on first use."""
    if not path.exists():
        # Another process may create it between our check and our open: theirs wins.
        with contextlib.suppress(FileExistsError):
            write_secret_file(path, secrets.token_bytes(nbytes))
    data = path.read_bytes()
    if len(data) != nbytes:
        raise ValueError(f"{path.name} must hold exactly {nbytes} bytes")
    return data


def read_or_create_token(path: Path) -> str:
    """A printable secret token in ``path`` (0600), created on first use; e.g. the metrics token."""
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            write_secret_file(path, secrets.token_urlsafe(32).encode())
    return path.read_text().strip()


def cluster_token(path: Path) -> bytes:
    """The cluster secret as the bearer token nodes and the edge server exchange (hex text)."""
    return read_or_create_secret(path).hex().encode()


def associated_data(tenant_id: str, blob_id: str, purpose: str) -> bytes:
    """What a seal binds: format version, purpose, tenant and blob id."""
    return b"|".join([FORMAT, purpose.encode(), tenant_id.encode(), blob_id.encode()])


@dataclass(frozen=True)
class Sealed:
    """A sealed blob: its ciphertext (nonce || ct || tag) and its wrapped data key."""

    ciphertext: bytes
    wrapped_key: bytes
    master_key_id: str


class MasterKey:
    """The key-encryption key kept in the data dir."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("a master key is 32 bytes")
        self._aead = AESGCM(key)
        #: Public identifier of this key (not secret): lets a future rotation tell keys apart.
        self.key_id = hashlib.sha256(b"scaiecho-master-key-id|" + key).hexdigest()[:16]

    @classmethod
    def load_or_create(cls, path: Path) -> MasterKey:
        """Read the master key file, creating a random one (mode 0600) on first start."""
        return cls(read_or_create_secret(path))

    def wrap(self, data_key: bytes, tenant_id: str, blob_id: str) -> bytes:
        """Seal a data key under this master key."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, associated_data(tenant_id, blob_id, "key"))

    def unwrap(self, wrapped_key: bytes, tenant_id: str, blob_id: str) -> bytes:
        """The data key inside ``wrapped_key``; `DecryptionError` when this key did not wrap it."""
        try:
            return self._aead.decrypt(
                wrapped_key[:NONCE_BYTES], wrapped_key[NONCE_BYTES:], associated_data(tenant_id, blob_id, "key")
            )
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError("wrapped key failed authentication") from exc

    def seal(self, plaintext: bytes, tenant_id: str, blob_id: str) -> Sealed:
        """Encrypt ``plaintext`` under a fresh data key and wrap that key."""
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = nonce + AESGCM(data_key).encrypt(nonce, plaintext, associated_data(tenant_id, blob_id, "data"))
        return Sealed(ciphertext, self.wrap(data_key, tenant_id, blob_id), self.key_id)

    def open(self, ciphertext: bytes, wrapped_key: bytes, tenant_id: str, blob_id: str) -> bytes:
        """Unwrap the data key and decrypt; `DecryptionError` on any mismatch."""
        return _decrypt(self.unwrap(wrapped_key, tenant_id, blob_id), ciphertext, tenant_id, blob_id)


def _decrypt(data_key: bytes, ciphertext: bytes, tenant_id: str, blob_id: str) -> bytes:
    try:
        return AESGCM(data_key).decrypt(
            ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:], associated_data(tenant_id, blob_id, "data")
        )
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError("blob failed authentication") from exc


class Sealer(Protocol):
    """What blob and embedding storage need: seal under the current key, open under any known one."""

    def seal(self, plaintext: bytes, tenant_id: str, blob_id: str) -> Sealed: ...

    def open(self, ciphertext: bytes, wrapped_key: bytes, tenant_id: str, blob_id: str) -> bytes: ...


class Keyring:
    """The current master key (``master.key``) and the retiring ones a rotation keeps beside it
    (``master-keys/<key id>.key``) until every data key is re-wrapped.

    A rotation run by `scaiecho-admin master-key rotate` reaches a running edge server without a
    restart: the files are looked at again at most every `RECHECK_S` (the rotation re-wraps what
    was sealed under the old key meanwhile), and at once when no key in memory opens a data key.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.retiring_dir = retiring_dir(path)
        self._signature: tuple[object, ...] = ()
        self._keys: tuple[MasterKey, ...] = ()
        self._checked_at = 0.0
        self._reload()

    @classmethod
    def load_or_create(cls, path: Path) -> Keyring:
        """The keyring of ``path``, creating the first master key on first start."""
        read_or_create_secret(path)
        return cls(path)

    def _current_signature(self) -> tuple[object, ...]:
        stat = self.path.stat()
        retiring = sorted(p.name for p in self.retiring_dir.glob("*.key"))
        return (stat.st_ino, stat.st_mtime_ns, *retiring)

    def _reload(self) -> None:
        self._checked_at = time.monotonic()
        signature = self._current_signature()
        if signature == self._signature:
            return
        current = MasterKey(self.path.read_bytes())
        others = [MasterKey(p.read_bytes()) for p in sorted(self.retiring_dir.glob("*.key"))]
        self._keys = (current, *[k for k in others if k.key_id != current.key_id])
        self._signature = signature

    def seal(self, plaintext: bytes, tenant_id: str, blob_id: str) -> Sealed:
        """Seal under the current master key."""
        self._recheck()
        return self._keys[0].seal(plaintext, tenant_id, blob_id)

    def open(self, ciphertext: bytes, wrapped_key: bytes, tenant_id: str, blob_id: str) -> bytes:
        """Open with whichever known master key wrapped the data key (reading the files again
        at once when none of the keys in memory did)."""
        self._recheck()
        data_key = self._unwrap(wrapped_key, tenant_id, blob_id)
        if data_key is None:
            self._reload()
            data_key = self._unwrap(wrapped_key, tenant_id, blob_id)
        if data_key is None:
            raise DecryptionError("no known master key wrapped this data key")
        return _decrypt(data_key, ciphertext, tenant_id, blob_id)

    def _recheck(self) -> None:
        if time.monotonic() - self._checked_at >= RECHECK_S:
            self._reload()

    def _unwrap(self, wrapped_key: bytes, tenant_id: str, blob_id: str) -> bytes | None:
        for key in self._keys:
            try:
                return key.unwrap(wrapped_key, tenant_id, blob_id)
            except DecryptionError:
                continue
        return None


def retiring_dir(master_key_path: Path) -> Path:
    """Where a rotation keeps the previous master keys until nothing needs them."""
    return master_key_path.parent / "master-keys"
