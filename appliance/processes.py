"""Child processes that cannot outlive the supervisor, and their orderly stop."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux: the kernel sends SIGTERM to the child when the supervisor dies, even by kill -9,
    # so no node or Redis is ever orphaned.
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a child bound to this process's lifetime."""
    return subprocess.Popen(list(args), env=env, preexec_fn=_die_with_parent, stdin=subprocess.DEVNULL)


def stop(processes: Sequence[subprocess.Popen[bytes]], timeout_s: float = 10.0) -> None:
    """SIGTERM all, wait up to ``timeout_s``, then SIGKILL whatever is left."""
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in processes:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def child_env(**extra: str) -> dict[str, str]:
    """The supervisor's environment plus offline/telemetry guards for model code."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("PYANNOTE_METRICS_ENABLED", "false")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env
