"""What the desktop client's screens show, computed without any window: testable as plain code.

Nothing here imports Qt or does I/O. The screens (gui/window.py) render these values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from appliance.clock import relative_time
from appliance.contract import DIARIZE, ENROLL, TRANSCRIBE
from appliance.contract.frames import (
    DeltaFrame,
    DoneFrame,
    ErrorFrame,
    PartialFrame,
    ReadyFrame,
    parse_server_frame,
)

#: Feature -> the scopes it needs (diarize also needs transcribe, as the API says).
FEATURES = {
    "enroll": (ENROLL,),
    "speakers": (ENROLL,),
    "live": (TRANSCRIBE,),
    "diarize": (TRANSCRIBE, DIARIZE),
}


@dataclass(frozen=True)
class Feature:
    """Whether a screen or control is usable with the current key, and why not."""

    enabled: bool
    reason: str = ""


NOT_CONNECTED = "Connect to an appliance with an API key first."


def features(scopes: set[str] | None) -> dict[str, Feature]:
    """Each feature enabled or disabled with a reason: not connected yet (None), or the missing scope."""
    if scopes is None:
        return {name: Feature(False, NOT_CONNECTED) for name in FEATURES}
    out = {}
    for name, needed in FEATURES.items():
        missing = [s for s in needed if s not in scopes]
        out[name] = Feature(True) if not missing else Feature(False, f"This API key lacks the {missing[0]} scope.")
    return out


def features_text(allowed: dict[str, Feature], connected: bool) -> str:
    """What the Connect screen says the key may do."""
    if not connected:
        return "Connect to see what this key may do."
    return "\n".join(f"{n}: {'yes' if f.enabled else 'no — ' + f.reason}" for n, f in allowed.items())


def meter(level_dbfs: float | None, floor_dbfs: float = -60.0) -> tuple[int, str]:
    """Level meter (value, text): empty and "no signal" when nothing is recording or it is silent."""
    if level_dbfs is None or level_dbfs <= floor_dbfs:
        return int(floor_dbfs), "no signal"
    return int(min(0.0, level_dbfs)), f"{level_dbfs:.0f} dBFS"


def clock(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` past an hour) for elapsed times and timestamps."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def live_status_text(elapsed_s: float, total_s: float | None, transcript: Transcript) -> str:
    """The live view's status line: listening or playing (with progress), then finished."""
    if transcript.done:
        spoken = transcript.audio_s if transcript.audio_s is not None else elapsed_s
        speakers = len(transcript.colours)
        who = f", {speakers} speaker{'s' if speakers != 1 else ''}" if speakers else ""
        count = len(transcript.segments)
        return f"Finished: {count} segment{'s' if count != 1 else ''} from {clock(spoken)} of audio{who}."
    if total_s:
        share = min(100, round(100 * elapsed_s / total_s))
        return f"Playing the file in real time: {clock(elapsed_s)} of {clock(total_s)} ({share} %)."
    return f"Listening: {clock(elapsed_s)}."


def consent_text(full_name: str, purpose: str, operator: str = "ScaiEcho") -> str:
    """The consent statement the speaker reads aloud, prefilled from the form (editable)."""
    name = full_name.strip() or "[your full name]"
    why = purpose.strip().rstrip(".") or "[the purpose]"
    return (
        f"I, {name}, consent to {operator} recording my voice and keeping a voice profile of me "
        f"for this purpose: {why}. I know I can ask for it to be deleted at any time."
    )


#: Preflight issue codes (models/preflight.py) -> what the person can do about them.
ADVICE = {
    "too_short": "Speak longer.",
    "no_speech": "Nothing was heard: check the microphone and speak.",
    "too_quiet": "Move closer to the microphone or speak up.",
    "clipping": "Move back from the microphone or speak more softly.",
    "low_snr": "Find a quieter room.",
    "too_long": "Record a shorter piece.",
}


def advice(issues: list[dict[str, Any]]) -> list[str]:
    """One line per preflight issue: what is wrong and how to fix it."""
    lines = []
    for issue in issues:
        message = str(issue.get("message", issue.get("code", "")))
        tip = ADVICE.get(str(issue.get("code")), "")
        lines.append(message if tip in message else f"{message} {tip}".strip())
    return lines


