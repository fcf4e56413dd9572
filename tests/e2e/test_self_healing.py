"""The box heals without a manual step: its bundled Redis killed with SIGKILL comes back, and the
speakers the nodes still hold are ready again (no re-warm by hand)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable

import aiohttp

from tests.api_client import enroll
from tests.appliance_process import Appliance
from tests.support import enrollment_audio, sample_speakers


def until(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return False


def health(appliance: Appliance) -> dict[str, object]:
    try:
        with urllib.request.urlopen(f"{appliance.url}/healthz", timeout=5) as resp:
            return dict(json.loads(resp.read()))
    except (OSError, ValueError) as exc:  # 503 (HTTPError) or no answer: not healthy
        return {"status": f"unhealthy ({exc})"}


def test_killed_redis_is_restarted_and_speakers_are_ready_again(appliance: Appliance) -> None:
    reference, consent = enrollment_audio(sample_speakers()[0])

    async def enroll_one() -> dict[str, object]:
        async with aiohttp.ClientSession() as http:
            return await enroll(http, appliance.url, appliance.key, "Heal Example", reference, consent)

    speaker = asyncio.run(enroll_one())
    assert speaker["enrolled_on"] == ["node-1", "node-2"]
    redis = [p for p in appliance.descendants() if "redis-server" in " ".join(p.cmdline())]
    assert len(redis) == 1
    old_pid = redis[0].pid
    redis[0].kill()
    redis[0].wait(10)

    def ready_again() -> bool:
        status, body = appliance.get_json(f"/speakers/{speaker['id']}")
        return (
            status == 200
            and body["data"]["enrollment_status"] == "ready"
            and body["data"]["enrolled_on"]
            == [
                "node-1",
                "node-2",
            ]
        )

    assert until(lambda: health(appliance).get("status") == "ok", 30), health(appliance)
    assert until(ready_again, 30), appliance.get_json(f"/speakers/{speaker['id']}")
    restarted = [p for p in appliance.descendants() if "redis-server" in " ".join(p.cmdline())]
    assert len(restarted) == 1 and restarted[0].pid != old_pid
    status, nodes = appliance.get_json("/nodes")
    assert status == 200 and [n["warm_speakers"] for n in nodes["data"]] == [1, 1]
