"""From a phrase's words and speaker turns to its deltas: pure functions, no I/O.

One delta per run of words with the same speaker label. Deltas tile the phrase: the VAD's bounds
outside, and halfway between the last word of one speaker and the first of the next inside, so
the transcript has no gaps and no overlaps.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from edge_server.streaming.diarization import Label
from edge_server.streaming.protocol import DeltaFrame
from models.base import Segment, Word


def phrase_words(segments: Sequence[Segment]) -> list[Word]:
    """Every word of a phrase; a segment without word timings counts as one word."""
    words: list[Word] = []
    for segment in segments:
        words.extend(segment.words or (Word(segment.start, segment.end, " " + segment.text),))
    return [w for w in words if w.text.strip()]


def phrase_deltas(
    words: Sequence[Word],
    labels: Sequence[Label | None],
    offset_s: float,
    duration_s: float,
    first_id: int,
) -> list[DeltaFrame]:
    """The deltas of words tiling a stretch starting ``offset_s`` into the stream and lasting ``duration_s``
    (word times from its start); none without words."""
    if not words:
        return []
    groups: list[tuple[Label | None, list[Word]]] = []
    for word, label in zip(words, labels, strict=True):
        if groups and (groups[-1][0] and groups[-1][0].label) == (label and label.label):
            groups[-1][1].append(word)
        else:
            groups.append((label, [word]))
    cuts = [(a[1][-1].end + b[1][0].start) / 2 for a, b in itertools.pairwise(groups)]
    edges = [0.0, *(min(max(c, 0.0), duration_s) for c in cuts), duration_s]
    return [
        DeltaFrame(
            segment_id=first_id + i,
            text="".join(w.text for w in group).strip(),
            start=round(offset_s + start, 3),
            end=round(offset_s + end, 3),
            speaker_label=label.label if label else None,
            speaker_id=label.speaker_id if label else None,
            speaker_confidence=label.confidence if label else None,
        )
        for i, ((label, group), (start, end)) in enumerate(zip(groups, itertools.pairwise(edges), strict=True))
    ]
