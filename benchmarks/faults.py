"""A repeatable fault suite against the real appliance; prints one table of counts.

Each row runs a fault many times through the real processes and counts violations of what must
hold afterwards (0 is the only good count):

- kill -9: the whole appliance is killed at a random moment while a client enrolls and erases;
  after the restart every stored speaker's recordings decrypt whole and match the consent
  record's hashes, no ciphertext file is left without its row (or row without its file), every
  erasure job finishes and the audit log verifies.
- full disk: the blob folder is a small tmpfs; enrollments go on until it is full: none is
  answered 201 with a truncated recording, no temporary file stays behind, and the disk is
  reported low.
- node freeze: SIGSTOP a node, enroll (its hold times out), erase, SIGCONT: the node must never
  keep the erased speaker; a speaker enrolled while it was frozen reaches it after it thaws.
- Redis kill: SIGKILL the bundled Redis: /healthz and every speaker are back without a manual step.
- decoder fuzz: mutated wav/flac/mp3/ogg/m4a files and hostile WAV headers through the file and
  stream decoders: anything but a clean decoding error is a crash.
- schemathesis: generated requests against /openapi.json: responses with a 5xx status.
- fairness: a real-time stream's delta latency alone, and beside a client sending 50x real time.

    python -m benchmarks.faults [--kills 10] [--fuzz 2000] [--freezes 3] [--redis-kills 3]

Needs root for the full-disk row (it mounts a tmpfs); skips it otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np

from appliance.crypto import Keyring
from edge_server.storage.blobs import BlobStore
from edge_server.storage.db import open_database
from models.audio import SAMPLE_RATE, AudioError, decode, encode
from models.stream_audio import ContainerDecoder, StreamFormatError, WavDecoder
from tests.api_client import BASE, enroll, erase
from tests.appliance_process import Appliance
from tests.stream_client import stream
from tests.support import enrollment_audio, sample_audio, sample_speakers


@dataclass
class Row:
    """One line of the table."""

    fault: str
    trials: int
    holds: str
    violations: int
    detail: str = ""


def until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.25) -> bool:
    """Poll ``check`` until it is true or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(interval_s)
    return False


def health(app: Appliance) -> dict[str, object]:
    """/healthz, whatever its status code."""
    try:
        with urllib.request.urlopen(f"{app.url}/healthz", timeout=5) as resp:  # noqa: S310 (http to our box)
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        return dict(json.loads(exc.read()))


def speakers_of(app: Appliance) -> list[dict[str, object]]:
    """Every live speaker of the bootstrap tenant."""
    status, body = app.get_json("/speakers?limit=200")
    return list(body["data"]) if status == 200 else []


async def enroll_one(app: Appliance, name: str, index: int = 0) -> dict[str, object]:
    """Enroll one of the pyannote sample's callers under ``name``."""
    speaker = sample_speakers()[index % 2]
    reference, consent = enrollment_audio(speaker)
    async with aiohttp.ClientSession() as http:
        return await enroll(http, app.url, app.key, name, reference, consent, speaker)


