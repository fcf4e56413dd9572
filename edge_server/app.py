"""The edge server's application factory: `create_app(settings) -> web.Application`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from appliance.crypto import Keyring, cluster_token
from appliance.settings import Settings
from edge_server import appkeys, metrics
from edge_server.access.brute_force import AuthGuard, GuardLimits
from edge_server.cluster import Cluster
from edge_server.console import admin_views, views
from edge_server.errors import error_middleware
from edge_server.metrics import metrics_middleware
from edge_server.routes import admin, keys, policy, speakers, stream, system, transcriptions
from edge_server.speakers.reconciler import reconciler_ctx
from edge_server.speakers.retention import retention_ctx
from edge_server.speakers.store import LastUse
from edge_server.storage.audit import AuditSeal, anchor_forward
from edge_server.storage.blobs import BlobStore
from edge_server.storage.db import open_database
from edge_server.streaming.asr_scheduler import AsrScheduler
from edge_server.streaming.relay import SpeechRelay
from edge_server.telemetry import Metrics
from models.registry import load_transcriber

log = logging.getLogger("scaiecho.edge")


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """SQLite (migrated) and the blob store; orphan ciphertext from a crash is swept first."""
    settings = app[appkeys.SETTINGS]
    db = open_database(settings.db_path)
    app[appkeys.DB] = db
    app[appkeys.LAST_USE] = LastUse(db)
    store = BlobStore(settings.blob_dir, Keyring.load_or_create(settings.master_key_path), db)
    removed = store.sweep_orphans()
    if removed:
        log.info("removed %d orphan blob files left by an interrupted enrollment", removed)
    app[appkeys.BLOBS] = store
    seal = AuditSeal.load_or_create(settings.data_dir)
    anchor_forward(db, seal)
    app[appkeys.AUDIT_SEAL] = seal
    yield
    db.conn.close()


async def cluster_ctx(app: web.Application) -> AsyncIterator[None]:
    """Redis, the HTTP client for the nodes, and the `Cluster` facade over both."""
    settings = app[appkeys.SETTINGS]
    if settings.redis.url is None:
        raise RuntimeError("the edge server needs settings.redis.url (scaiecho-appliance up sets it)")
    redis = Redis.from_url(settings.redis.url, decode_responses=True)
    http = aiohttp.ClientSession()
    app[appkeys.REDIS] = redis
    app[appkeys.RELAY] = SpeechRelay(settings.backend_b, http)
    app[appkeys.CLUSTER] = Cluster(
        redis, http, cluster_token(settings.cluster_secret_path), settings.nodes.request_timeout_s
    )
    yield
    await http.close()
    await redis.aclose()


async def asr_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load Backend A's Whisper model once, off the event loop; a failure leaves ASR down, not the box."""
    settings = app[appkeys.SETTINGS].models
    app[appkeys.ASR] = None
    if settings.load_asr:
        try:
            transcriber = await asyncio.to_thread(load_transcriber, settings)
        except Exception:
            log.exception("the ASR engine (%s) could not be loaded; ASR is down", settings.asr)
        else:
            scheduler = AsrScheduler(transcriber, settings.asr_workers)
            scheduler.start()
            app[appkeys.ASR] = scheduler
    yield
    if (running := app[appkeys.ASR]) is not None:
        await running.stop()


def create_app(settings: Settings) -> web.Application:
    """Build the edge server; resources open and close with the app's cleanup contexts."""
    # client_max_size guards bodies read whole; multipart uploads are counted as they stream.
    app = web.Application(
        middlewares=[metrics_middleware, error_middleware], client_max_size=settings.server.max_upload_bytes
    )
    app[appkeys.SETTINGS] = settings
    app[appkeys.FANNING_OUT] = set()
    app[appkeys.ERASING] = set()
    app[appkeys.KNOWN_BOOTS] = {}
    app[appkeys.REWARMING] = {}
    app[appkeys.NEXT_HEALTH_CHECK] = {}
    app[appkeys.WAL_PURGE_OWED] = set()
    app[appkeys.FILE_DECODES] = asyncio.Semaphore(settings.stream.max_file_decodes)
    server = settings.server
    app[appkeys.AUTH_GUARD] = AuthGuard(
        GuardLimits(server.auth_failures_per_address, server.auth_failures_per_key, server.auth_failure_window_s)
    )
    app[appkeys.CONSOLE_CREATED] = {}
    app[appkeys.METRICS] = Metrics()
    app.cleanup_ctx.extend([database_ctx, cluster_ctx, asr_ctx, reconciler_ctx, retention_ctx])
    app.add_routes(system.routes)
    app.add_routes(speakers.routes)
    app.add_routes(admin.routes)
    app.add_routes(stream.routes)
    app.add_routes(transcriptions.routes)
    app.add_routes(policy.routes)
    app.add_routes(keys.routes)
    app.add_routes(views.routes)
    app.add_routes(admin_views.routes)
    app.add_routes(metrics.routes)
    return app
