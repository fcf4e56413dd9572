"""Typed keys of everything the edge server's application holds (one module, no globals)."""

from __future__ import annotations

import asyncio

import sqlite_utils
from aiohttp import web
from redis.asyncio import Redis

from appliance.settings import Settings
from edge_server.blobs import BlobStore
from edge_server.cluster import Cluster
from models.base import Transcriber

SETTINGS = web.AppKey("settings", Settings)
#: Backend A's shared speech-to-text engine; None when it is off or failed to load.
TRANSCRIBER: web.AppKey[Transcriber | None] = web.AppKey("transcriber")
DB = web.AppKey("db", sqlite_utils.Database)
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
