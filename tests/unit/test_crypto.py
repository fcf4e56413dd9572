"""Envelope encryption: round trip, tamper detection, binding to tenant and blob id."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from appliance import crypto
from appliance.crypto import DecryptionError, Keyring, MasterKey, read_or_create_secret, retiring_dir, write_secret_file

PLAIN = b"RIFF....WAVEfmt " + bytes(range(256)) * 40


@pytest.fixture
def key() -> MasterKey:
    return MasterKey(os.urandom(32))


def test_round_trip(key: MasterKey) -> None:
    sealed = key.seal(PLAIN, "ten_a", "blob_1")
    assert PLAIN not in sealed.ciphertext
    assert key.open(sealed.ciphertext, sealed.wrapped_key, "ten_a", "blob_1") == PLAIN


def test_each_blob_gets_its_own_data_key(key: MasterKey) -> None:
    a, b = key.seal(PLAIN, "ten_a", "blob_1"), key.seal(PLAIN, "ten_a", "blob_1")
    assert a.wrapped_key != b.wrapped_key
    assert a.ciphertext != b.ciphertext


@pytest.mark.parametrize("where", ["ciphertext", "wrapped_key"])
def test_flipped_byte_is_detected(key: MasterKey, where: str) -> None:
    sealed = key.seal(PLAIN, "ten_a", "blob_1")
    ct, wk = bytearray(sealed.ciphertext), bytearray(sealed.wrapped_key)
    target = ct if where == "ciphertext" else wk
    target[len(target) // 2] ^= 0x01
    with pytest.raises(DecryptionError):
        key.open(bytes(ct), bytes(wk), "ten_a", "blob_1")


@pytest.mark.parametrize(("tenant", "blob"), [("ten_b", "blob_1"), ("ten_a", "blob_2")])
def test_moved_blob_fails(key: MasterKey, tenant: str, blob: str) -> None:
    sealed = key.seal(PLAIN, "ten_a", "blob_1")
    with pytest.raises(DecryptionError):
        key.open(sealed.ciphertext, sealed.wrapped_key, tenant, blob)


def test_other_master_key_fails(key: MasterKey) -> None:
    sealed = key.seal(PLAIN, "ten_a", "blob_1")
    with pytest.raises(DecryptionError):
        MasterKey(os.urandom(32)).open(sealed.ciphertext, sealed.wrapped_key, "ten_a", "blob_1")


def test_without_the_wrapped_key_nothing_opens(key: MasterKey) -> None:
    sealed = key.seal(PLAIN, "ten_a", "blob_1")
    other = key.seal(b"x", "ten_a", "blob_1")  # a key for the same ids does not help
    with pytest.raises(DecryptionError):
        key.open(sealed.ciphertext, other.wrapped_key, "ten_a", "blob_1")


def test_secret_file_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "master.key"
    first = read_or_create_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_or_create_secret(path) == first
    assert MasterKey(first).key_id == MasterKey(first).key_id


def test_keyring_follows_a_rotation_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crypto, "RECHECK_S", 0.0)  # as if the recheck interval passed between steps
    path = tmp_path / "master.key"
    ring = Keyring.load_or_create(path)
    before = ring.seal(b"voice", "ten_a", "blob_1")
    old = MasterKey(path.read_bytes())
    retired = retiring_dir(path) / f"{old.key_id}.key"
    write_secret_file(retired, path.read_bytes())
    path.unlink()
    write_secret_file(path, os.urandom(32))  # what `master-key rotate` does, seen by a running server
    after = ring.seal(b"voice", "ten_a", "blob_2")
    assert after.master_key_id != before.master_key_id == old.key_id
    assert ring.open(before.ciphertext, before.wrapped_key, "ten_a", "blob_1") == b"voice"
    retired.unlink()  # retired: what it wrapped is gone for good
    with pytest.raises(DecryptionError):
        ring.open(before.ciphertext, before.wrapped_key, "ten_a", "blob_1")
    assert ring.open(after.ciphertext, after.wrapped_key, "ten_a", "blob_2") == b"voice"


def test_keyring_reads_the_files_again_at_most_every_recheck_interval(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    ring = Keyring.load_or_create(path)
    first = ring.seal(b"voice", "ten_a", "blob_1").master_key_id
    path.unlink()
    write_secret_file(path, os.urandom(32))
    assert ring.seal(b"voice", "ten_a", "blob_2").master_key_id == first  # within the interval
    sealed = MasterKey(path.read_bytes()).seal(b"voice", "ten_a", "blob_3")
    assert ring.open(sealed.ciphertext, sealed.wrapped_key, "ten_a", "blob_3") == b"voice"  # a miss reloads
    assert ring.seal(b"voice", "ten_a", "blob_4").master_key_id == sealed.master_key_id
