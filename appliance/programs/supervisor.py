"""`scaiecho-appliance up`: Redis, N pyannote nodes and the edge server, in the foreground.

SIGINT/SIGTERM stop everything: the edge server first (no new work), then the nodes (they
deregister), then Redis. Children also die with the supervisor if it is killed outright.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

from aiohttp import web
from redis.asyncio import Redis

from appliance import logs, node_registry, processes
from appliance.crypto import MasterKey, read_or_create_secret, read_or_create_token
from appliance.periodic import running_every
from appliance.redis_server import BundledRedis
from appliance.settings import Settings, load_settings
from appliance.tls import TlsFiles, ensure_ca, fingerprint, server_context
from edge_server.access.tenancy import bootstrap
from edge_server.app import create_app
from edge_server.storage.db import open_database

log = logging.getLogger("scaiecho.up")


class StartupError(Exception):
    """The appliance cannot start; the message says why and what to do."""


def prepare_data_dir(settings: Settings) -> bool:
    """Create the data dir, keys, the appliance CA and schema; bootstrap tenant ``default`` on first start."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    MasterKey.load_or_create(settings.master_key_path)
    read_or_create_secret(settings.cluster_secret_path)
    ensure_ca(TlsFiles(settings.tls_dir))
    read_or_create_token(settings.metrics_token_path)
    db = open_database(settings.db_path)
    try:
        return bootstrap(db, settings.bootstrap_key_path)
    finally:
        db.conn.close()


def node_command(settings: Settings, node_id: str, redis_url: str, config: Path | None) -> list[str]:
    """argv of one node process."""
    argv = [
        sys.executable, "-m", "appliance.node.service",
        "--node-id", node_id,
        "--redis-url", redis_url,
        "--cluster-secret-file", str(settings.cluster_secret_path),
        "--data-dir", str(settings.data_dir),
    ]  # fmt: skip
    if config is not None:
        argv += ["--config", str(config)]
    return argv


class NodeProcesses:
    """The node children: started together, respawned with backoff when one dies, stopped together."""

    def __init__(self, commands: dict[str, list[str]], env: dict[str, str]) -> None:
        self.commands = commands
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.failures: dict[str, int] = dict.fromkeys(commands, 0)
        self.not_before: dict[str, float] = dict.fromkeys(commands, 0.0)

    def start_all(self) -> None:
        """Spawn every node (from the main thread: see `BundledRedis.start`)."""
        for node_id, argv in self.commands.items():
            self.procs[node_id] = processes.spawn(argv, env=self.env)

    async def respawn_dead(self) -> None:
        """Start again every node that exited, waiting 1, 2, 4 … 30 s after repeated deaths."""
        now = time.monotonic()
        for node_id, proc in self.procs.items():
            code = proc.poll()
            if code is None or now < self.not_before[node_id]:
                continue
            self.failures[node_id] += 1
            delay = min(30.0, 2.0 ** (self.failures[node_id] - 1))
            log.warning("%s exited with %s; starting it again (it comes back cold)", node_id, code)
            self.procs[node_id] = processes.spawn(self.commands[node_id], env=self.env)
            self.not_before[node_id] = now + delay

    def stop_all(self) -> None:
        """SIGTERM every node, then SIGKILL what is left after the grace period."""
        processes.stop(list(self.procs.values()))


async def wait_for_nodes(redis_url: str, expected: int, timeout_s: float) -> int:
    """Poll the registry until ``expected`` nodes are candidates (or time runs out)."""
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            online = len(await node_registry.candidates(redis))
            if online >= expected or time.monotonic() > deadline:
                return online
            await asyncio.sleep(0.2)
    finally:
        await redis.aclose()


