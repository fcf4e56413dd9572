"""Which backend a tenant's new session uses, and a transcription session wired to the box's engines."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web

from edge_server import appkeys
from edge_server.access.scopes import Principal
from edge_server.speakers.voices import TenantVoices
from edge_server.storage import policies
from edge_server.streaming.policy import choose_backend
from edge_server.streaming.session import Transcription
from edge_server.streaming.transcribers import PhraseTranscriber, RelayTranscriber


def backend_for(app: web.Application, tenant_id: str) -> Literal["A", "B"]:
    """The backend the tenant's policy picks now; `NoBackend` when none can serve."""
    policy = policies.read(app[appkeys.DB], tenant_id, app[appkeys.SETTINGS].consent).backend
    return choose_backend(policy, app[appkeys.ASR] is not None, app[appkeys.RELAY].configured)


def new_session(
    app: web.Application, principal: Principal, backend: Literal["A", "B"], emit: Any, **options: Any
) -> Transcription:
    """A session on ``backend``; with ``diarize`` it names the tenant's voices."""
    diarize = options.pop("diarize")
    return Transcription(
        app[appkeys.SETTINGS],
        backend,
        emit,
        transcriber=_transcriber(app, backend),
        voices=TenantVoices(app, principal.tenant_id) if diarize else None,
        on_latency=app[appkeys.METRICS].stream_latency.observe,
        **options,
    )


def _transcriber(app: web.Application, backend: Literal["A", "B"]) -> PhraseTranscriber:
    if backend == "A":
        scheduler = app[appkeys.ASR]
        if scheduler is None:
            raise ValueError("backend A needs the ASR engine (choose_backend never picks it without)")
        return scheduler
    return RelayTranscriber(app[appkeys.RELAY])
