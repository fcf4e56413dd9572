"""Enrollment latency, node memory and start-up time of the real appliance; prints a table.

For 1, 2 and 4 nodes: start `scaiecho-appliance up`, time it until every node is online, send
``--requests`` enrollments (10 s reference, 5 s consent, real LibriSpeech speech from
../shared/data when present, else pyannote.audio's sample) one after another, and report the
POST-to-201 latency percentiles and the resident memory of each node process.

The consent checks run (voice on a node, words with Whisper) under the tenant policy ``warn``:
the LibriSpeech consent cut has no matching consent text, so ``enforce`` would refuse it; the
work is the same. ``--checks off`` measures enrollment without them.

    python -m benchmarks.enroll [--nodes 1 2 4] [--requests 30] [--checks warn|off]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

from models.audio import SAMPLE_RATE, decode, encode
from tests.api_client import set_policy
from tests.appliance_process import Appliance
from tests.support import ENROLL_FIELDS, solo_speech

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "librispeech" / "test-other"


def speech_sources() -> list[np.ndarray]:
    """One long stretch of speech per speaker: LibriSpeech test-other if present, else the sample."""
    if SHARED.is_dir():
        sources = []
        for speaker in sorted(SHARED.iterdir()):
            clips = [decode(f.read_bytes(), 600).samples for f in sorted(speaker.glob("*.flac"))]
            sources.append(np.concatenate(clips))
        return sources
    return [solo_speech(s) for s in ("speaker90", "speaker91")]


def recordings(source: np.ndarray, offset_s: float) -> tuple[bytes, bytes]:
    """A 10 s reference and a 5 s consent cut from ``source`` at ``offset_s`` (wrapping)."""
    need = 15 * SAMPLE_RATE
    start = int(offset_s * SAMPLE_RATE) % max(1, len(source) - need)
    clip = np.tile(source, 1 + need // len(source))[start : start + need]
    return encode(clip[: 10 * SAMPLE_RATE], "wav"), encode(clip[10 * SAMPLE_RATE :], "wav")


async def enroll_once(
    http: aiohttp.ClientSession, app: Appliance, reference: bytes, consent: bytes
) -> tuple[float, str]:
    """Seconds from sending the POST to reading the 201, and the new speaker's id."""
    form = aiohttp.FormData()
    for name, value in ENROLL_FIELDS.items():
        form.add_field(name, value)
    form.add_field("reference", reference, filename="reference.wav")
    form.add_field("consent", consent, filename="consent.wav")
    started = time.perf_counter()
    async with http.post(f"{app.url}/v1/modules/scaiecho/speakers", data=form, headers=app.headers()) as resp:
        body = await resp.json()
    elapsed = time.perf_counter() - started
    if resp.status != 201 or body["data"]["enrollment_status"] != "ready":
        raise RuntimeError(f"enrollment failed: {resp.status} {body}")
    return elapsed, str(body["data"]["id"])


async def measure_latencies(app: Appliance, sources: list[np.ndarray], requests: int, checks: str) -> list[float]:
    """Sequential enrollments, one warm-up request excluded."""
    async with aiohttp.ClientSession() as http:
        await set_policy(http, app.url, app.key, consent_checks=checks)
        ref, con = recordings(sources[0], 0)
        await enroll_once(http, app, ref, con)  # warm-up: first VAD and model calls
        latencies = []
        for i in range(requests):
            ref, con = recordings(sources[i % len(sources)], 7.3 * i)
            latencies.append((await enroll_once(http, app, ref, con))[0])
    return latencies


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(np.ceil(q / 100 * len(ordered))) - 1))]


def run(nodes: int, requests: int, sources: list[np.ndarray], checks: str) -> dict[str, float]:
    """One appliance with ``nodes`` nodes: start-up, latency, node RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        app = Appliance(Path(tmp) / "data", nodes=nodes)
        try:
            app.wait_for(rf"ScaiEcho ready: {nodes}/{nodes}")
            startup = time.perf_counter() - started
            latencies = asyncio.run(measure_latencies(app, sources, requests, checks))
            node_procs = [p for p in app.descendants() if "appliance.node.service" in " ".join(p.cmdline())]
            memory = [p.memory_full_info() for p in node_procs]
        finally:
            app.stop()
    return {
        "nodes": nodes,
        "startup_s": startup,
        "p50_s": statistics.median(latencies),
        "p95_s": percentile(latencies, 95),
        "max_s": max(latencies),
        "node_rss_mib": statistics.mean(m.rss / 2**20 for m in memory),
        # USS: memory unique to the process (not the shared torch/CUDA libraries it maps)
        "node_uss_mib": statistics.mean(m.uss / 2**20 for m in memory),
    }


def main() -> None:
    """Run the configurations and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--checks", choices=["warn", "off"], default="warn", help="consent checks run (warn) or not")
    args = parser.parse_args()
    sources = speech_sources()
    origin = "LibriSpeech test-other (../shared/data)" if SHARED.is_dir() else "pyannote.audio sample"
    rows = [run(n, args.requests, sources, args.checks) for n in args.nodes]
    print(
        f"\nEnrollment, POST -> 201 (10 s reference + 5 s consent WAV, speech: {origin}, {args.requests} requests, "
        f"consent checks {'on' if args.checks == 'warn' else 'off'})"
    )
    print("| nodes | start-up to all nodes online (s) | p50 (s) | p95 (s) | max (s) | RSS / USS per node (MiB) |")
    print("|------:|---------------------------------:|--------:|--------:|--------:|-------------------------:|")
    for r in rows:
        print(
            f"| {r['nodes']} | {r['startup_s']:.1f} | {r['p50_s']:.3f} | {r['p95_s']:.3f} | "
            f"{r['max_s']:.3f} | {r['node_rss_mib']:.0f} / {r['node_uss_mib']:.0f} |"
        )


if __name__ == "__main__":
    main()