def storage_violations(data_dir: Path) -> list[str]:
    """What is wrong in a stopped or running appliance's storage (empty: all is well)."""
    problems = []
    db = open_database(data_dir / "scaiecho.db")
    try:
        store = BlobStore(data_dir / "blobs", Keyring.load_or_create(data_dir / "master.key"), db)
        rows = db.execute(
            "SELECT s.tenant_id, s.reference_blob_id, s.consent_blob_id, c.reference_audio_sha256, "
            "c.consent_audio_sha256 FROM speakers s JOIN consent_records c ON c.id = s.consent_id "
            "WHERE s.deleted_at IS NULL"
        ).fetchall()
        for tenant_id, reference_id, consent_id, reference_sha, consent_sha in rows:
            for blob_id, sha in ((reference_id, reference_sha), (consent_id, consent_sha)):
                try:
                    if hashlib.sha256(store.get(tenant_id, blob_id)).hexdigest() != sha:
                        problems.append(f"{blob_id}: does not match its consent hash")
                except (KeyError, OSError, ValueError) as exc:
                    problems.append(f"{blob_id}: unreadable ({type(exc).__name__})")
        live = {r[0] for r in db.execute("SELECT id FROM blobs WHERE destroyed_at IS NULL").fetchall()}
        files = {p.stem for p in (data_dir / "blobs").glob("*/*.blob")}
        problems += [f"{b}: row without its file" for b in live - files]
        problems += [f"{b}: file without a live row" for b in files - live]
        problems += [f"{p.name}: temporary left" for p in (data_dir / "blobs").glob("*/*.tmp")]
        unfinished = db.execute("SELECT count(*) FROM erasure_jobs WHERE state != 'done'").fetchone()[0]
        if unfinished:
            problems.append(f"{unfinished} erasure jobs unfinished")
    finally:
        db.conn.close()
    verify = subprocess.run(
        [sys.executable, "-m", "appliance.programs.admin_cli", "audit", "verify", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if verify.returncode != 0:
        problems.append(f"audit: {verify.stdout.strip()}")
    return problems


def kill9(kills: int, root: Path, rng: random.Random) -> Row:
    """kill -9 the whole appliance at random moments of enroll/erase traffic, restart, check."""
    data_dir = root / "kill9"
    violations: list[str] = []
    for round_no in range(kills):
        app = Appliance(data_dir, nodes=1)
        app.wait_for(r"ScaiEcho ready: 1/1")
        # what a crash left is healed at start: the check runs once the reconciler had a tick
        time.sleep(2.0)
        violations += [f"round {round_no}: {p}" for p in storage_violations(data_dir)]
        stop = threading.Event()

        def traffic(app: Appliance = app, stop: threading.Event = stop, round_no: int = round_no) -> None:
            async def loop() -> None:
                n = 0
                while not stop.is_set():
                    try:
                        speaker = await enroll_one(app, f"Crash {round_no}.{n}", n)
                        if n % 2:
                            await erase(app.url, app.key, str(speaker["id"]))
                    except (aiohttp.ClientError, RuntimeError, OSError):
                        await asyncio.sleep(0.05)
                    n += 1

            asyncio.run(loop())

        worker = threading.Thread(target=traffic, daemon=True)
        worker.start()
        time.sleep(rng.uniform(0.5, 6.0))
        for child in app.descendants():
            child.kill()
        app.proc.kill()
        app.proc.wait(30)
        stop.set()
        worker.join(60)
    final = Appliance(data_dir, nodes=1)
    final.wait_for(r"ScaiEcho ready: 1/1")
    time.sleep(3.0)
    violations += [f"final: {p}" for p in storage_violations(data_dir)]
    final.stop()
    kept = len(speakers_of_stopped(data_dir))
    return Row(
        "kill -9 mid enroll/erase",
        kills,
        "recordings whole, no orphan file or row, erasures finish, audit verifies",
        len(violations),
        "; ".join(violations[:3]) or f"{kept} speakers kept intact",
    )


def speakers_of_stopped(data_dir: Path) -> list[str]:
    """Live speaker ids of a stopped appliance's database."""
    db = open_database(data_dir / "scaiecho.db")
    try:
        return [r[0] for r in db.execute("SELECT id FROM speakers WHERE deleted_at IS NULL").fetchall()]
    finally:
        db.conn.close()


def full_disk(root: Path) -> Row:
    """Enroll into a 1.5 MB blob folder until it is full."""
    if os.geteuid() != 0:
        return Row("full disk (tmpfs)", 0, "needs root to mount a tmpfs", 0, "skipped")
    data_dir = root / "full"
    blobs = data_dir / "blobs"
    blobs.mkdir(parents=True)
    (data_dir / "config.toml").write_text("[server]\nmin_free_bytes = 0\n")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500k,mode=0700", "tmpfs", str(blobs)], check=True)
    app = Appliance(data_dir, nodes=1)
    statuses: list[int] = []
    try:
        app.wait_for(r"ScaiEcho ready: 1/1")
        for n in range(8):
            try:
                asyncio.run(enroll_one(app, f"Disk {n}", n))
                statuses.append(201)
            except RuntimeError as exc:
                statuses.append(int(str(exc).split(":")[1].split()[0]))
        problems = storage_violations(data_dir)
    finally:
        app.stop()
        subprocess.run(["umount", "-l", str(blobs)], check=False)
    refused = statuses.count(507)
    others = [s for s in statuses if s not in (201, 507)]
    violations = len(problems) + len(others) + (0 if refused else 1)
    return Row(
        "full disk (tmpfs)",
        len(statuses),
        "507 when full, no truncated recording kept, no temporary left",
        violations,
        f"{statuses.count(201)} stored whole, then {refused} refused 507; " + "; ".join(problems[:2]),
    )


def node_freeze(freezes: int, root: Path) -> Row:
    """SIGSTOP node-1 around an enrollment and an erasure, SIGCONT, and watch what it holds."""
    data_dir = root / "freeze"
    (data_dir).mkdir(parents=True)
    (data_dir / "config.toml").write_text("[nodes]\nrequest_timeout_s = 4.0\n")
    app = Appliance(data_dir, nodes=2)
    violations: list[str] = []
    try:
        app.wait_for(r"ScaiEcho ready: 2/2")
        node = next(p for p in app.descendants() if "node-1" in " ".join(p.cmdline()))
        for n in range(freezes):
            node.send_signal(signal.SIGSTOP)
            try:
                erased = asyncio.run(enroll_one(app, f"Frozen erased {n}", n))
                kept = asyncio.run(enroll_one(app, f"Frozen kept {n}", n + 1))
                asyncio.run(erase(app.url, app.key, str(erased["id"])))
            finally:
                node.send_signal(signal.SIGCONT)

            def node1_warm() -> int:
                _, body = app.get_json("/nodes")
                return next(int(n["warm_speakers"]) for n in body["data"] if n["node_id"] == "node-1")

            live = len(speakers_of(app))
            if not until(lambda live=live: node1_warm() == live, 30):  # type: ignore[misc]
                violations.append(f"round {n}: node-1 holds {node1_warm()} speakers, {live} are live")
            status, body = app.get_json(f"/speakers/{kept['id']}/warm")
            if status != 200 or "node-1" not in body["data"]["warm_node_ids"]:
                violations.append(f"round {n}: the speaker enrolled during the freeze never reached node-1")
    finally:
        app.stop()
    return Row(
        "node freeze (SIGSTOP) across enroll + erase",
        freezes,
        "the frozen node never keeps an erased speaker and gets what it missed",
        len(violations),
        "; ".join(violations[:2]),
    )


def redis_kill(kills: int, root: Path) -> Row:
    """SIGKILL the bundled Redis and time the heal."""
    app = Appliance(root / "redis", nodes=2)
    heal_s: list[float] = []
    violations = 0
    try:
        app.wait_for(r"ScaiEcho ready: 2/2")
        for n in range(3):
            asyncio.run(enroll_one(app, f"Redis {n}", n))
        for _ in range(kills):
            server = next(p for p in app.descendants() if "redis-server" in " ".join(p.cmdline()))
            started = time.monotonic()
            server.kill()

            def healed() -> bool:
                ready = [s for s in speakers_of(app) if s["enrolled_on"] == ["node-1", "node-2"]]
                return health(app).get("status") == "ok" and len(ready) == 3

            if until(healed, 60):
                heal_s.append(time.monotonic() - started)
            else:
                violations += 1
    finally:
        app.stop()
    detail = f"healed in {statistics.median(heal_s):.1f} s median, {max(heal_s):.1f} s max" if heal_s else ""
    return Row("Redis SIGKILL", kills, "/healthz ok and every speaker ready again, no manual step", violations, detail)


def fuzz_corpus(rng: random.Random) -> list[bytes]:
    """Valid files of every format, to mutate."""
    speech = sample_audio()[: 3 * SAMPLE_RATE]
    return [encode(speech, fmt) for fmt in ("wav", "flac", "mp3", "ogg", "m4a")]


def hostile_wav(rng: random.Random) -> bytes:
    """A RIFF header with random format fields over a little noise."""
    body = rng.randbytes(rng.choice([0, 1, 3, 1000, 32000]))
    fmt = struct.pack(
        "<HHIIHH",
        rng.choice([0, 1, 2, 3, 6, 7, 0x11, 0xFFFE, 0xFFFF, rng.randrange(65536)]),
        rng.choice([0, 1, 2, 8, 255, 65535]),
        rng.choice([0, 1, 8000, 16000, 44100, 2**31 - 1, 2**32 - 1]),
        rng.randrange(2**32),
        rng.choice([0, 1, 2, 4, 65535]),
        rng.choice([0, 1, 8, 16, 24, 32, 64, 65535]),
    )
    size = rng.choice([len(body), 0, 2**32 - 1, len(body) * 1000])
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(body))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + (b"data" + struct.pack("<I", size) + body)
    )


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip bytes, cut, or splice: the shapes of corrupt uploads."""
    buf = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:
        for _ in range(rng.randint(1, 20)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == 1:
        buf = buf[: rng.randrange(1, len(buf))]
    elif kind == 2:
        at = rng.randrange(len(buf))
        buf[at:at] = rng.randbytes(rng.randint(1, 500))
    else:
        start = rng.randrange(min(64, len(buf)))
        buf[start : start + 16] = rng.randbytes(16)
    return bytes(buf)


def decoder_fuzz(cases: int, rng: random.Random) -> Row:
    """Every case through the whole-file decoder and the matching stream decoder."""
    corpus = fuzz_corpus(rng)
    crashes: list[str] = []
    for n in range(cases):
        data = hostile_wav(rng) if n % 4 == 0 else mutate(rng.choice(corpus), rng)
        try:
            decode(data, 30.0)
        except AudioError:
            pass
        except Exception as exc:
            crashes.append(f"decode: {type(exc).__name__}: {exc}")
        stream_decoder = (
            WavDecoder() if data[:4] == b"RIFF" else ContainerDecoder("ogg") if data[:4] == b"OggS" else None
        )
        if stream_decoder is not None:
            try:
                for i in range(0, len(data), 4096):
                    stream_decoder.feed(data[i : i + 4096])
                stream_decoder.close()
            except StreamFormatError:
                pass
            except Exception as exc:
                crashes.append(f"stream: {type(exc).__name__}: {exc}")
    return Row(
        "decoder fuzz (mutated files, hostile WAV headers)",
        cases,
        "a clean 'unsupported media' error, never a crash",
        len(crashes),
        "; ".join(sorted(set(crashes))[:3]),
    )


def schemathesis(examples: int, root: Path) -> Row:
    """Generated requests against the published OpenAPI document; 5xx answers are violations."""
    binary = Path(sys.executable).parent / "st"
    if not binary.exists():
        return Row("schemathesis", 0, "needs schemathesis (pip install schemathesis)", 0, "skipped")
    app = Appliance(root / "schema", nodes=1)
    report = root / "schemathesis.json"
    try:
        app.wait_for(r"ScaiEcho ready: 1/1")
        run = subprocess.run(
            [str(binary), "run", f"{app.url}{BASE}/openapi.json", "-H", f"Authorization: Bearer {app.key}",
             "--checks", "not_a_server_error", "-n", str(examples), "--seed", "17", "--no-shrink", "-w", "1",
             "--report", "json", "--report-json-path", str(report)],
            capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
    finally:
        app.stop()
    counts = [line.strip() for line in run.stdout.splitlines() if re.search(r"^\s*\d+ generated", line)]
    summary = counts[0] if counts else run.stdout[-200:]
    server_errors = sum(line.count(" 500 ") + line.count("Server error") for line in run.stdout.splitlines())
    return Row(
        "schemathesis (all operations, stateful)",
        examples,
        "no 5xx answer",
        0 if run.returncode == 0 else max(1, server_errors),
        summary,
    )


def fairness(root: Path) -> Row:
    """A real-time stream's delta latency alone, then beside a client sending 50x real time."""
    app = Appliance(root / "fair", nodes=1)
    audio = sample_audio()
    try:
        app.wait_for(r"ScaiEcho ready: 1/1")

        async def realtime_alone() -> list[float]:
            return (await stream(app.url, app.key, audio, realtime=True)).latencies()

        async def realtime_beside_flood() -> list[float]:
            long = np.concatenate([audio] * 6)
            flood = asyncio.create_task(stream(app.url, app.key, long, realtime=False, frame_s=0.1))
            await asyncio.sleep(1.0)
            lag = (await stream(app.url, app.key, audio, realtime=True)).latencies()
            await flood
            return lag

        alone = asyncio.run(realtime_alone())
        beside = asyncio.run(realtime_beside_flood())
    finally:
        app.stop()
    detail = (
        f"alone p50 {statistics.median(alone):.2f} s, max {max(alone):.2f} s; beside the flood p50 "
        f"{statistics.median(beside):.2f} s, max {max(beside):.2f} s"
    )
    return Row("fairness: real-time stream beside a 50x flood", 1, "latency stays close to alone", 0, detail)


