"""Is a new reference recording a second profile of someone already enrolled? Score tables.

Profiles and second references are ~20 s of VAD-trimmed speech, each from different utterances.
Same person: the 5 LibriSpeech test-other speakers of ../shared/data, every pair of disjoint
20 s chunks of one speaker. Different people: the chunks of two test-other speakers, and the 60
train-clean-100 speakers (one utterance each) against every test-other chunk. The table gives,
per threshold, the share of same-person pairs flagged (the duplicate warning fires) and of
different-person pairs flagged (a false warning; were it used to join profiles, a wrong merge).

    python -m benchmarks.duplicates [--chunk-s 20]
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from benchmarks.speaker_scores import DATA, load_speech
from models.audio import SAMPLE_RATE
from models.registry import load_embedder
from models.settings import ModelSettings

THRESHOLDS = (0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.93)


def chunks(speech: np.ndarray, seconds: float) -> list[np.ndarray]:
    """Consecutive chunks of ``seconds`` (a shorter tail is dropped)."""
    size = int(seconds * SAMPLE_RATE)
    return [speech[i : i + size] for i in range(0, len(speech) - size + 1, size)]


def main() -> None:
    """Embed, score, print."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunk-s", type=float, default=20.0)
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is missing: this benchmark needs ../shared/data")
    embedder = load_embedder(ModelSettings())

    def unit(samples: np.ndarray) -> np.ndarray:
        vector = embedder.embed(samples)
        return vector / np.linalg.norm(vector)

    known: dict[str, list[np.ndarray]] = {}
    for folder in sorted((DATA / "test-other").iterdir()):
        speech = np.concatenate([load_speech(p) for p in sorted(folder.glob("*.flac"))])
        known[folder.name] = [unit(c) for c in chunks(speech, args.chunk_s)]
    others = [unit(load_speech(p)) for p in sorted((DATA / "train-clean-100").rglob("*.flac"))]

    same = [float(a @ b) for vectors in known.values() for a, b in itertools.combinations(vectors, 2)]
    different = [float(a @ b) for (_, va), (_, vb) in itertools.combinations(known.items(), 2) for a in va for b in vb]
    different += [float(a @ o) for vectors in known.values() for a in vectors for o in others]
    same_arr, diff_arr = np.array(same), np.array(different)
    pairs = f"{len(same)} same-person pairs, {len(different)} different-person pairs"
    print(f"{embedder.model_name}, {args.chunk_s:g} s chunks: {pairs}")
    print(
        f"same person: min {same_arr.min():.3f}, p5 {np.percentile(same_arr, 5):.3f}, median {np.median(same_arr):.3f}"
    )
    print(
        f"different people: max {diff_arr.max():.3f}, p99 {np.percentile(diff_arr, 99):.3f}, "
        f"median {np.median(diff_arr):.3f}"
    )
    print()
    print("| threshold | same person flagged | different people flagged |")
    print("|---:|---:|---:|")
    for threshold in THRESHOLDS:
        print(f"| {threshold:.2f} | {np.mean(same_arr >= threshold):.1%} | {np.mean(diff_arr >= threshold):.2%} |")


if __name__ == "__main__":
    main()
