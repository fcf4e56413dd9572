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
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
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

    def seal(self, plaintext: bytes, tenant_id: str, blob_id: str) -> Sealed:
        """Encrypt ``plaintext`` under a fresh data key and wrap that key."""
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = nonce + AESGCM(data_key).encrypt(nonce, plaintext, associated_data(tenant_id, blob_id, "data"))
        wrap_nonce = secrets.token_bytes(NONCE_BYTES)
        wrapped = wrap_nonce + self._aead.encrypt(wrap_nonce, data_key, associated_data(tenant_id, blob_id, "key"))
        return Sealed(ciphertext=ciphertext, wrapped_key=wrapped, master_key_id=self.key_id)

    def open(self, ciphertext: bytes, wrapped_key: bytes, tenant_id: str, blob_id: str) -> bytes:
        """Unwrap the data key and decrypt; `DecryptionError` on any mismatch."""
        try:
            data_key = self._aead.decrypt(
                wrapped_key[:NONCE_BYTES],
                wrapped_key[NONCE_BYTES:],
                associated_data(tenant_id, blob_id, "key"),
            )
            return AESGCM(data_key).decrypt(
                ciphertext[:NONCE_BYTES],
                ciphertext[NONCE_BYTES:],
                associated_data(tenant_id, blob_id, "data"),
            )
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError("blob failed authentication") from exc
