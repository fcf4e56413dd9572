"""How well the nodes' speaker scores (CAM++ by default) separate enrolled from unknown voices.

Enrolls the 5 LibriSpeech test-other speakers of ../shared/data from their first utterances
(~20 s of speech each), then scores held-out utterances of the same speakers (genuine) and the
60 train-clean-100 speakers (unknown) against all five, whole and cut into phrase-length pieces.
For a cosine threshold, and for a threshold plus a margin over the runner-up, it reports the
share of genuine speech labelled with the right name and the share of unknown speech given a name.

    python -m benchmarks.speaker_scores [--reference-s 20] [--piece-s 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from models.audio import SAMPLE_RATE, decode
from models.registry import load_embedder
from models.settings import ModelSettings
from models.vad import speech_only, speech_regions

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "librispeech"


def load_speech(path: Path) -> np.ndarray:
    """An utterance's speech regions at 16 kHz."""
    audio = decode(path.read_bytes(), 600).samples
    return speech_only(audio, speech_regions(audio))


def pieces(speech: np.ndarray, seconds: float | None) -> list[np.ndarray]:
    """The whole utterance, or consecutive pieces of ``seconds`` (a shorter tail is dropped)."""
    if seconds is None:
        return [speech]
    size = int(seconds * SAMPLE_RATE)
    return [speech[i : i + size] for i in range(0, len(speech) - size + 1, size)]


def rates(scores: np.ndarray, truth: np.ndarray, threshold: float, margin: float) -> tuple[float, float]:
    """(genuine labelled right, unknown given a name) for a threshold and a runner-up margin."""
    order = np.sort(scores, axis=1)
    top, second = order[:, -1], order[:, -2]
    named = (top >= threshold) & (top - second >= margin)
    best = scores.argmax(axis=1)
    genuine = truth >= 0
    right = float(np.mean(named[genuine] & (best[genuine] == truth[genuine])))
    false = float(np.mean(named[~genuine])) if (~genuine).any() else 0.0
    return right, false


def main() -> None:
    """Enroll, score, print."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference-s", type=float, default=20.0)
    parser.add_argument("--piece-s", type=float, default=3.0)
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is missing: this benchmark needs ../shared/data")
    embedder = load_embedder(ModelSettings())
    enrolled: list[np.ndarray] = []
    held_out: list[tuple[int, np.ndarray]] = []
    for index, folder in enumerate(sorted((DATA / "test-other").iterdir())):
        collected: list[np.ndarray] = []
        for path in sorted(folder.glob("*.flac")):
            speech = load_speech(path)
            if sum(len(c) for c in collected) < args.reference_s * SAMPLE_RATE:
                collected.append(speech)
            else:
                held_out.append((index, speech))
        enrolled.append(embedder.embed(np.concatenate(collected)))
    unknown = [(-1, load_speech(p)) for p in sorted((DATA / "train-clean-100").glob("*.flac"))]
    matrix = np.stack(enrolled)
    print(f"\n{embedder.model_name}; {len(enrolled)} enrolled ({args.reference_s:g} s reference each), "
          f"{len(held_out)} held-out utterances, {len(unknown)} unknown speakers")  # fmt: skip
    for label, seconds in (("whole utterances", None), (f"{args.piece_s:g} s pieces", args.piece_s)):
        rows = [(truth, piece) for truth, speech in held_out + unknown for piece in pieces(speech, seconds)]
        scores = np.stack([matrix @ embedder.embed(piece) for _, piece in rows])
        truth = np.array([t for t, _ in rows])
        print(f"\n{label}: {int((truth >= 0).sum())} genuine, {int((truth < 0).sum())} unknown")
        print("| threshold | margin | genuine labelled right | unknown given a name |")
        print("|----------:|-------:|-----------------------:|---------------------:|")
        for threshold in (
            (0.70, 0.75, 0.80, 0.85) if embedder.model_name.startswith("ge2e") else (0.40, 0.50, 0.60, 0.70)
        ):
            for margin in (0.0, 0.05, 0.10):
                right, false = rates(scores, truth, threshold, margin)
                print(f"| {threshold:.2f} | {margin:.2f} | {right:.1%} | {false:.1%} |")


if __name__ == "__main__":
    main()
