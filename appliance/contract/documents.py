"""Response documents and request bodies of the HTTP API (docs/api.md), as pydantic models.

Every success is ``{"data": ...}`` (lists add ``next_cursor``), every failure the `ErrorEnvelope`.
Optional fields are omitted from the JSON rather than sent as null unless the contract shows null.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from appliance.contract import Scope
from appliance.contract.consent import ConsentPolicy, ConsentVerification

Status = Literal["pending", "ready", "failed", "evicted"]
Backend = Literal["auto", "A", "B"]
T = TypeVar("T")


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_Document):
    """What went wrong: a stable snake_case code, a sentence for people, machine-readable details."""

    code: str = Field(examples=["invalid_field"])
    message: str
    details: dict[str, Any] | None = None


class ErrorEnvelope(_Document):
    """Every error answer."""

    error: ErrorBody


class Data(_Document, Generic[T]):
    """Every success answer: the document under ``data``."""

    data: T


class Page(_Document, Generic[T]):
    """A list answer: newest first, ``next_cursor`` null on the last page."""

    data: list[T]
    next_cursor: str | None = None


class PreflightIssue(_Document):
    """One thing wrong with a recording; any ``error`` refuses the enrollment."""

    code: str = Field(examples=["too_short", "no_speech", "clipping", "low_snr", "too_quiet"])
    severity: Literal["error", "warning"]
    message: str


class RecordingPreflight(_Document):
    """The measured quality of one recording."""

    duration_s: float
    speech_s: float
    sample_rate_in: int
    channels_in: int
    format: Literal["wav", "mp3", "flac", "ogg", "m4a"]
    rms_dbfs: float
    peak_dbfs: float
    clipping_ratio: float
    snr_db: float | None = None
    repetition: float | None = Field(
        None, description="how much the speech repeats itself (0-1; a looped clip is near 1); absent when too short"
    )
    issues: list[PreflightIssue]


class Preflight(_Document):
    """Both recordings' preflight."""

    passed: bool
    reference: RecordingPreflight
    consent: RecordingPreflight


class ConsentSummary(_Document):
    """The speaker's immutable consent record, as the speaker document shows it."""

    id: str
    recorded_at: str
    consent_audio_sha256: str
    reference_audio_sha256: str
    verification: ConsentVerification | None = Field(
        None, description="absent on records made before consent checks existed"
    )


class PossibleDuplicate(_Document):
    """An enrolled profile the new reference scores very close to (one person enrolled twice?)."""

    speaker_id: str
    display_name: str
    score: float


class AddedReference(_Document):
    """A reference added to a speaker's profile."""

    id: str
    speaker_score: float = Field(description="cosine of the new recording to the profile before it was added")
    threshold: float
    preflight: RecordingPreflight
    added_at: str


class Speaker(_Document):
    """An enrolled speaker."""

    id: str = Field(examples=["spk_3f2a9c0d1e2b4a5f"])
    display_name: str
    language_primary: str
    description: str | None = None
    enrollment_status: Status
    status_reason: str | None = None
    enrolled_on: list[str]
    created_at: str
    consent: ConsentSummary
    preflight: Preflight
    possible_duplicates: list[PossibleDuplicate] | None = None
    reference_count: int = Field(1, description="recordings the profile is embedded from (1 + those added)")
    added_reference: AddedReference | None = Field(None, description="only in the answer to adding one")
    note: str | None = None


class Warm(_Document):
    """Which nodes hold a speaker."""

    speaker_id: str
    warm_node_ids: list[str]
    candidate_node_ids: list[str]
    stale_node_ids: list[str]


class WarmRequest(_Document):
    """Re-warm on these nodes (empty: every candidate)."""

    node_ids: list[str] = []


class NodeOutcome(_Document):
    """One node's answer to a re-warm."""

    ok: bool
    error: str | None = None


class WarmResult(_Document):
    """What a re-warm did."""

    results: dict[str, NodeOutcome]
    enrolled_on: list[str]
    enrollment_status: Status


class ErasureReceipt(_Document):
    """What a GDPR erasure did."""

    speaker_id: str
    audit_id: str
    blob_bytes_deleted: int
    evicted_from: list[str]
    error_summary: dict[str, str]
    deleted_at: str


class Node(_Document):
    """An online node."""

    node_id: str
    #: ``pyannote`` (speaker embeddings), and ``segmentation`` when the node cuts live streams into turns.
    engines: list[str]
    model: str
    started_at: str
    last_heartbeat_at: str
    warm_speakers: int


