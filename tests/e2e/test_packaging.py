"""packaging/: the installer run into a temporary root (units, account, data dir), the rendered
units checked by `systemd-analyze verify`, and the desktop bundle built and started."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]
ENV = Path(sys.prefix)
SERVICES = ("scaiecho-redis.service", "scaiecho-node@.service", "scaiecho-edge.service")
SANDBOX = ("User=scaiecho", "ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes", "Restart=always")


def install(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "packaging/install-appliance.sh"), "--root", str(root), "--python-env", str(ENV), *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_installer_lays_out_units_account_and_data_dir(tmp_path: Path) -> None:
    root = tmp_path / "root"
    done = install(root, "--nodes", "3", "--no-start")
    assert done.returncode == 0, done.stderr
    units = root / "etc/systemd/system"
    for name in (*SERVICES, "scaiecho.target"):
        text = (units / name).read_text()
        assert "@" not in text.replace("node@", "").replace("%i", ""), f"unrendered placeholder in {name}"
    for name in SERVICES:
        text = (units / name).read_text()
        assert all(line in text.splitlines() for line in SANDBOX), name
        exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
        assert Path(exec_start.removeprefix("ExecStart=").split()[0]).exists(), exec_start
    wants = sorted(p.name for p in (units / "scaiecho.target.wants").iterdir())
    assert wants == [
        "scaiecho-edge.service",
        "scaiecho-node@1.service",
        "scaiecho-node@2.service",
        "scaiecho-node@3.service",
        "scaiecho-redis.service",
    ]
    assert (units / "multi-user.target.wants/scaiecho.target").is_symlink()

    account = next(line for line in (root / "etc/passwd").read_text().splitlines() if line.startswith("scaiecho:"))
    uid = int(account.split(":")[2])
    assert account.endswith(":/var/lib/scaiecho:/usr/sbin/nologin")
    data = root / "var/lib/scaiecho"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700 and data.stat().st_uid == uid
    for secret in ("master.key", "cluster-secret", "metrics-token", "bootstrap-api-key", "tls/ca.key"):
        path = data / secret
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_uid == uid, secret
    ca = subprocess.run(
        [str(ENV / "bin/scaiecho-admin"), "--data-dir", str(data), "ca", "export"], capture_output=True, text=True
    )
    assert ca.returncode == 0 and ca.stdout.startswith("-----BEGIN CERTIFICATE-----")

    again = install(root, "--nodes", "3", "--no-start")  # idempotent: same account, same keys
    assert again.returncode == 0, again.stderr
    assert "is ready" in again.stdout and (data / "master.key").stat().st_uid == uid
    assert install(root, "--nodes", "x").returncode == 2
    assert install(tmp_path / "other", "--bogus").returncode == 2


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_rendered_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert install(root, "--no-start").returncode == 0
    units = root / "etc/systemd/system"
    verified = subprocess.run(
        ["systemd-analyze", "verify", "scaiecho-redis.service", "scaiecho-edge.service", "scaiecho-node@1.service",
         "scaiecho.target"],
        cwd=units,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert verified.returncode == 0 and verified.stderr.strip() == "", verified.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=40", "scaiecho-edge.service"],
        cwd=units,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert security.returncode == 0, security.stdout[-2000:] + security.stderr


def test_desktop_bundle_builds_without_torch_and_starts(tmp_path: Path) -> None:
    built = subprocess.run(
        ["bash", str(REPO / "packaging/build-desktop.sh"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    binary = tmp_path / "scaiecho-desktop/scaiecho-desktop"
    assert not list((tmp_path / "scaiecho-desktop").rglob("libtorch*"))
    usage = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 0 and "--ca-file" in usage.stdout
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}
    check = subprocess.run([str(binary), "--check"], capture_output=True, text=True, timeout=120, env=env)
    assert check.returncode == 0 and "VAD model loaded" in check.stdout, check.stdout + check.stderr


def unit_command(unit: Path, state: Path, cache: Path, instance: str = "") -> tuple[list[str], dict[str, str]]:
    """A unit's ExecStart and Environment with the specifiers systemd would fill in."""
    lines = unit.read_text().splitlines()

    def fill(text: str) -> str:
        return text.replace("%S", str(state)).replace("%C", str(cache)).replace("%i", instance)

    argv = shlex.split(fill(next(line for line in lines if line.startswith("ExecStart=")).removeprefix("ExecStart=")))
    env: dict[str, str] = {}
    for line in lines:
        if line.startswith("Environment="):
            for pair in fill(line.removeprefix("Environment=")).split():
                name, value = pair.split("=", 1)
                env[name] = value
    return argv, env


def test_the_installed_units_run_together_and_serve_the_console_over_https(tmp_path: Path) -> None:
    """Without systemd here, run each unit's own command line (as systemd would, specifiers filled)."""
    root = tmp_path / "root"
    port, redis_port = free_port(), free_port()
    done = install(root, "--no-start", "--port", str(port), "--redis-port", str(redis_port))
    assert done.returncode == 0, done.stderr
    units, state, cache = root / "etc/systemd/system", root / "var/lib", tmp_path / "cache"
    procs: list[subprocess.Popen[str]] = []
    output: list[str] = []
    try:
        for name, instance in (("scaiecho-redis.service", ""), ("scaiecho-node@.service", "1"),
                               ("scaiecho-edge.service", "")):  # fmt: skip
            argv, env = unit_command(units / name, state, cache, instance)
            proc = subprocess.Popen(
                argv, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            procs.append(proc)
            threading.Thread(target=lambda p=proc: output.extend(p.stdout or []), daemon=True).start()
        data = state / "scaiecho"
        context = ssl.create_default_context(cafile=str(data / "tls/ca.pem"))
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        health: dict[str, object] = {}
        while time.monotonic() < deadline and health.get("nodes_online") != 1:
            try:
                with urllib.request.urlopen(f"{url}/healthz", context=context, timeout=5) as resp:
                    health = json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                health = json.loads(exc.read())
            except OSError:
                pass
            time.sleep(0.5)
        assert health.get("nodes_online") == 1 and health["redis"] == "ok", "".join(output[-40:])

        # the console over HTTPS: sign in with the installer's bootstrap key, make a key
        jar = urllib.request.HTTPCookieProcessor()
        opener = urllib.request.build_opener(jar, urllib.request.HTTPSHandler(context=context))
        page = opener.open(f"{url}/admin/login", timeout=10).read().decode()
        token = re.search(r'name="signin_token" value="([^"]+)"', page)
        assert token
        key = (data / "bootstrap-api-key").read_text().strip()
        signin = urllib.parse.urlencode({"signin_token": token.group(1), "api_key": key}).encode()
        page = opener.open(f"{url}/admin/login", data=signin, timeout=10).read().decode()
        assert "node-1" in page and all(c.secure for c in jar.cookiejar)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf
        form = urllib.parse.urlencode({"csrf_token": csrf.group(1), "name": "from the box", "scope": "scaiecho:enroll"})
        page = opener.open(f"{url}/admin/keys", data=form.encode(), timeout=10).read().decode()
        assert 'id="new-key">sce_' in page
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