def _heard(details: dict[str, Any]) -> str:
    heard = (details.get("text") or {}).get("heard")
    return f' The appliance heard: "{heard}".' if heard else ""


def consent_advice(code: str, details: dict[str, Any]) -> str | None:
    """What to record again when the appliance refuses a recording's voice or words, in plain words."""
    text = details.get("text") or {}
    if code == "consent_speaker_mismatch":
        return (
            "The consent recording does not sound like the reference recording. The person being enrolled must "
            "read the consent statement themselves: record the consent again, in their own voice."
        )
    if code == "consent_text_mismatch":
        added = text.get("added_negations") or []
        if added:
            said = ", ".join(f'"{w}"' for w in added)
            advice = f"The consent recording changes the statement (it adds {said}). Record the consent again, "
            advice += "reading the statement exactly as written."
        else:
            advice = "The consent recording does not say the consent statement. Record the consent again, reading "
            advice += "the whole statement aloud as written, in a quiet room."
        return advice + _heard(details)
    if code == "consent_unverifiable":
        return (
            "The appliance cannot check a consent spoken in this language, and this organisation requires the "
            "check. Ask an administrator."
        )
    if code == "reference_speaker_mismatch":
        return (
            "This recording does not sound like the selected person, so it was not added to their profile. "
            "Record the person themselves."
        )
    if code == "consent_check_unavailable":
        return (
            "The appliance cannot check the consent recording right now (it is still starting, or a service is "
            "down). Nothing was stored: try again in a minute."
        )
    return None


def consent_summary(speaker: dict[str, Any]) -> str:
    """One line on the checks of a new speaker's consent recording ('' when the record has none)."""
    proof = (speaker.get("consent") or {}).get("verification")
    if not proof:
        return ""
    if proof.get("passed"):
        voice, text = proof["speaker"], proof["text"]
        return (
            f"Consent verified: the same voice as the reference (score {voice['score']:.2f}) "
            f"saying the statement ({text['match_ratio']:.0%} of its words heard)."
        )
    if proof.get("policy") == "off":
        return "Consent not checked: this organisation has consent checks turned off."
    failed = [
        check.get("reason") or f"the {name} check was {check.get('status')}"
        for name, check in (("voice", proof.get("speaker", {})), ("words", proof.get("text", {})))
        if check.get("status") != "passed"
    ]
    return "Consent NOT verified (enrolled under the warn policy): " + "; ".join(failed) + "."


def explain(status: int | None, body: dict[str, Any] | None, url: str = "") -> str:
    """An API failure in plain words (None status: the appliance could not be reached)."""
    if status is None:
        return f"The appliance at {url or 'this address'} cannot be reached. Check the address and that it is running."
    error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
    code, message = error.get("code", ""), error.get("message", "")
    details = error.get("details", {}) or {}
    if status == 401:
        return "The API key was not accepted (wrong, or revoked). Enter a valid key."
    if status == 403:
        scope = details.get("required_scope")
        return f"This API key lacks the {scope} scope." if scope else "This API key may not do that."
    if (said := consent_advice(code, details)) is not None:
        return said
    if code == "preflight_failed":
        roles = [r for r in ("reference", "consent") if isinstance(details.get(r), dict)]
        lines = [f"The {r} recording did not pass: " + " ".join(advice(details[r].get("issues", []))) for r in roles]
        return "\n".join(lines) or message
    if status >= 500:
        return f"The appliance had a problem ({code or status}): {message}"
    return message or f"The request failed (HTTP {status})."


#: Distinct, readable colours for speakers, in order of first appearance.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


@dataclass(frozen=True)
class Line:
    """Consecutive final segments of one speaker, shown and saved as one line."""

    start: float
    end: float
    label: str | None
    text: str


