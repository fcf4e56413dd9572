"""Tenant policies: the one owner of ``tenant_policies`` and of its append-only ``policy_changes`` log.

A field a tenant never set reads as the box's default (`ConsentSettings` for consent checks and
retention, ``auto`` for the backend), so changing config.toml moves every tenant that kept it.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlite_utils

from appliance.clock import utc_now
from appliance.contract.documents import Policy, PolicyChange
from appliance.settings import ConsentSettings
from edge_server.storage.db import newest_first

DEFAULT_BACKEND = "auto"
FIELDS = ("backend", "consent_checks", "retention_days")


def read(db: sqlite_utils.Database, tenant_id: str, defaults: ConsentSettings) -> Policy:
    """The tenant's policy, defaults filled in."""
    sql = f"SELECT {', '.join(FIELDS)}, updated_at FROM tenant_policies WHERE tenant_id = ?"
    rows = list(db.query(sql, [tenant_id]))
    row = rows[0] if rows else {}
    return Policy(
        backend=row.get("backend") or DEFAULT_BACKEND,
        consent_checks=row.get("consent_checks") or defaults.checks,
        retention_days=row.get("retention_days") or defaults.retention_days,
        updated_at=row.get("updated_at"),
    )


def update(
    db: sqlite_utils.Database, tenant_id: str, changes: Mapping[str, object], key_id: str, defaults: ConsentSettings
) -> Policy:
    """Set the given fields (validated by the caller) and log each one that changed, in one transaction."""
    before = read(db, tenant_id, defaults)
    now = utc_now()
    changed = {f: v for f, v in changes.items() if f in FIELDS and v is not None and getattr(before, f) != v}
    if not changed:
        return before
    with db.atomic():
        db.execute(
            "INSERT INTO tenant_policies (tenant_id, backend, updated_at, updated_by_key_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(tenant_id) DO NOTHING",
            [tenant_id, before.backend, now, key_id],
        )
        for field, value in changed.items():
            db.execute(
                f"UPDATE tenant_policies SET {field} = ?, updated_at = ?, updated_by_key_id = ? WHERE tenant_id = ?",
                [value, now, key_id, tenant_id],
            )
            db.table("policy_changes").insert(
                {"tenant_id": tenant_id, "field": field, "old_value": str(getattr(before, field)),
                 "new_value": str(value), "changed_by_key_id": key_id, "changed_at": now}
            )  # fmt: skip
    return read(db, tenant_id, defaults)


def change_page(
    db: sqlite_utils.Database, tenant_id: str, limit: int, before: int | None = None
) -> tuple[list[PolicyChange], int | None]:
    """A tenant's policy changes newest first, and the sequence number the next page starts before."""
    sql = (
        "SELECT seq, field, old_value, new_value, changed_by_key_id, changed_at FROM policy_changes WHERE tenant_id = ?"
    )
    rows, following = newest_first(db, sql, [tenant_id], "seq", limit, before)
    return [PolicyChange.model_validate(row) for row in rows], following
