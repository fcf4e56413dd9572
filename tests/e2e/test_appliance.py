"""A new user's path: `scaiecho-appliance up`, the printed key, curl, every format, Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil
import pytest

from appliance.contract import BASE
from models.audio import encode
from tests.appliance_process import Appliance
from tests.support import CONSENT_SAID, FORMATS, enroll_fields, enrollment_audio, sample_speakers, upsample

CURL_REQUEST = """curl -s -X POST "$SCAIGRID_HOST/v1/modules/scaiecho/speakers" \\
  -H "Authorization: Bearer $SCAIGRID_API_KEY" \\
  -F "display_name=Alice Example" -F "language_primary=en" \\
  -F "description=Customer success lead" \\
  -F "consent_user_full_name=Alice Example" \\
  -F "consent_stated_purpose=Meeting transcription diarization for the support team" \\
  -F "consent_text=I, Alice Example, consent to ScaiEcho enrolling my voice for diarization." \\
  -F "reference=@alice-reference.wav" -F "consent=@alice-consent.wav"
"""


def test_first_start_prints_the_private_key_file(appliance: Appliance) -> None:
    path = appliance.wait_for(r"its API key is in (\S+)").group(1)
    assert Path(path) == appliance.data_dir / "bootstrap-api-key"
    assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600
    assert appliance.key.startswith("sce_")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readme_curl_request(appliance: Appliance, tmp_path: Path) -> None:
    reference, consent = enrollment_audio(sample_speakers()[0])
    (tmp_path / "alice-reference.wav").write_bytes(encode(reference, "wav"))
    (tmp_path / "alice-consent.wav").write_bytes(encode(consent, "wav"))
    env = {**os.environ, "SCAIGRID_HOST": appliance.url, "SCAIGRID_API_KEY": appliance.key}
    # the consent check hears what this consent recording says, so the request sends those words
    request = CURL_REQUEST.replace(
        "I, Alice Example, consent to ScaiEcho enrolling my voice for diarization.", CONSENT_SAID["speaker90"]
    )
    done = subprocess.run(["bash", "-c", request], cwd=tmp_path, env=env, capture_output=True, text=True)
    speaker = json.loads(done.stdout)["data"]
    assert speaker["enrollment_status"] == "ready"
    assert speaker["enrolled_on"] == ["node-1", "node-2"]
    assert speaker["preflight"]["passed"] is True
    assert speaker["display_name"] == "Alice Example"
    verification = speaker["consent"]["verification"]
    assert verification["policy"] == "enforce" and verification["passed"] is True


async def post_enrollment(
    appliance: Appliance, reference: bytes, consent: bytes, fmt: str, speaker: str = "speaker90"
) -> tuple[int, dict]:
    data = aiohttp.FormData()
    for name, value in enroll_fields(speaker).items():
        data.add_field(name, value)
    data.add_field("reference", reference, filename=f"reference.{fmt}")
    data.add_field("consent", consent, filename=f"consent.{fmt}")
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{appliance.url}{BASE}/speakers", data=data, headers=appliance.headers()) as resp,
    ):
        return resp.status, await resp.json()


@pytest.mark.parametrize("speaker_index", [0, 1])
@pytest.mark.parametrize("fmt", FORMATS)
async def test_enroll_sample_speakers_in_every_format(appliance: Appliance, fmt: str, speaker_index: int) -> None:
    reference, consent = enrollment_audio(sample_speakers()[speaker_index])
    # the second speaker's recordings come as 48 kHz stereo, as a desktop recorder would make them
    rate, channels = (16000, 1) if speaker_index == 0 else (48000, 2)
    if rate != 16000:
        reference, consent = upsample(reference, 3), upsample(consent, 3)
    status, body = await post_enrollment(
        appliance,
        encode(reference, fmt, sample_rate=rate, channels=channels),
        encode(consent, fmt, sample_rate=rate, channels=channels),
        fmt,
        sample_speakers()[speaker_index],
    )
    assert status == 201, body
    speaker = body["data"]
    assert speaker["enrollment_status"] == "ready"
    assert speaker["enrolled_on"] == ["node-1", "node-2"]
    assert speaker["preflight"]["reference"]["format"] == fmt
    assert speaker["preflight"]["reference"]["channels_in"] == channels


async def test_health_and_listing(appliance: Appliance) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{appliance.url}/healthz") as resp:
            health = await resp.json()
            assert resp.status == 200
        assert health == {"status": "ok", "redis": "ok", "nodes_online": 2, "asr": "ok", "disk": "ok"}
        async with http.get(f"{appliance.url}{BASE}/speakers?limit=200", headers=appliance.headers()) as resp:
            listed = (await resp.json())["data"]
    assert len(listed) >= 10 and all(s["enrollment_status"] == "ready" for s in listed)


def test_a_killed_node_is_respawned_cold_and_rewarmed(appliance: Appliance) -> None:
    enrolled = len(appliance.get_json("/speakers?limit=200")[1]["data"])

    def node2() -> dict:
        return next(n for n in appliance.get_json("/nodes")[1]["data"] if n["node_id"] == "node-2")

    before = node2()
    assert before["warm_speakers"] == enrolled
    process = next(p for p in appliance.descendants() if "node-2" in p.cmdline())
    process.kill()
    process.wait(timeout=10)
    deadline = time.monotonic() + 90
    current = before
    while time.monotonic() < deadline:
        online = [n for n in appliance.get_json("/nodes")[1]["data"] if n["node_id"] == "node-2"]
        current = online[0] if online else before
        if current["started_at"] != before["started_at"] and current["warm_speakers"] == enrolled:
            break
        time.sleep(0.3)
    assert current["started_at"] != before["started_at"], "node-2 was not started again"
    assert current["warm_speakers"] == enrolled
    assert any("node-2 exited" in line for line in appliance.lines)


def test_sigint_stops_every_child(appliance: Appliance) -> None:
    """Runs last in this module: Ctrl-C ends the nodes, Redis and the supervisor itself."""
    children = appliance.descendants()
    names = " ".join(" ".join(c.cmdline()) for c in children)
    assert "redis-server" in names and names.count("appliance.node.service") == 2
    appliance.proc.send_signal(signal.SIGINT)
    assert appliance.proc.wait(timeout=60) == 0
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
    assert any("ScaiEcho stopped." in line for line in appliance.lines)


def test_no_node_pending_then_ready_when_a_node_starts(tmp_path: Path) -> None:
    app = Appliance(tmp_path / "data", nodes=0)
    node = None
    try:
        app.wait_for(r"ScaiEcho ready: 0/0")
        speaker_label = sample_speakers()[1]
        reference, consent = (encode(x, "wav") for x in enrollment_audio(speaker_label))
        # no node can compare the voices: the default policy (enforce) refuses, and stores nothing
        status, body = asyncio.run(post_enrollment(app, reference, consent, "wav", speaker_label))
        assert status == 503 and body["error"]["code"] == "consent_check_unavailable", body
        assert app.get_json("/speakers")[1]["data"] == []
        # an admin who accepts unverified consent for now switches the tenant to warn
        assert app.get_json("/policy", "PUT", {"consent_checks": "warn"})[0] == 200
        status, body = asyncio.run(post_enrollment(app, reference, consent, "wav", speaker_label))
        assert status == 201
        speaker = body["data"]
        assert speaker["enrollment_status"] == "pending"
        assert speaker["note"].startswith("no pyannote node is online; the profile stays pending until one is")
        assert speaker["consent"]["verification"]["speaker"]["status"] == "skipped"
        assert speaker["consent"]["verification"]["text"]["status"] == "passed"

        node = subprocess.Popen(
            [str(Path(sys.executable).parent / "scaiecho-node"), "--node-id", "node-1",
             "--redis-url", app.redis_url, "--cluster-secret-file", str(app.data_dir / "cluster-secret")],
        )  # fmt: skip
        deadline = time.monotonic() + 120
        current: dict = {}
        while time.monotonic() < deadline:
            current = app.get_json(f"/speakers/{speaker['id']}")[1]["data"]
            if current["enrollment_status"] == "ready":
                break
            time.sleep(0.5)
        assert current["enrollment_status"] == "ready"
        assert current["enrolled_on"] == ["node-1"]
    finally:
        if node is not None:
            node.terminate()
            node.wait(timeout=30)
        app.stop()


def test_busy_port_is_a_clear_error_and_leaves_nothing_running(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        app = Appliance(tmp_path / "data", nodes=1, port=busy.getsockname()[1])
        try:
            assert app.proc.wait(timeout=120) == 1
            app.wait_for(r"error: cannot listen on 127\.0\.0\.1:\d+ .*--port", timeout_s=5)
            assert not any("Traceback" in line for line in app.lines)
        finally:
            app.stop()
    assert app.descendants_gone()
