"""Tenant transcription policy (`auto` | `A` | `B`) and the backend a new session gets from it."""

from __future__ import annotations

from typing import Literal, get_args

import sqlite_utils

from appliance.clock import utc_now
from appliance.contract.errors import CodedError

Backend = Literal["auto", "A", "B"]
BACKENDS: tuple[str, ...] = get_args(Backend)
DEFAULT: Backend = "auto"


class NoBackend(CodedError):
    """No backend the policy allows can serve: ``code`` and ``message`` go to the client."""


def get_policy(db: sqlite_utils.Database, tenant_id: str) -> dict[str, str | None]:
    """``{"backend": ..., "updated_at": ...}`` (the default when never set)."""
    row = db.execute("SELECT backend, updated_at FROM tenant_policies WHERE tenant_id = ?", [tenant_id]).fetchone()
    if row is None:
        return {"backend": DEFAULT, "updated_at": None}
    return {"backend": row[0], "updated_at": row[1]}


def set_policy(db: sqlite_utils.Database, tenant_id: str, backend: str, key_id: str) -> dict[str, str | None]:
    """Store the tenant's backend choice (validated by the caller)."""
    db.execute(
        "INSERT INTO tenant_policies (tenant_id, backend, updated_at, updated_by_key_id) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(tenant_id) DO UPDATE SET backend = excluded.backend, updated_at = excluded.updated_at, "
        "updated_by_key_id = excluded.updated_by_key_id",
        [tenant_id, backend, utc_now(), key_id],
    )
    return get_policy(db, tenant_id)


def choose_backend(policy: str, asr_loaded: bool, relay_configured: bool) -> Literal["A", "B"]:
    """The backend a new session uses; `NoBackend` when the policy's choice cannot serve."""
    if policy == "A" or (policy == "auto" and asr_loaded):
        if not asr_loaded:
            raise NoBackend("asr_unavailable", "Backend A (on-box Whisper) is not loaded; ask the operator")
        return "A"
    if not relay_configured:
        if policy == "B":
            raise NoBackend("upstream_unconfigured", "Backend B has no upstream configured; ask the operator")
        raise NoBackend("asr_unavailable", "Backend A is not loaded and no Backend B upstream is configured")
    return "B"


def unavailable_choice(backend: str, relay_configured: bool) -> str | None:
    """Why ``backend`` cannot be chosen on this box (None when it can): B needs a configured upstream."""
    if backend == "B" and not relay_configured:
        return (
            "Backend B has no upstream configured on this appliance, so every stream would fail; "
            "the operator sets [backend_b] url in config.toml first"
        )
    return None
