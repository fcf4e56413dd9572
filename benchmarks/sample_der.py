"""Speaker labels of the pyannote sample call through the real appliance: DER and identification error.

Starts `scaiecho-appliance up` (2 nodes) in a temporary data dir and streams the sample in real
time (40 ms frames, diarize on) with nobody enrolled, then with the first caller enrolled, then
with both (references: the first 70 % of each caller's solo speech, as the e2e tests enroll them;
so the enrolled figures are on material close to the reference, the nobody-enrolled one is not).
Deltas are scored with pyannote.metrics against the sample's RTTM (collar 0.25 s, overlap scored).

    python -m benchmarks.sample_der [--repeats 2] [--fast]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from tests.api_client import enroll
from tests.appliance_process import Appliance
from tests.stream_client import stream
from tests.support import enrollment_audio, majority_labels, sample_audio, sample_speakers, sample_turns


def scores(deltas: list[dict[str, Any]], names: dict[str, str]) -> tuple[float, float]:
    """(DER, identification error rate) of the deltas; unenrolled callers and spk_N are one identity
    for the identification error."""
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate
    from pyannote.metrics.identification import IdentificationErrorRate

    reference, known, hypothesis, said = Annotation(), Annotation(), Annotation(), Annotation()
    for k, turn in enumerate(sample_turns()):
        reference[Segment(turn.start, turn.end), k] = turn.speaker
        known[Segment(turn.start, turn.end), k] = names.get(turn.speaker, "unknown")
    for k, delta in enumerate(deltas):
        label = delta.get("speaker_label")
        if label is None or delta["end"] <= delta["start"]:
            continue
        hypothesis[Segment(delta["start"], delta["end"]), k] = label
        said[Segment(delta["start"], delta["end"]), k] = "unknown" if label.startswith("spk_") else label
    der = DiarizationErrorRate(collar=0.25, skip_overlap=False)(reference, hypothesis)
    ier = IdentificationErrorRate(collar=0.25, skip_overlap=False)(known, said)
    return float(der), float(ier)


async def run(repeats: int, realtime: bool = True) -> list[tuple[str, list[tuple[float, float]], list[str]]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        app = Appliance(Path(tmp) / "data", nodes=2)
        try:
            app.wait_for(r"ScaiEcho ready: 2/2")
            names: dict[str, str] = {}
            steps = [("nobody enrolled", None), *((f"{who} enrolled", who) for who in sample_speakers())]
            for title, who in steps:
                if who is not None:
                    reference, consent = enrollment_audio(who)
                    async with aiohttp.ClientSession() as http:
                        created = await enroll(http, app.url, app.key, f"Caller {who[-2:]}", reference, consent, who)
                    names[who] = str(created["display_name"])
                results, majorities = [], []
                for _ in range(repeats):
                    result = await stream(app.url, app.key, sample_audio(), diarize=True, realtime=realtime)
                    results.append(scores(result.deltas, names))
                    majorities.append(str(majority_labels(result.deltas, sample_turns())))
                rows.append((title if who is None or len(names) == 1 else "both enrolled", results, majorities))
        finally:
            app.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--fast", action="store_true", help="send the call as fast as the server takes it")
    args = parser.parse_args()
    rows = asyncio.run(run(args.repeats, realtime=not args.fast))
    pace = "sent as fast as possible" if args.fast else "real time"
    print(f"\npyannote sample, {pace} through the appliance (pyannote.metrics, collar 0.25 s)\n")
    print("| enrolled | DER | identification error rate | each caller's main label |\n|---|---:|---:|---|")
    for title, results, majorities in rows:
        der = statistics.mean(r[0] for r in results)
        ier = statistics.mean(r[1] for r in results)
        spread = f" ({min(r[0] for r in results):.1%}-{max(r[0] for r in results):.1%})" if len(results) > 1 else ""
        print(f"| {title} | {der:.1%}{spread} | {ier:.1%} | {'; '.join(sorted(set(majorities)))} |")


if __name__ == "__main__":
    main()