def main() -> None:
    """Run every row (or the ones asked for) and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--fuzz", type=int, default=2000)
    parser.add_argument("--freezes", type=int, default=3)
    parser.add_argument("--redis-kills", type=int, default=3)
    parser.add_argument("--schema-examples", type=int, default=50)
    parser.add_argument("--only", nargs="*", default=None, help="kill9 disk freeze redis fuzz schema fair")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="scaiecho-faults-"))
    wanted = set(args.only or ["fuzz", "disk", "freeze", "redis", "kill9", "schema", "fair"])
    runs: list[tuple[str, Callable[[], Row]]] = [
        ("fuzz", lambda: decoder_fuzz(args.fuzz, rng)),
        ("disk", lambda: full_disk(root)),
        ("freeze", lambda: node_freeze(args.freezes, root)),
        ("redis", lambda: redis_kill(args.redis_kills, root)),
        ("kill9", lambda: kill9(args.kills, root, rng)),
        ("schema", lambda: schemathesis(args.schema_examples, root)),
        ("fair", lambda: fairness(root)),
    ]
    rows = []
    try:
        for name, run in runs:
            if name in wanted:
                started = time.monotonic()
                rows.append(run())
                print(f"{name}: done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("| fault | trials | what must hold | violations | detail |")
    print("|---|---:|---|---:|---|")
    for row in rows:
        print(f"| {row.fault} | {row.trials} | {row.holds} | {row.violations} | {row.detail} |")


if __name__ == "__main__":
    main()