class ApiKey(_Document):
    """An API key of the tenant (never its secret)."""

    id: str
    name: str
    scopes: list[Scope]
    created_at: str
    revoked_at: str | None


class CreatedKey(ApiKey):
    """A new key: the secret, shown only in this answer."""

    key: str


class KeyRequest(_Document):
    """Create a key with these scopes (never more than the creator holds)."""

    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1)


class Policy(_Document):
    """The tenant's transcription backend, consent checks and retention."""

    backend: Backend
    consent_checks: ConsentPolicy = Field(
        description="enforce: refuse an enrollment whose consent check fails or cannot run; "
        "warn: enroll and record the failure; off: no check"
    )
    retention_days: int = Field(description="a speaker neither enrolled nor named for this long is erased")
    updated_at: str | None


class PolicyUpdate(_Document):
    """Change any of the tenant's policy fields (at least one); each change is audited."""

    backend: Backend | None = None
    consent_checks: ConsentPolicy | None = None
    retention_days: int | None = Field(None, ge=1, le=36_500)


class RetentionDue(_Document):
    """A speaker whose retention ran out: the retention job erases it on its next run."""

    speaker_id: str
    display_name: str
    last_active_at: str = Field(description="enrolled, or last named in a stream")


class ExportAudit(_Document):
    """One subject-access export of a speaker's data (immutable)."""

    seq: int
    id: str
    speaker_id: str
    requested_by_key_id: str
    exported_at: str
    archive_sha256: str
    archive_bytes: int


class PolicyChange(_Document):
    """One audited change of a tenant policy field."""

    seq: int
    field: str
    old_value: str | None
    new_value: str | None
    changed_by_key_id: str
    changed_at: str


class Health(_Document):
    """The box at a glance."""

    status: Literal["ok", "warming", "degraded"]
    redis: Literal["ok", "down"]
    nodes_online: int
    asr: Literal["ok", "down"]
    disk: Literal["ok", "low"]
    warming_nodes: list[str] | None = None


class Segment(_Document):
    """A final segment of a transcript (a `delta` frame without its type)."""

    segment_id: int
    text: str
    start: float
    end: float
    speaker_label: str | None = None
    speaker_id: str | None = None
    speaker_confidence: float | None = None


class Transcription(_Document):
    """A whole file's transcript."""

    backend_used: Literal["A", "B"]
    duration_s: float
    truncated: bool
    segments: list[Segment]


class ConsentAudit(_Document):
    """An immutable consent record."""

    id: str
    speaker_id: str
    user_full_name: str
    stated_purpose: str
    consent_text: str
    consent_audio_sha256: str
    reference_audio_sha256: str
    enrolled_by_key_id: str
    recorded_at: str
    verification: ConsentVerification | None = None


class ErasureAudit(_Document):
    """An immutable, hash-chained erasure audit row."""

    seq: int
    id: str
    speaker_id: str
    consent_id: str
    requested_by_key_id: str
    requested_at: str
    completed_at: str
    blob_ids: list[str]
    blob_bytes_deleted: int
    evicted_from: list[str]
    error_summary: dict[str, str]
    reason: Literal["request", "retention"] | None = Field(
        None, description="request: DELETE /speakers/{id}; retention: the tenant's retention period ran out"
    )
    prev_hash: str
    row_hash: str


class EnrollmentForm(_Document):
    """`POST /speakers`, multipart/form-data: metadata, consent, and both recordings (any of wav,
    mp3, flac, ogg, m4a; decoded on the box). Text is NFC-normalised and trimmed before these
    limits apply; control characters are refused (line breaks allowed in the two long fields)."""

    display_name: str = Field(min_length=1, max_length=200)
    language_primary: str = Field(min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
    description: str | None = Field(None, max_length=2000)
    consent_user_full_name: str = Field(min_length=1, max_length=200)
    consent_stated_purpose: str = Field(min_length=1, max_length=1000)
    consent_text: str = Field(min_length=1, max_length=5000)
    reference: bytes = Field(description="the reference recording (20-30 s of natural speech)")
    consent: bytes = Field(description="the person reading consent_text aloud")


class ReferenceForm(_Document):
    """`POST /speakers/{id}/references`, multipart/form-data: one more recording of the same person."""

    reference: bytes = Field(description="another recording of the enrolled person (any of the enrollment formats)")


class TranscriptionForm(_Document):
    """`POST /transcriptions`, multipart/form-data."""

    file: bytes = Field(description="wav, mp3, flac, ogg or m4a")
    diarize: bool = False
    language_hint: str | None = Field(None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