async def run(settings: Settings, config: Path | None) -> None:
    """Run the whole appliance until a stop signal."""
    if prepare_data_dir(settings):
        print(
            f"First start: tenant 'default' created; its API key is in {settings.bootstrap_key_path}",
            flush=True,
        )
    nodes: NodeProcesses | None = None
    redis_server: BundledRedis | None = None
    runner: web.AppRunner | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        redis_url = settings.redis.url
        if redis_url is None:
            redis_server = BundledRedis(settings.data_dir / "redis")
            # Spawned from the main thread on purpose: PR_SET_PDEATHSIG follows the thread that
            # forked the child, and a pool thread may exit long before the supervisor does.
            redis_server.start()
            redis_url = redis_server.url
            log.info("bundled Redis on %s", redis_url)
        settings = settings.model_copy(update={"redis": settings.redis.model_copy(update={"url": redis_url})})
        nodes = NodeProcesses(
            {
                f"node-{i}": node_command(settings, f"node-{i}", redis_url, config)
                for i in range(1, settings.nodes.count + 1)
            },
            processes.child_env(),
        )
        nodes.start_all()
        runner = web.AppRunner(create_app(settings), handle_signals=False, access_log=None)
        await runner.setup()
        ssl_context = None
        if settings.uses_tls:
            files = TlsFiles(settings.tls_dir)
            ssl_context = server_context(files, settings.server.host, settings.server.tls_names)
            print(
                f"HTTPS with the appliance CA (SHA-256 {fingerprint(ensure_ca(files))}); "
                "clients trust it with the output of `scaiecho-admin ca export`",
                flush=True,
            )
        site = web.TCPSite(runner, settings.server.host, settings.server.port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {settings.server.host}:{settings.server.port} ({exc.strerror}); "
                "is another appliance running? Use --port to pick another port."
            ) from exc
        url = f"{'https' if ssl_context else 'http'}://{settings.server.host}:{settings.server.port}"
        print(f"ScaiEcho edge server on {url} (data dir {settings.data_dir})", flush=True)
        waiter = asyncio.create_task(wait_for_nodes(redis_url, settings.nodes.count, 300.0))
        done, _ = await asyncio.wait({waiter, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done:
            print(f"ScaiEcho ready: {waiter.result()}/{settings.nodes.count} pyannote nodes online", flush=True)
        else:
            waiter.cancel()
        children = nodes

        async def supervise() -> None:
            if redis_server is not None and redis_server.restart_if_dead():
                log.warning("the bundled Redis exited; started it again on %s", redis_server.url)
            await children.respawn_dead()

        # Respawning runs on the loop's (main) thread, which PR_SET_PDEATHSIG needs.
        async with running_every(1.0, supervise, log, delay_first=True):
            await stop.wait()
        print("Stopping ScaiEcho...", flush=True)
    finally:
        if runner is not None:
            await runner.cleanup()
        if nodes is not None:
            await asyncio.to_thread(nodes.stop_all)
        if redis_server is not None and redis_server.process is not None:
            await asyncio.to_thread(processes.stop, [redis_server.process])
        print("ScaiEcho stopped.", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of `scaiecho-appliance`."""
    parser = argparse.ArgumentParser(prog="scaiecho-appliance", description="The ScaiEcho appliance.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run Redis, the pyannote nodes and the edge server in the foreground")
    up.add_argument("--data-dir", type=Path, default=None)
    up.add_argument("--config", type=Path, default=None, help="TOML settings (default <data-dir>/config.toml)")
    up.add_argument("--nodes", type=int, default=None, help="pyannote node processes (default 2)")
    up.add_argument("--host", default=None)
    up.add_argument("--port", type=int, default=None)
    up.add_argument("--redis-url", default=None, help="use this Redis instead of starting the bundled one")
    init = sub.add_parser("init", help="prepare a data dir (keys, CA, schema, first API key) and exit")
    init.add_argument("--data-dir", type=Path, default=None)
    init.add_argument("--config", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "init":
        settings = load_settings(args.data_dir, args.config)
        if prepare_data_dir(settings):
            print(f"First start: tenant 'default' created; its API key is in {settings.bootstrap_key_path}")
        else:
            print(f"{settings.data_dir} is ready")
        return
    overrides: dict[str, dict[str, object]] = {}
    if args.nodes is not None:
        overrides.setdefault("nodes", {})["count"] = args.nodes
    if args.host is not None:
        overrides.setdefault("server", {})["host"] = args.host
    if args.port is not None:
        overrides.setdefault("server", {})["port"] = args.port
    if args.redis_url is not None:
        overrides.setdefault("redis", {})["url"] = args.redis_url
    settings = load_settings(args.data_dir, args.config, overrides)
    logs.setup("appliance", settings.logging.format, settings.logging.level)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run(settings, args.config))
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
