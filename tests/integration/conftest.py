"""Real parts for integration tests: the bundled redis-server, node processes, SQLite files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp.test_utils import TestClient

from appliance import processes, redis_keys
from appliance.redis_server import BundledRedis
from appliance.settings import Settings, load_settings
from edge_server.access.tenancy import bootstrap, create_key, create_tenant
from edge_server.app import create_app
from edge_server.storage.db import open_database
from tests.support import wait_until
from tests.upstream_stub import KEY

NODE_START_TIMEOUT_S = 120.0


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BundledRedis]:
    server = BundledRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    assert server.process is not None
    processes.stop([server.process])


@pytest.fixture(scope="session")
def cluster_secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from appliance.crypto import read_or_create_secret

    path = tmp_path_factory.mktemp("secret") / "cluster-secret"
    read_or_create_secret(path)
    return path


class NodeProcess:
    """One real `scaiecho-node` process."""

    def __init__(self, node_id: str, redis_url: str, secret: Path) -> None:
        self.node_id = node_id
        self.redis_url = redis_url
        self.secret = secret
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> NodeProcess:
        argv = [
            sys.executable, "-m", "appliance.node.service",
            "--node-id", self.node_id,
            "--redis-url", self.redis_url,
            "--cluster-secret-file", str(self.secret),
        ]  # fmt: skip
        self.proc = processes.spawn(argv, env=processes.child_env())
        if wait:
            assert wait_until(self.registered, NODE_START_TIMEOUT_S, 0.2), f"{self.node_id} did not register"
        return self

    def registered(self) -> bool:
        client = redis.Redis.from_url(self.redis_url)
        try:
            return bool(client.exists(redis_keys.node(self.node_id)))
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop([self.proc])


@pytest.fixture(scope="session")
def nodes(redis_server: BundledRedis, cluster_secret: Path) -> Iterator[list[NodeProcess]]:
    """node-1 and node-2 on Redis db 0, started in parallel, shared by the whole session."""
    started = [NodeProcess(f"node-{i}", redis_server.url, cluster_secret).start(wait=False) for i in (1, 2)]
    for node in started:
        assert wait_until(node.registered, NODE_START_TIMEOUT_S, 0.2), f"{node.node_id} did not register"
    yield started
    for node in started:
        node.stop()


def make_settings(data_dir: Path, redis_url: str, secret: Path, **overrides: object) -> Settings:
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(secret, data_dir / "cluster-secret")
    values: dict[str, object] = {
        "redis": {"url": redis_url},
        "enrollment": {"reconcile_interval_s": 0.2},
        "models": {"load_asr": False},  # tests/integration/test_asr.py covers the engine
        # without Whisper the text check cannot run; test_consent_checks.py runs both checks
        "consent": {"checks": "off"},
    }
    values.update(overrides)
    return load_settings(data_dir, overrides=values)


@pytest.fixture
def settings(tmp_path: Path, redis_server: BundledRedis, cluster_secret: Path, nodes: list[NodeProcess]) -> Settings:
    return make_settings(tmp_path / "data", redis_server.url, cluster_secret)


class Api:
    """A test client plus the keys of two tenants."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        db = open_database(settings.db_path)
        bootstrap(db, settings.bootstrap_key_path)
        self.key = settings.bootstrap_key_path.read_text().strip()
        other = create_tenant(db, "other")
        self.other_key = create_key(db, other, ["scaiecho:enroll"], "other").token
        db.conn.close()

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


ApiFactory = Callable[[Settings], Awaitable[Api]]


@pytest.fixture
async def api_factory(aiohttp_client: Callable[..., Awaitable[TestClient]]) -> ApiFactory:
    async def make(settings: Settings) -> Api:
        return Api(await aiohttp_client(create_app(settings)), settings)

    return make


@pytest.fixture
async def api(api_factory: ApiFactory, settings: Settings) -> Api:
    return await api_factory(settings)


def stream_settings(tmp_path: Path, redis: BundledRedis, secret: Path, upstream: str, **extra: Any) -> Settings:
    stream = {"idle_timeout_s": 5.0, "key_check_interval_s": 0.2, **extra.pop("stream", {})}
    return make_settings(
        tmp_path / "data",
        redis.url,
        secret,
        models={"load_asr": extra.pop("load_asr", True)},
        backend_b={"url": upstream, "api_key": KEY, "model": extra.pop("upstream_model", "ok"), "timeout_s": 1.5},
        stream=stream,
        **extra,
    )


RelayFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
def relay_api_factory(
    tmp_path: Path,
    redis_server: BundledRedis,
    cluster_secret: Path,
    nodes: list[NodeProcess],
    upstream: str,
    api_factory: ApiFactory,
) -> RelayFactory:
    """Makes the edge app without Whisper (streams go to Backend B, the real upstream process),
    with settings sections overridden by keyword."""

    async def make(**extra: Any) -> Api:
        return await api_factory(
            stream_settings(tmp_path, redis_server, cluster_secret, upstream, load_asr=False, **extra)
        )

    return make


@pytest.fixture
async def relay_api(relay_api_factory: RelayFactory) -> Api:
    """The edge app without Whisper: streams go to Backend B, the real upstream process."""
    return await relay_api_factory()
