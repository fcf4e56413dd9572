"""Erasure latency and re-warm time of a restarted node; prints tables.

1. DELETE latency with 2 and 4 nodes: enroll ``--deletes`` speakers, erase each, time each DELETE.
2. Re-warm: an appliance with one node plus one extra node process; enroll ``--speakers``
   speakers; ``kill -9`` the extra node, start it again, and time until it holds them all again.

    python -m benchmarks.erasure [--nodes 2 4] [--deletes 30] [--speakers 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

from appliance.contract import BASE
from benchmarks.enroll import enroll_once, percentile, recordings, speech_sources
from tests.appliance_process import Appliance


async def enroll_many(app: Appliance, sources: list[np.ndarray], count: int, parallel: int = 2) -> list[str]:
    """Enroll ``count`` speakers (``parallel`` requests in flight); returns their ids."""
    ids: list[str] = []
    gate = asyncio.Semaphore(parallel)
    async with aiohttp.ClientSession() as http:

        async def one(i: int) -> None:
            ref, con = recordings(sources[i % len(sources)], 3.7 * i)
            async with gate:
                ids.append((await enroll_once(http, app, ref, con))[1])

        await asyncio.gather(*(one(i) for i in range(count)))
    return ids


async def delete_all(app: Appliance, ids: list[str]) -> list[float]:
    """Sequential DELETEs; seconds each."""
    latencies = []
    async with aiohttp.ClientSession() as http:
        for speaker_id in ids:
            started = time.perf_counter()
            async with http.delete(f"{app.url}{BASE}/speakers/{speaker_id}", headers=app.headers()) as resp:
                body = await resp.json()
            latencies.append(time.perf_counter() - started)
            if resp.status != 200 or body["data"]["error_summary"]:
                raise RuntimeError(f"erasure failed: {resp.status} {body}")
    return latencies


def delete_latency(nodes: int, count: int, sources: list[np.ndarray]) -> dict[str, float]:
    """DELETE latency on an appliance with ``nodes`` nodes."""
    with tempfile.TemporaryDirectory() as tmp:
        app = Appliance(Path(tmp) / "data", nodes=nodes)
        try:
            app.wait_for(rf"ScaiEcho ready: {nodes}/{nodes}")
            ids = asyncio.run(enroll_many(app, sources, count + 1))
            latencies = asyncio.run(delete_all(app, ids))[1:]  # first one warms up
        finally:
            app.stop()
    return {
        "nodes": nodes,
        "p50": statistics.median(latencies),
        "p95": percentile(latencies, 95),
        "max": max(latencies),
    }


async def node_state(app: Appliance, node_id: str) -> tuple[str, int] | None:
    """(started_at, speakers of the bootstrap tenant held) of ``node_id``; None while offline."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{app.url}{BASE}/nodes", headers=app.headers()) as resp,
    ):
        nodes = (await resp.json())["data"]
    return next(((n["started_at"], int(n["warm_speakers"])) for n in nodes if n["node_id"] == node_id), None)


def start_node(app: Appliance, node_id: str) -> subprocess.Popen[bytes]:
    """One extra `scaiecho-node` process against the appliance's Redis."""
    command = Path(sys.executable).parent / "scaiecho-node"
    return subprocess.Popen(
        [str(command), "--node-id", node_id, "--redis-url", app.redis_url,
         "--cluster-secret-file", str(app.data_dir / "cluster-secret")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def wait_for_node(
    app: Appliance, node_id: str, at_least: int, not_started_at: str | None = None, timeout_s: float = 1800
) -> tuple[float, str]:
    """Seconds until a boot of ``node_id`` other than ``not_started_at`` holds ``at_least`` speakers."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        state = asyncio.run(node_state(app, node_id))
        if state is not None and state[0] != not_started_at and state[1] >= at_least:
            return time.perf_counter() - started, state[0]
        time.sleep(0.1)
    raise RuntimeError(f"{node_id} did not reach {at_least} speakers")


def rewarm_time(speakers: int, sources: list[np.ndarray]) -> dict[str, float]:
    """Seconds from restarting a node (kill -9, start) to it holding every speaker again."""
    with tempfile.TemporaryDirectory() as tmp:
        app = Appliance(Path(tmp) / "data", nodes=1)
        extra = None
        try:
            app.wait_for(r"ScaiEcho ready: 1/1")
            extra = start_node(app, "node-x")
            _, first_boot = wait_for_node(app, "node-x", 0)
            started = time.perf_counter()
            asyncio.run(enroll_many(app, sources, speakers, parallel=4))
            enroll_s = time.perf_counter() - started
            extra.send_signal(signal.SIGKILL)
            extra.wait()
            restarted = time.perf_counter()
            extra = start_node(app, "node-x")
            wait_for_node(app, "node-x", 0, not_started_at=first_boot)
            online_s = time.perf_counter() - restarted
            wait_for_node(app, "node-x", speakers, not_started_at=first_boot)
            warm_s = time.perf_counter() - restarted
        finally:
            if extra is not None:
                extra.kill()
            app.stop()
    return {"speakers": speakers, "enroll_s": enroll_s, "online_s": online_s, "warm_s": warm_s}


def main() -> None:
    """Run both measurements and print the tables."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--deletes", type=int, default=30)
    parser.add_argument("--speakers", type=int, default=1000)
    args = parser.parse_args()
    sources = speech_sources()
    rows = [delete_latency(n, args.deletes, sources) for n in args.nodes]
    print(f"\nDELETE /speakers/{{id}} ({args.deletes} erasures, sequential)")
    print("| nodes | p50 (s) | p95 (s) | max (s) |")
    print("|------:|--------:|--------:|--------:|")
    for r in rows:
        print(f"| {r['nodes']} | {r['p50']:.3f} | {r['p95']:.3f} | {r['max']:.3f} |")
    warm = rewarm_time(args.speakers, sources)
    print(f"\nRe-warm of a restarted node (kill -9, start) holding {warm['speakers']} speakers")
    print("| speakers | enrolling them all (s) | restart to online (s) | restart to fully warm (s) |")
    print("|---------:|-----------------------:|----------------------:|--------------------------:|")
    print(f"| {warm['speakers']} | {warm['enroll_s']:.1f} | {warm['online_s']:.1f} | {warm['warm_s']:.1f} |")


if __name__ == "__main__":
    main()
