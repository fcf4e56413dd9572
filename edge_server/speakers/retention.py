"""Retention (BIPA §15(a)): a speaker neither enrolled nor named for ``retention_days`` is erased.

A speaker's last interaction (`speakers.last_active_at`) is its enrollment, then every time a
stream names it (`store.LastUse`, at most once an hour per speaker). A daily job erases the
expired speakers of every tenant through the same erasure path as a DELETE, with reason
``retention`` in the audit row; `due` is the dry run the console and the CLI list.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import sqlite_utils
from aiohttp import web

from appliance.contract.documents import ErasureReceipt
from appliance.periodic import running_every
from appliance.settings import ConsentSettings
from edge_server import appkeys
from edge_server.access.scopes import Principal
from edge_server.errors import ApiError
from edge_server.speakers.erasure import erase
from edge_server.storage import policies

log = logging.getLogger("scaiecho.retention")

#: Who the audit rows name as having asked for a retention erasure.
RETENTION_KEY_ID = "system:retention"


def cutoff(days: int, now: datetime | None = None) -> str:
    """The UTC timestamp before which a last interaction is expired (same text format as utc_now)."""
    moment = (now or datetime.now(UTC)) - timedelta(days=days)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def due(
    db: sqlite_utils.Database, tenant_id: str, defaults: ConsentSettings, now: datetime | None = None
) -> list[dict[str, object]]:
    """The tenant's live speakers whose retention ran out: id, display_name, last_active_at, oldest first."""
    days = policies.read(db, tenant_id, defaults).retention_days
    return list(
        db.query(
            "SELECT id, display_name, last_active_at FROM speakers WHERE tenant_id = ? AND deleted_at IS NULL "
            "AND COALESCE(last_active_at, created_at) < ? ORDER BY COALESCE(last_active_at, created_at)",
            [tenant_id, cutoff(days, now)],
        )
    )


async def run_once(app: web.Application, now: datetime | None = None) -> list[ErasureReceipt]:
    """Erase every expired speaker of every tenant (reason ``retention``)."""
    db = app[appkeys.DB]
    defaults = app[appkeys.SETTINGS].consent
    receipts = []
    for (tenant_id,) in db.execute("SELECT id FROM tenants").fetchall():
        system = Principal(key_id=RETENTION_KEY_ID, tenant_id=tenant_id, scopes=frozenset())
        for row in due(db, tenant_id, defaults, now):
            log.info("retention: erasing speaker %s (last active %s)", row["id"], row["last_active_at"])
            try:
                receipts.append(await erase(app, system, str(row["id"]), reason="retention"))
            except ApiError as exc:  # erased by a DELETE meanwhile (410): nothing left to do for it
                log.info("retention: speaker %s was not erased by the job: %s", row["id"], exc.code)
    return receipts


async def retention_ctx(app: web.Application) -> AsyncIterator[None]:
    """The retention job: at start (a box restarted daily must still run it), then every interval."""

    async def tick() -> None:
        await run_once(app)

    async with running_every(app[appkeys.SETTINGS].consent.retention_check_interval_s, tick, log):
        yield
