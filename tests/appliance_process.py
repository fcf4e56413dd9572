"""Run `scaiecho-appliance up` as a subprocess and follow what it prints (tests and benchmarks)."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from tests.support import free_port

START_TIMEOUT_S = 180.0


class Appliance:
    """A running `scaiecho-appliance up` and everything it printed."""

    def __init__(
        self,
        data_dir: Path,
        nodes: int,
        port: int | None = None,
        env: dict[str, str] | None = None,
        host: str | None = None,
    ) -> None:
        """``host`` beyond loopback (e.g. 0.0.0.0) makes it serve HTTPS; we still dial 127.0.0.1."""
        self.data_dir = data_dir
        self.port = port or free_port()
        self.tls = host not in (None, "127.0.0.1", "localhost")
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        command = Path(sys.executable).parent / "scaiecho-appliance"
        self.proc = subprocess.Popen(
            [
                str(command),
                "up",
                "--data-dir",
                str(data_dir),
                "--port",
                str(self.port),
                "--nodes",
                str(nodes),
                *(["--host", host] if host else []),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout_s: float = START_TIMEOUT_S) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"never printed {pattern!r}; output:\n" + "\n".join(self.lines[-40:]))

    @property
    def key(self) -> str:
        return (self.data_dir / "bootstrap-api-key").read_text().strip()

    @property
    def ca_file(self) -> Path:
        """The appliance CA certificate (PEM) the data dir holds."""
        return self.data_dir / "tls" / "ca.pem"

    def ssl_context(self) -> ssl.SSLContext | None:
        """Verifies the server against the appliance CA only; None for plain HTTP."""
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.tls else None

    @property
    def redis_url(self) -> str:
        return self.wait_for(r"bundled Redis on (redis://\S+)").group(1)

    def get_json(self, path: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
        """``method`` ``/v1/modules/scaiecho{path}`` (JSON ``body``) with the bootstrap key: (status, JSON body)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {**self.headers(), **({"Content-Type": "application/json"} if data else {})}
        request = urllib.request.Request(f"{self.url}/v1/modules/scaiecho{path}", data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.ssl_context()) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def descendants_gone(self) -> bool:
        """True when no process started from this appliance (nodes, Redis) is still running."""
        return not any(
            str(self.data_dir) in " ".join(p.info["cmdline"] or [])
            for p in psutil.process_iter(["pid", "cmdline"])
            if p.info["pid"] != self.proc.pid
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
