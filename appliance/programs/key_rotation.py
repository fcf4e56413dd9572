"""Master-key rotation while the appliance runs.

1. The current key is copied to ``master-keys/<id>.key`` and a new one atomically replaces
   ``master.key``; a running edge server's `Keyring` sees both within `RECHECK_S` (0.5 s).
2. Every live data key (recordings and cached embeddings) wrapped by an old key is unwrapped and
   wrapped again by the new one, each row by compare-and-set, so an erasure that destroys a key
   meanwhile is never undone. Passes repeat until no live row names an old key (a server that
   sealed with the old key just before it noticed the new one is caught by the next pass).
3. Old keys no row needs any more are deleted. Backups taken before the rotation need the old key
   to be restored: without it, what they hold is unreadable, including speakers erased since.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from appliance.crypto import KEY_BYTES, MasterKey, retiring_dir, write_secret_file

#: A seal that began under the old key lands in the database within well under a second (the
#: edge server seals and commits in one request); old keys go only after this long without any.
QUIET_S = 3.0
PASS_WAIT_S = 0.5


@dataclass(frozen=True)
class Rotation:
    """What a rotation did."""

    old_key_ids: list[str]
    new_key_id: str
    rewrapped: int
    retired: list[str]


def _replace_current(path: Path, key: bytes) -> None:
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    write_secret_file(tmp, key)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _known_keys(master_key_path: Path) -> dict[str, MasterKey]:
    keys = [MasterKey(p.read_bytes()) for p in retiring_dir(master_key_path).glob("*.key")]
    keys.append(MasterKey(master_key_path.read_bytes()))
    return {k.key_id: k for k in keys}


def _rewrap_pass(db: sqlite_utils.Database, keys: dict[str, MasterKey], new: MasterKey) -> tuple[int, int]:
    """(re-wrapped, still naming an unknown key) in one pass over both tables."""
    done = unknown = 0
    queries = (
        ("blobs", "SELECT id, tenant_id, wrapped_key, master_key_id, id FROM blobs", "id = ?"),
        (
            "speaker_embeddings",
            "SELECT speaker_id, tenant_id, wrapped_key, master_key_id, 'embedding/' || speaker_id || '/' || model, "
            "model FROM speaker_embeddings",
            "speaker_id = ? AND model = ?",
        ),
    )
    for table, select, where in queries:
        rows = db.execute(f"{select} WHERE wrapped_key IS NOT NULL AND master_key_id != ?", [new.key_id]).fetchall()
        for row in rows:
            item_id, tenant_id, wrapped, key_id, name = row[:5]
            old = keys.get(key_id)
            if old is None:
                unknown += 1
                continue
            rewrapped = new.wrap(old.unwrap(wrapped, tenant_id, name), tenant_id, name)
            where_params = [item_id] if table == "blobs" else [item_id, row[5]]
            with db.atomic():
                db.execute(
                    f"UPDATE {table} SET wrapped_key = ?, master_key_id = ? WHERE {where} AND wrapped_key = ?",
                    [rewrapped, new.key_id, *where_params, wrapped],
                )
            done += 1
    return done, unknown


#: Ids of the master keys that live data keys (recordings and cached embeddings) are wrapped by.
LIVE_KEY_IDS_SQL = (
    "SELECT master_key_id FROM blobs WHERE wrapped_key IS NOT NULL "
    "UNION SELECT master_key_id FROM speaker_embeddings WHERE wrapped_key IS NOT NULL"
)


def rotate(db: sqlite_utils.Database, master_key_path: Path, keep_old: bool = False) -> Rotation:
    """Rotate the master key of a data dir whose database is ``db``; safe while the appliance runs."""
    old = MasterKey(master_key_path.read_bytes())
    retired_path = retiring_dir(master_key_path) / f"{old.key_id}.key"
    if not retired_path.exists():
        write_secret_file(retired_path, master_key_path.read_bytes())
    raw = secrets.token_bytes(KEY_BYTES)
    new = MasterKey(raw)
    _replace_current(master_key_path, raw)
    keys = _known_keys(master_key_path)
    total = 0
    quiet_since = time.monotonic()
    while True:
        done, unknown = _rewrap_pass(db, keys, new)
        if unknown:
            raise RuntimeError(f"{unknown} data keys are wrapped by a master key this data dir does not have")
        total += done
        if done:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_S:
            break
        time.sleep(PASS_WAIT_S)
    retired: list[str] = []
    if not keep_old:
        needed = {r[0] for r in db.execute(LIVE_KEY_IDS_SQL).fetchall()}
        for key_id in sorted(set(keys) - needed - {new.key_id}):
            (retiring_dir(master_key_path) / f"{key_id}.key").unlink(missing_ok=True)
            retired.append(key_id)
    return Rotation(sorted(set(keys) - {new.key_id}), new.key_id, total, retired)
