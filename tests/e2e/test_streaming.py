"""Live diarized transcription against `scaiecho-appliance up`: the sample call streamed in real
time, labels checked against its RTTM; an unenrolled voice as spk_N; the documented example."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from appliance.contract import BASE
from models.audio import SAMPLE_RATE
from tests.api_client import enroll
from tests.appliance_process import Appliance
from tests.stream_client import STREAM_PATH, pcm16, stream
from tests.support import (
    enrollment_audio,
    label_agreement,
    majority_labels,
    sample_audio,
    sample_dir,
    sample_speakers,
    sample_turns,
)
from tests.upstream_stub import KEY

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "live_transcript.py"


async def enroll_speaker(appliance: Appliance, label: str) -> str:
    reference, consent = enrollment_audio(label)
    async with aiohttp.ClientSession() as http:
        created = await enroll(http, appliance.url, appliance.key, f"Caller {label[-2:]}", reference, consent, label)
    assert created["enrollment_status"] == "ready"
    return str(created["display_name"])


def test_live_labels_follow_the_reference(appliance: Appliance) -> None:
    first, second = sample_speakers()

    # nobody enrolled, streamed in real time like a live call: the two callers are two session voices
    result = asyncio.run(stream(appliance.url, appliance.key, sample_audio(), diarize=True, realtime=True))
    labels = {d.get("speaker_label") for d in result.deltas} - {None}  # a phrase under 0.5 s has none
    assert labels and all(str(label).startswith("spk_") for label in labels), labels
    majority = majority_labels(result.deltas, sample_turns())
    assert majority[first] != majority[second], majority
    # ... and each keeps one label: most of a caller's solo speech carries their main label
    own, _ = label_agreement(result.deltas, sample_turns(), {k: str(v) for k, v in majority.items()})
    assert own > 0.7, (own, majority)

    names = {first: asyncio.run(enroll_speaker(appliance, first))}

    # only the first caller is enrolled: the second one is a session cluster, never a name
    result = asyncio.run(stream(appliance.url, appliance.key, sample_audio(), diarize=True))
    labels = {d.get("speaker_label") for d in result.deltas}
    assert names[first] in labels and "spk_0" in labels
    right, wrong = label_agreement(result.deltas, sample_turns(), names)
    assert wrong < 0.15, (right, wrong)

    # both enrolled, streamed in real time like a live call
    names[second] = asyncio.run(enroll_speaker(appliance, second))
    result = asyncio.run(stream(appliance.url, appliance.key, sample_audio(), diarize=True, realtime=True))
    assert result.frames[0]["type"] == "ready" and result.frames[-1]["type"] == "done"
    assert result.of("partial"), "partials while phrases are open"
    right, wrong = label_agreement(result.deltas, sample_turns(), names)
    assert right > 0.5 and wrong < 0.25, (right, wrong)
    assert set(names.values()) <= {d.get("speaker_label") for d in result.deltas}

    # the example in README/docs, paced like a live call, prints the enrolled names while the
    # 30 s call is still being sent (the first words are spoken at 6.7 s)
    env = {**os.environ, "SCAIGRID_HOST": appliance.url, "SCAIGRID_API_KEY": appliance.key}
    example = subprocess.Popen(
        [sys.executable, str(EXAMPLE), str(sample_dir() / "sample.wav")], env=env, stdout=subprocess.PIPE
    )
    assert example.stdout is not None
    started, printed, first_name_at = time.monotonic(), b"", None
    while chunk := os.read(example.stdout.fileno(), 4096):
        printed += chunk
        if first_name_at is None and b"Caller 9" in printed:
            first_name_at = time.monotonic() - started
    assert example.wait(timeout=120) == 0
    lines = printed.decode().splitlines()
    assert first_name_at is not None and first_name_at < 20.0, (first_name_at, lines)
    assert any(line.startswith("Caller 90: ") for line in lines), lines
    assert any(line.startswith("Caller 91: ") for line in lines), lines
    assert "'type': 'done'" in lines[-1]


def test_backend_b_bad_frames_and_permissions_on_the_real_appliance(tmp_path: Path, upstream: str) -> None:
    """`up` with Backend B configured: policy B relays to the real upstream process; bad frames
    get error frames; diarize without its scope is 4403; no transcribe scope is refused at the upgrade."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "config.toml").write_text(
        f'[backend_b]\nurl = "{upstream}"\napi_key = "{KEY}"\nmodel = "ok"\ntimeout_s = 5\n'
    )
    appliance = Appliance(data_dir, nodes=1)
    try:
        appliance.wait_for(r"ScaiEcho ready: 1/1")
        asyncio.run(backend_b_session(appliance))
    finally:
        appliance.stop()


async def backend_b_session(appliance: Appliance) -> None:
    headers = {"Authorization": f"Bearer {appliance.key}"}
    async with aiohttp.ClientSession() as http:
        async with http.put(f"{appliance.url}{BASE}/policy", json={"backend": "B"}, headers=headers) as resp:
            assert resp.status == 200
        async with http.ws_connect(appliance.url + STREAM_PATH, headers=headers) as ws:
            await ws.send_bytes(b"\x00" * 64)
            assert (await ws.receive_json())["code"] == "bad_frame"
            await ws.send_str("not json")
            assert (await ws.receive_json())["code"] == "bad_frame"
            await ws.send_json({"type": "open", "media_type": "audio/pcm;rate=16000", "diarize": True})
            ready = await ws.receive_json()
            assert ready["type"] == "ready" and ready["backend_used"] == "B"
            await ws.send_bytes(pcm16(sample_audio()[: 12 * SAMPLE_RATE]))
            await ws.send_json({"type": "close"})
            frames = [json.loads(m.data) async for m in ws if m.type == aiohttp.WSMsgType.TEXT]
        deltas = [f for f in frames if f["type"] == "delta"]
        assert deltas and all(d["text"].startswith("heard") and "speaker_label" not in d for d in deltas)
        assert frames[-1]["type"] == "done"
        # keys with fewer scopes
        limited = {}
        for scopes in ("scaiecho:transcribe", "scaiecho:enroll"):
            created = subprocess.run(
                [str(Path(sys.executable).parent / "scaiecho-admin"), "--data-dir", str(appliance.data_dir),
                 "key", "create", "--tenant", "default", "--scopes", scopes],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            limited[scopes] = created.stdout.strip().splitlines()[-1].split()[-1]
        transcribe_only = {"Authorization": f"Bearer {limited['scaiecho:transcribe']}"}
        async with http.ws_connect(appliance.url + STREAM_PATH, headers=transcribe_only) as ws:
            await ws.send_json({"type": "open", "media_type": "audio/wav", "diarize": True})
            assert (await ws.receive_json())["code"] == "forbidden"
            await ws.receive()
            assert ws.close_code == 4403
        enroll_only = {"Authorization": f"Bearer {limited['scaiecho:enroll']}"}
        try:
            await http.ws_connect(appliance.url + STREAM_PATH, headers=enroll_only)
            raise AssertionError("the upgrade should have been refused")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 403
