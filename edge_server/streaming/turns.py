"""Where a stretch of audio changes speaker (pure): cut points from the windows themselves.

Two kinds of evidence cut a stretch into turns:

- **the voice changes**: at each window start, the windows that end before it are compared with
  the windows that start there (up to ``CHANGE_CONTEXT`` on each side, so the window straddling
  the point is left out). A cosine below ``change_below``, for the two sides' means and for each
  window against the other side, is a change (so one odd window is none). Consecutive such points
  are one change, placed at the first that is clearly below (halfway from the threshold to the
  run's lowest cosine). This needs no enrolled speaker, so two voices nobody enrolled are told apart.
- **the enrolled guess changes**: each window's provisional speaker (the best enrolled speaker
  when the window alone reaches ``window_accept`` with ``margin``, else "someone else"); runs
  shorter than ``min_turn_windows`` do not count.

Cuts closer than ``min_turn_s`` to another cut or to either end are dropped, the weakest first
(enrolled-guess cuts count as strongest), so no turn is too short to embed. Each turn's voice is
the merge of the windows inside it (else of those centred in it).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet

import numpy as np

from appliance.settings import DiarizationSettings
from edge_server.streaming.evidence import Turn, Window, merge

#: Windows compared on each side of a possible change.
CHANGE_CONTEXT = 2

#: speaker id -> the other profiles of the same voice (one person enrolled more than once).
SameVoice = Mapping[str, AbstractSet[str]]


def runner_up(ranked: Sequence[tuple[float, str]], same_voice: SameVoice) -> float:
    """The best score of another person than ``ranked[0]``'s: profiles of the same voice are skipped,
    so a person enrolled twice is not held back by a margin against herself."""
    top = ranked[0][1]
    twins = same_voice.get(top, frozenset())
    return next((score for score, speaker in ranked[1:] if speaker not in twins), -1.0)


def _unit(vectors: list[np.ndarray]) -> np.ndarray:
    mean = np.mean(vectors, axis=0)
    return np.asarray(mean / (np.linalg.norm(mean) or 1.0))


def voice_changes(windows: Sequence[Window], change_below: float) -> list[tuple[float, float]]:
    """(time, cosine) of each point where the voice before and after differ most locally."""
    candidates: list[tuple[int, float]] = []
    for j in range(1, len(windows)):
        point = windows[j].start
        left = [w.embedding for w in windows[:j] if w.end <= point + 1e-6][-CHANGE_CONTEXT:]
        right = [w.embedding for w in windows[j:]][:CHANGE_CONTEXT]
        if not left or not right:
            continue
        before, after = _unit(left), _unit(right)
        cosine = float(np.dot(before, after))
        # every window on each side must differ from the other side: one odd window is no change
        consistent = all(float(np.dot(v, after)) < change_below for v in left) and all(
            float(np.dot(v, before)) < change_below for v in right
        )
        if cosine < change_below and consistent:
            candidates.append((j, cosine))
    # consecutive candidates are one change: where its windows first clearly differ (the points after
    # it still have only the old voice on the left, until a whole window has passed)
    changes = []
    k = 0
    while k < len(candidates):
        run = [candidates[k]]
        while k + 1 < len(candidates) and candidates[k + 1][0] == candidates[k][0] + 1:
            k += 1
            run.append(candidates[k])
        lowest = min(cosine for _, cosine in run)
        clear = lowest + 0.5 * (change_below - lowest)
        j, cosine = next((j, c) for j, c in run if c <= clear)
        changes.append((windows[j].start, lowest))
        k += 1
    return changes


def enrolled_changes(
    windows: Sequence[Window], live: Iterable[str], settings: DiarizationSettings, same_voice: SameVoice
) -> list[float]:
    """Times where the windows' provisional enrolled speaker changes (halfway between the runs)."""
    allowed = set(live)
    guesses: list[str | None] = []
    for window in windows:
        ranked = sorted(((v, k) for k, v in window.scores.items() if k in allowed), reverse=True)
        if not ranked:
            guesses.append(None)
            continue
        best, speaker = ranked[0]
        ok = best >= settings.window_accept and best - runner_up(ranked, same_voice) >= settings.margin
        guesses.append(speaker if ok else None)
    runs: list[list[int]] = []
    for i, guess in enumerate(guesses):
        if runs and guesses[runs[-1][0]] == guess:
            runs[-1].append(i)
        else:
            runs.append([i])
    merged: list[tuple[str | None, list[int]]] = []
    for run in runs:
        guess = guesses[run[0]]
        if merged and (len(run) < settings.min_turn_windows or merged[-1][0] == guess):
            merged[-1][1].extend(run)
            continue
        if merged and len(merged[-1][1]) < settings.min_turn_windows:  # a short first run
            run = merged.pop()[1] + run
        merged.append((guess, run))
    cuts = []
    for k in range(len(merged) - 1):
        last, following = windows[merged[k][1][-1]], windows[merged[k + 1][1][0]]
        cuts.append(((last.start + last.end) / 2 + (following.start + following.end) / 2) / 2)
    return cuts


def split_turns(
    windows: Sequence[Window],
    duration_s: float,
    live: Iterable[str],
    settings: DiarizationSettings,
    same_voice: SameVoice | None = None,
) -> list[Turn]:
    """Cut a stretch where its voice changes; the label of each turn is decided later, on its merged evidence."""
    if not windows:
        return []
    candidates = [(-1.0, t) for t in enrolled_changes(windows, live, settings, same_voice or {})]
    candidates += [(cosine, t) for t, cosine in voice_changes(windows, settings.change_below)]
    cuts: list[float] = []
    for _, t in sorted(candidates):
        if min(t, duration_s - t) < settings.min_turn_s:
            continue
        if all(abs(t - c) >= settings.min_turn_s for c in cuts):
            cuts.append(t)
    bounds = [0.0, *sorted(cuts), duration_s]
    turns = []
    for start, end in itertools.pairwise(bounds):
        inside = [w for w in windows if w.start >= start - 0.1 and w.end <= end + 0.1]
        inside = inside or [w for w in windows if start <= (w.start + w.end) / 2 < end]
        if not inside:  # a turn shorter than a window: the window whose centre is nearest
            middle = (start + end) / 2
            inside = [min(windows, key=lambda w: abs((w.start + w.end) / 2 - middle))]
        turns.append(Turn(start, end, merge(inside)))
    return turns
