"""A transcript's segments as SRT, WebVTT (speaker names in the cues) and RTTM."""

from __future__ import annotations

import re
from collections.abc import Sequence

from edge_server.streaming.protocol import DeltaFrame

FORMATS = {
    "json": "application/json",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
    "rttm": "text/plain",
}


def _clock(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_text(segment: DeltaFrame) -> str:
    return f"{segment.speaker_label}: {segment.text}" if segment.speaker_label else segment.text


def cue_ends(segments: Sequence[DeltaFrame]) -> list[float]:
    """Each cue's end, cut back to the next cue's start: players show overlapping cues stacked.

    (RTTM keeps the true times: there, overlap is information.)
    """
    ends = [s.end for s in segments]
    for i in range(len(segments) - 1):
        ends[i] = max(segments[i].start, min(ends[i], segments[i + 1].start))
    return ends


def to_srt(segments: Sequence[DeltaFrame]) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm``, the speaker's name before the text, no overlaps."""
    cues = [
        f"{i}\n{_clock(s.start, ',')} --> {_clock(end, ',')}\n{_cue_text(s)}\n"
        for i, (s, end) in enumerate(zip(segments, cue_ends(segments), strict=True), start=1)
    ]
    return "\n".join(cues)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(segments: Sequence[DeltaFrame]) -> str:
    """WebVTT: the speaker in a voice span (``<v Alice>``), which players show as the speaker."""
    cues = ["WEBVTT\n"]
    for s, end in zip(segments, cue_ends(segments), strict=True):
        text = _vtt_escape(s.text)
        if s.speaker_label:
            text = f"<v {_vtt_escape(s.speaker_label)}>{text}"
        cues.append(f"{_clock(s.start, '.')} --> {_clock(end, '.')}\n{text}\n")
    return "\n".join(cues)


def _rttm_name(label: str) -> str:
    """RTTM fields are space-separated: names keep their letters, whitespace becomes `_`."""
    return re.sub(r"\s+", "_", label.strip()) or "unknown"


def to_rttm(segments: Sequence[DeltaFrame], file_id: str) -> str:
    """NIST RTTM `SPEAKER` lines for labelled segments (unlabelled speech has no line)."""
    lines = [
        f"SPEAKER {_rttm_name(file_id)} 1 {s.start:.3f} {s.end - s.start:.3f} <NA> <NA> "
        f"{_rttm_name(s.speaker_label)} <NA> <NA>"
        for s in segments
        if s.speaker_label
    ]
    return "".join(line + "\n" for line in lines)
