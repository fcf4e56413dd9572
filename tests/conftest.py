"""Fixtures shared by integration and e2e tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.support import free_port


@pytest.fixture(scope="session")
def upstream() -> Iterator[str]:
    """The stand-in OpenAI-compatible speech-to-text service (tests/upstream_stub.py), its own process."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.upstream_stub", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
