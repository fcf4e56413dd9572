"""Console sign-ins stored in SQLite: random cookie token (only its digest kept), CSRF token,
idle and absolute timeouts. The session's rights are its API key's, re-read on every request."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

import sqlite_utils

from edge_server.access.scopes import Principal


@dataclass(frozen=True)
class ConsoleSession:
    """A live sign-in: who, and the token every form must echo."""

    principal: Principal
    csrf_token: str
    #: SHA-256 of the cookie value: names the session without holding its secret.
    token_digest: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(db: sqlite_utils.Database, principal: Principal, now: float) -> tuple[str, ConsoleSession]:
    """A new session for ``principal``; returns the cookie value (never stored) and the session."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    with db.atomic():
        db.table("console_sessions").insert(
            {
                "token_sha256": _digest(token),
                "key_id": principal.key_id,
                "tenant_id": principal.tenant_id,
                "csrf_token": csrf,
                "created_at": now,
                "last_seen_at": now,
            }
        )
    return token, ConsoleSession(principal, csrf, _digest(token))


def resume(
    db: sqlite_utils.Database, token: str, now: float, idle_timeout_s: float, max_session_s: float
) -> ConsoleSession | None:
    """The live session of a cookie value, touched; None when unknown, timed out or its key revoked."""
    digest = _digest(token)
    row = db.execute(
        "SELECT s.key_id, s.tenant_id, s.csrf_token, s.created_at, s.last_seen_at, k.scopes, k.revoked_at "
        "FROM console_sessions s JOIN api_keys k ON k.id = s.key_id WHERE s.token_sha256 = ?",
        [digest],
    ).fetchone()
    if row is None:
        return None
    key_id, tenant_id, csrf, created_at, last_seen_at, scopes, revoked_at = row
    if revoked_at is not None or now - last_seen_at > idle_timeout_s or now - created_at > max_session_s:
        end(db, token)
        return None
    with db.atomic():
        db.conn.execute("UPDATE console_sessions SET last_seen_at = ? WHERE token_sha256 = ?", [now, digest])
    return ConsoleSession(Principal(key_id, tenant_id, frozenset(json.loads(scopes))), csrf, digest)


def end(db: sqlite_utils.Database, token: str) -> None:
    """Sign out (idempotent)."""
    with db.atomic():
        db.conn.execute("DELETE FROM console_sessions WHERE token_sha256 = ?", [_digest(token)])


def sweep(db: sqlite_utils.Database, now: float, idle_timeout_s: float, max_session_s: float) -> int:
    """Forget every timed-out session; returns how many."""
    with db.atomic():
        cursor = db.conn.execute(
            "DELETE FROM console_sessions WHERE last_seen_at < ? OR created_at < ?",
            [now - idle_timeout_s, now - max_session_s],
        )
    return cursor.rowcount