@dataclass
class Transcript:
    """The live transcript: final segments in order, the current partial, a colour per speaker."""

    segments: list[DeltaFrame] = field(default_factory=list)
    partial: str = ""
    #: Who is probably saying the partial (it may change when it becomes final).
    partial_label: str | None = None
    backend: str = ""
    colours: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    done: bool = False
    #: Seconds of audio the server transcribed (from ``done``).
    audio_s: float | None = None

    def apply(self, data: dict[str, Any]) -> None:
        """Take one server frame as received (JSON)."""
        try:
            frame = parse_server_frame(data)
        except ValidationError:
            self.errors.append(f"the appliance sent a {data.get('type')} frame this client cannot read")
            return
        if isinstance(frame, ReadyFrame):
            self.backend = frame.backend_used
        elif isinstance(frame, PartialFrame):
            self.partial, self.partial_label = frame.text, frame.speaker_label
        elif isinstance(frame, DeltaFrame):
            self.segments.append(frame)
            self.partial, self.partial_label = "", None
            if frame.speaker_label and frame.speaker_label not in self.colours:
                self.colours[frame.speaker_label] = PALETTE[len(self.colours) % len(PALETTE)]
        elif isinstance(frame, ErrorFrame):
            self.errors.append(f"{frame.code}: {frame.message}")
        elif isinstance(frame, DoneFrame):
            self.done = True
            self.partial, self.partial_label = "", None
            self.audio_s = frame.duration_s

    def colour(self, label: str | None) -> str:
        """The colour of a speaker (grey when unlabelled)."""
        return self.colours.get(label or "", "#555555")

    def lines(self, max_gap_s: float = 1.0, max_s: float | None = None) -> list[Line]:
        """Final segments joined while the speaker stays the same and pauses are short (a stream
        sends a phrase's words in several deltas as they become final); at most ``max_s`` long."""
        out: list[Line] = []
        for s in self.segments:
            last = out[-1] if out else None
            if (
                last is not None
                and last.label == s.speaker_label
                and s.start - last.end <= max_gap_s
                and (max_s is None or s.end - last.start <= max_s)
            ):
                out[-1] = Line(last.start, s.end, last.label, f"{last.text} {s.text}")
            else:
                out.append(Line(s.start, s.end, s.speaker_label, s.text))
        return out

    def to_txt(self) -> str:
        """``[mm:ss] Name: text`` per line."""
        rows = []
        for line in self.lines():
            minutes, seconds = divmod(int(line.start), 60)
            who = f"{line.label}: " if line.label else ""
            rows.append(f"[{minutes:02d}:{seconds:02d}] {who}{line.text}")
        return "\n".join(rows) + ("\n" if rows else "")

    def to_srt(self) -> str:
        """SubRip cues of at most 7 s, speaker name before the text."""

        def clock(t: float) -> str:
            ms = max(0, round(t * 1000))
            h, ms = divmod(ms, 3_600_000)
            m, ms = divmod(ms, 60_000)
            s, ms = divmod(ms, 1000)
            return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"

        lines = self.lines(max_s=7.0)
        cues = []
        for i, line in enumerate(lines, start=1):
            who = f"{line.label}: " if line.label else ""
            following = lines[i] if i < len(lines) else None
            end = max(line.start, min(line.end, following.start)) if following else line.end  # no overlaps
            cues.append(f"{i}\n{clock(line.start)} --> {clock(end)}\n{who}{line.text}\n")
        return "\n".join(cues)

    def to_json(self) -> str:
        """The segments as the API sent them."""
        segments = [s.to_dict() for s in self.segments]
        return json.dumps({"backend_used": self.backend, "segments": segments}, indent=2, ensure_ascii=False)


def speaker_rows(speakers: list[dict[str, Any]], text_filter: str = "") -> list[tuple[str, str, str, str, str]]:
    """Table rows (name, language, status, warm node count, created how long ago) matching ``text_filter``."""
    needle = text_filter.strip().lower()
    rows = []
    for s in speakers:
        row = (
            str(s.get("display_name", "")),
            str(s.get("language_primary", "")),
            str(s.get("enrollment_status", "")),
            str(len(s.get("enrolled_on", []) or [])),
            relative_time(s.get("created_at")) if s.get("created_at") else "",
        )
        if not needle or any(needle in cell.lower() for cell in row[:3]):
            rows.append(row)
    return rows


def duplicate_warning(speaker: dict[str, Any]) -> str:
    """What to tell the person when the appliance says this voice is already enrolled ('' when not)."""
    found = speaker.get("possible_duplicates") or []
    if not found:
        return ""
    names = ", ".join(f"{d.get('display_name')} ({float(d.get('score', 0)):.2f})" for d in found)
    return (
        f"Possible duplicate: this voice is very close to {names}. If it is the same person, "
        "erase the profile you do not need in the Speakers tab."
    )
