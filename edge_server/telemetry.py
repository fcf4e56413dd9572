"""The edge server's Prometheus counters (served by edge_server/metrics.py)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
REQUEST_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0)


class Metrics:
    """The edge server's counters, on a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "scaiecho_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "scaiecho_http_request_duration_seconds",
            "Time to answer an HTTP request (WebSocket streams excluded).",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.enrollments = Counter(
            "scaiecho_enrollments",
            "Enrollment requests by outcome: the status a created speaker got, or rejected.",
            ["outcome"],
            registry=self.registry,
        )
        self.erasures = Counter("scaiecho_erasures", "Completed speaker erasures.", registry=self.registry)
        self.audit_head = Gauge(
            "scaiecho_erasure_audit_head_seq",
            "Sequence number of the newest erasure audit row this process wrote (compare with `audit verify`).",
            registry=self.registry,
        )
        self.streams_open = Gauge("scaiecho_streams_open", "Open transcription streams.", registry=self.registry)
        self.stream_latency = Histogram(
            "scaiecho_stream_word_delay_seconds",
            "From the arrival of a word's last audio to the delta that makes it final being sent.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.nodes_online = Gauge(
            "scaiecho_nodes_online", "Pyannote nodes with a current heartbeat.", registry=self.registry
        )
        self.asr_decodes = Gauge(
            "scaiecho_asr_decodes",
            "Whisper decodes since start by kind (final, ahead, partial) and outcome (used; wasted: run, but "
            "speech went on past a guessed close; dropped before running; failed).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.asr_decode_seconds = Gauge(
            "scaiecho_asr_decode_seconds",
            "Seconds Whisper's workers spent on those decodes.",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.asr_load = Gauge(
            "scaiecho_asr_load", "Share of the last seconds Backend A spent on phrases.", registry=self.registry
        )
