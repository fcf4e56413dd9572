"""Typed keys of everything the edge server's application holds (one module, no globals)."""

from __future__ import annotations

import aiohttp
import sqlite_utils
from aiohttp import web
from redis.asyncio import Redis

from appliance.settings import Settings
from edge_server.blobs import BlobStore
from edge_server.cluster import Cluster

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", sqlite_utils.Database)
BLOBS = web.AppKey("blobs", BlobStore)
REDIS = web.AppKey("redis", Redis)
HTTP = web.AppKey("http", aiohttp.ClientSession)
CLUSTER = web.AppKey("cluster", Cluster)
#: Speaker ids whose fan-out is under way, so the reconciler does not offer them twice.
FANNING_OUT = web.AppKey("fanning_out", set[str])
