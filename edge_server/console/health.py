"""System health for the console: one row per component, state ok / warn / down and a detail."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib import metadata

from aiohttp import web
from cryptography import x509

from appliance.settings import Settings
from appliance.tls import TlsFiles, fingerprint
from edge_server import appkeys

#: Less free disk than this share of the data dir's file system is a warning.
LOW_DISK_SHARE = 0.10
PACKAGES = ("pyannote.audio", "torch", "faster-whisper", "ctranslate2", "aiohttp")


@dataclass(frozen=True)
class Check:
    """One line of the health page."""

    component: str
    state: str
    detail: str


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _tls(settings: Settings) -> Check:
    ca_path = TlsFiles(settings.tls_dir).ca_cert
    if ca_path.exists():
        ca = f"appliance CA SHA-256 {fingerprint(x509.load_pem_x509_certificate(ca_path.read_bytes()))}"
    else:  # a page view never makes key material: `up` and `init` do
        ca = "no appliance CA yet (scaiecho-appliance init makes it)"
    if settings.uses_tls:
        return Check("TLS", "ok", f"HTTPS; {ca}")
    if settings.loopback_only:
        return Check("TLS", "ok", f"plain HTTP on loopback (development); {ca}")
    return Check("TLS", "warn", f"plain HTTP beyond loopback (server.tls = off); {ca}")


async def gather(app: web.Application, tenant_id: str) -> list[Check]:
    """Every component's state; the blob figures are the tenant's own."""
    settings = app[appkeys.SETTINGS]
    checks: list[Check] = []
    try:
        info = await app[appkeys.REDIS].info()
        checks.append(Check("Redis", "ok", f"{info.get('redis_version', '?')}, {info.get('used_memory_human', '?')}"))
        online = await app[appkeys.CLUSTER].candidates()
        checks.append(Check("Nodes", "ok" if online else "down", f"{len(online)} online"))
    except Exception as exc:
        checks.append(Check("Redis", "down", type(exc).__name__))
        checks.append(Check("Nodes", "down", "unknown while Redis is down"))

    usage = shutil.disk_usage(settings.data_dir)
    free_share = usage.free / usage.total if usage.total else 0.0
    checks.append(
        Check(
            "Disk",
            "ok" if free_share >= LOW_DISK_SHARE else "warn",
            f"{usage.free / 1e9:.1f} GB free of {usage.total / 1e9:.1f} GB ({free_share:.0%}) under the data dir",
        )
    )

    blob_dir = settings.blob_dir
    writable = blob_dir.is_dir() and os.access(blob_dir, os.W_OK)
    count, size = app[appkeys.BLOBS].usage(tenant_id)
    checks.append(
        Check(
            "Blob store",
            "ok" if writable else "down",
            f"{'writable' if writable else 'not writable'}; this tenant: {count} encrypted recordings, "
            f"{size / 1e6:.1f} MB",
        )
    )

    scheduler = app[appkeys.ASR]
    if scheduler is None:
        checks.append(Check("ASR (Backend A)", "down", f"{settings.models.asr} is not loaded"))
    else:
        checks.append(Check("ASR (Backend A)", "ok", f"{settings.models.asr}, load {scheduler.load:.0%}"))
    relay = app[appkeys.RELAY]
    checks.append(
        Check(
            "Backend B relay", "ok" if relay.configured else "warn", "configured" if relay.configured else "no upstream"
        )
    )
    checks.append(_tls(settings))
    checks.append(Check("Embedding model", "ok", settings.models.embedding))
    checks.append(Check("Packages", "ok", ", ".join(f"{p} {_version(p)}" for p in PACKAGES)))
    return checks
