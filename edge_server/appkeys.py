"""Typed keys of everything the edge server's application holds (one module, no globals)."""

from __future__ import annotations

import asyncio

import sqlite_utils
from aiohttp import web
from redis.asyncio import Redis

from appliance.settings import Settings
from edge_server.access.brute_force import AuthGuard
from edge_server.access.tenancy import IssuedKey
from edge_server.cluster import Cluster
from edge_server.speakers.store import LastUse
from edge_server.storage.audit import AuditSeal
from edge_server.storage.blobs import BlobStore
from edge_server.streaming.asr_scheduler import AsrScheduler
from edge_server.streaming.relay import SpeechRelay
from edge_server.telemetry import Metrics

SETTINGS = web.AppKey("settings", Settings)
#: Backend A's shared speech-to-text engine and its job queue; None when it is off or failed to load.
ASR: web.AppKey[AsrScheduler | None] = web.AppKey("asr")
#: Backend B's client of the upstream speech-to-text service.
RELAY = web.AppKey("relay", SpeechRelay)
DB = web.AppKey("db", sqlite_utils.Database)
LAST_USE: web.AppKey[LastUse] = web.AppKey("last_use")
BLOBS = web.AppKey("blobs", BlobStore)
REDIS = web.AppKey("redis", Redis)
CLUSTER = web.AppKey("cluster", Cluster)
#: Speaker ids whose fan-out is under way, so the reconciler does not offer them twice.
FANNING_OUT = web.AppKey("fanning_out", set[str])
#: Speaker ids whose erasure is under way in this process.
ERASING = web.AppKey("erasing", set[str])
#: Last boot id seen per node, to tell a restarted (cold) node from a heartbeat.
KNOWN_BOOTS = web.AppKey("known_boots", dict[str, str])
#: Re-warm tasks of joining nodes, by node id.
REWARMING = web.AppKey("rewarming", dict[str, "asyncio.Task[None]"])
#: Whole-file decodes running at once, box-wide (`stream.max_file_decodes`).
FILE_DECODES = web.AppKey("file_decodes", asyncio.Semaphore)
#: Failed API key checks per address and key id (edge_server/access/brute_force.py).
AUTH_GUARD = web.AppKey("auth_guard", AuthGuard)
#: The erasure audit log's key and anchor (edge_server/storage/audit.py).
AUDIT_SEAL = web.AppKey("audit_seal", AuditSeal)
#: Non-empty while an erasure's WAL purge is owed (edge_server/speakers/erasure.py: purge_freed_pages).
WAL_PURGE_OWED = web.AppKey("wal_purge_owed", set[str])
#: node id -> monotonic time of its next holdings check (edge_server/speakers/warming.py: heal_nodes).
NEXT_HEALTH_CHECK = web.AppKey("next_health_check", dict[str, float])
#: A key the console just created, until the page after the redirect has shown it once
#: (by console session token digest). In memory only: the secret is never written anywhere.
CONSOLE_CREATED = web.AppKey("console_created", dict[str, IssuedKey])
#: Prometheus counters of this app (edge_server/metrics.py).
METRICS = web.AppKey("metrics", Metrics)
