"""Tenants and their API keys in SQLite. Keys are stored as SHA-256 of their secret part."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from appliance.clock import utc_now
from appliance.contract.documents import ApiKey
from appliance.crypto import write_secret_file
from edge_server.access.scopes import ALL_SCOPES, Principal

KEY_PREFIX = "sce"
DEFAULT_TENANT = "default"


def new_id(prefix: str) -> str:
    """A random identifier such as ``spk_3f2a…`` (64 random bits)."""
    return f"{prefix}_{secrets.token_hex(8)}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    """A freshly created key; ``token`` is shown once and never stored."""

    id: str
    tenant_id: str
    name: str
    scopes: list[str]
    token: str


def create_tenant(db: sqlite_utils.Database, name: str) -> str:
    """Create a tenant and return its id; ValueError when the name is taken."""
    if db.execute("SELECT 1 FROM tenants WHERE name = ?", [name]).fetchone():
        raise ValueError(f"tenant {name!r} exists already")
    tenant_id = new_id("ten")
    with db.atomic():
        db.table("tenants").insert({"id": tenant_id, "name": name, "created_at": utc_now()})
    return tenant_id


def find_tenant(db: sqlite_utils.Database, id_or_name: str) -> str | None:
    """Tenant id for an id or a name."""
    row = db.execute("SELECT id FROM tenants WHERE id = ? OR name = ?", [id_or_name, id_or_name]).fetchone()
    return row[0] if row else None


def create_key(
    db: sqlite_utils.Database, tenant_id: str, scopes: list[str], name: str, created_by: str | None = None
) -> IssuedKey:
    """Issue an API key ``sce_<id>_<secret>``; only its digest is stored."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    with db.atomic():
        db.table("api_keys").insert(
            {
                "id": key_id,
                "tenant_id": tenant_id,
                "name": name,
                "secret_sha256": _digest(secret),
                "scopes": json.dumps(sorted(set(scopes))),
                "created_at": utc_now(),
                "created_by_key_id": created_by,
                "revoked_at": None,
            }
        )
    return IssuedKey(key_id, tenant_id, name, sorted(set(scopes)), f"{KEY_PREFIX}_{key_id}_{secret}")


def revoke_key(db: sqlite_utils.Database, key_id: str, tenant_id: str | None = None) -> bool:
    """Revoke a key (optionally only within a tenant); False when there is no such live key."""
    sql = "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
    params: list[str] = [utc_now(), key_id]
    if tenant_id is not None:
        sql += " AND tenant_id = ?"
        params.append(tenant_id)
    with db.atomic():
        cursor = db.conn.execute(sql, params)
    return cursor.rowcount == 1


def authenticate(db: sqlite_utils.Database, token: str) -> Principal | None:
    """The principal of a live key, or None for anything malformed, unknown or revoked."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    row = db.execute(
        "SELECT tenant_id, secret_sha256, scopes FROM api_keys WHERE id = ? AND revoked_at IS NULL",
        [parts[1]],
    ).fetchone()
    if row is None or not hmac.compare_digest(row[1], _digest(parts[2])):
        return None
    return Principal(key_id=parts[1], tenant_id=row[0], scopes=frozenset(json.loads(row[2])))


def bootstrap(db: sqlite_utils.Database, key_file: Path) -> bool:
    """On an empty database: tenant ``default`` and an all-scopes key written to ``key_file``.

    Returns True when it bootstrapped. The key file is created 0600 and never overwritten.
    """
    if db.execute("SELECT 1 FROM tenants LIMIT 1").fetchone():
        return False
    tenant_id = create_tenant(db, DEFAULT_TENANT)
    issued = create_key(db, tenant_id, list(ALL_SCOPES), name="bootstrap")
    key_file.unlink(missing_ok=True)  # a leftover from a wiped database is stale
    write_secret_file(key_file, (issued.token + "\n").encode())
    return True


def key_rows(db: sqlite_utils.Database, tenant_id: str, key_id: str | None = None) -> list[ApiKey]:
    """The tenant's keys (or one of them), newest first."""
    sql = "SELECT id, name, scopes, created_at, revoked_at FROM api_keys WHERE tenant_id = ?"
    params = [tenant_id]
    if key_id is not None:
        sql += " AND id = ?"
        params.append(key_id)
    rows = db.query(sql + " ORDER BY created_at DESC, id", params)
    return [ApiKey.model_validate({**row, "scopes": json.loads(row["scopes"])}) for row in rows]
