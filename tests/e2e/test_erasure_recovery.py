"""A crash of the appliance in the middle of an erasure is finished on restart, never half done."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models.audio import encode
from tests.api_client import erase
from tests.appliance_process import Appliance
from tests.e2e.test_appliance import post_enrollment
from tests.support import enrollment_audio, sample_speakers

CRASH_HOOKS = Path(__file__).parent / "crash_hooks"


@pytest.mark.parametrize("step", ["tombstone", "shred", "evict"])
def test_crash_mid_erasure_resumes_on_restart(tmp_path: Path, step: str) -> None:
    data_dir = tmp_path / "data"
    crashing = Appliance(data_dir, nodes=1, env={"SCAIECHO_CRASH_AFTER": step, "PYTHONPATH": str(CRASH_HOOKS)})
    try:
        crashing.wait_for(r"ScaiEcho ready: 1/1")
        reference, consent = enrollment_audio(sample_speakers()[0])
        status, body = asyncio.run(post_enrollment(crashing, encode(reference, "wav"), encode(consent, "wav"), "wav"))
        assert status == 201 and body["data"]["enrollment_status"] == "ready"
        speaker_id = body["data"]["id"]
        assert asyncio.run(erase(crashing.url, crashing.key, speaker_id)) is None
        assert crashing.proc.wait(timeout=30) == 70
    finally:
        crashing.stop()

    restarted = Appliance(data_dir, nodes=1)
    try:
        restarted.wait_for(r"ScaiEcho ready: 1/1")
        deadline = time.monotonic() + 30
        status, body = restarted.get_json(f"/speakers/{speaker_id}")
        while time.monotonic() < deadline and not (status == 410 and body["error"]["details"]["audit_id"]):
            time.sleep(0.2)
            status, body = restarted.get_json(f"/speakers/{speaker_id}")
        assert status == 410 and body["error"]["details"]["audit_id"].startswith("era_")
        assert list((data_dir / "blobs").glob("*/*")) == []
        status, nodes = restarted.get_json("/nodes")
        assert [n["warm_speakers"] for n in nodes["data"]] == [0]
        verified = subprocess.run(
            [sys.executable, "-m", "appliance.programs.admin_cli", "--data-dir", str(data_dir), "audit", "verify"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert verified.stdout.startswith("OK: 1 erasure audit rows")
    finally:
        restarted.stop()
