"""Free space under the data dir: what uploads may use and what /healthz reports."""

from __future__ import annotations

import shutil

from appliance.settings import Settings
from edge_server.errors import insufficient_storage


def free_bytes(settings: Settings) -> int:
    """Free bytes on the fuller of the disks holding the database and the blobs."""
    folders = [p for p in (settings.data_dir, settings.blob_dir) if p.exists()]
    return min((shutil.disk_usage(p).free for p in folders), default=0)


def is_low(settings: Settings) -> bool:
    """True when less than ``server.min_free_bytes`` is free."""
    return free_bytes(settings) < settings.server.min_free_bytes


def ensure_room(settings: Settings, needed: int) -> None:
    """507 before writing ``needed`` bytes would leave less than ``server.min_free_bytes`` free."""
    if free_bytes(settings) - needed < settings.server.min_free_bytes:
        raise insufficient_storage()
