"""Who spoke the words a delta makes final: the session's speaker decision applied to words (pure).

A decode's audio comes with sliding-window embeddings (`Window`, times from the audio start) and,
when the node segmented it, its turns (one local speaker each, with that speaker's voice); without
them the windows are cut into turns where the voice changes (`split_turns`). Each word belongs to
the turn holding its middle. A turn's name is decided once per delta with all the audio heard of it so far
as evidence (windows after the final words included), but what it adds to the session's voices is
the windows centred on the words made final now, for their seconds only, so audio re-decoded for
context is not counted twice and a voice learns the words it labels, not their neighbours.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from appliance.settings import DiarizationSettings
from edge_server.streaming.diarization import Label, SessionSpeakers, Turn, Voice, Window, merge, split_turns
from models.base import Word

#: How far around the final words a window's centre may lie to count as hearing them.
FOCUS_PAD_S = 0.3


def turn_of(words: Sequence[Word], turns: Sequence[Turn]) -> list[int]:
    """Index of the turn holding each word's middle (times from the same origin)."""
    bounds = [t.end for t in turns[:-1]]
    return [bisect.bisect(bounds, (w.start + w.end) / 2) for w in words]


def focus(words: Sequence[Word], turn: Turn, windows: Sequence[Window]) -> Voice:
    """The voice of the windows centred on ``words`` (within ``turn``), else the turn's voice: what the
    session's clustering learns from these words, without the turn's audio before and after them.
    A turn the node cut (segmentation) has a voice heard on its own speaker's speech only: that one."""
    if turn.evidence_s is not None:
        return turn.voice
    low = max(turn.start, min(w.start for w in words) - FOCUS_PAD_S)
    high = min(turn.end, max(w.end for w in words) + FOCUS_PAD_S)
    near = [w for w in windows if low <= (w.start + w.end) / 2 <= high]
    return merge(near) if near else turn.voice


def label_words(
    speakers: SessionSpeakers,
    words: Sequence[Word],
    tentative: Sequence[Word],
    windows: Sequence[Window],
    duration_s: float,
    live: dict[str, str],
    settings: DiarizationSettings,
    turns: Sequence[Turn] | None = None,
) -> tuple[list[Label | None], Label | None]:
    """Labels of the final ``words`` (deciding, so the session learns), and a provisional label of
    the ``tentative`` words (learning nothing). Word times are seconds from the audio start.
    ``turns``: the stretch's turns when the node cut them (segmentation), else cut from ``windows``."""
    if turns is None:
        turns = split_turns(windows, duration_s, live, settings, speakers.same_voice)
    if not turns:
        return [None] * len(words), None
    owners = turn_of(words, turns)
    used = sorted(set(owners))
    spans = {i: sum(w.end - w.start for w, o in zip(words, owners, strict=True) if o == i) for i in used}
    speakers.observe([(turns[i].voice, turns[i].seconds) for i in used], live)
    decided = {
        i: speakers.decide(
            turns[i].voice,
            turns[i].seconds,
            live,
            weight=max(spans[i], 0.01),
            heard=focus([w for w, o in zip(words, owners, strict=True) if o == i], turns[i], windows),
        )
        for i in used
    }
    provisional = None
    if tentative:
        turn = turns[turn_of(tentative[:1], turns)[0]]
        provisional = speakers.peek(turn.voice, turn.seconds, live)
    return [decided[o] for o in owners], provisional
