"""Tenant transcription policy (`auto` | `A` | `B`) and the backend a new session gets from it."""

from __future__ import annotations

from typing import Literal, get_args

from appliance.contract.errors import CodedError

Backend = Literal["auto", "A", "B"]
BACKENDS: tuple[str, ...] = get_args(Backend)


class NoBackend(CodedError):
    """No backend the policy allows can serve: ``code`` and ``message`` go to the client."""


def choose_backend(policy: str, asr_loaded: bool, relay_configured: bool) -> Literal["A", "B"]:
    """The backend a new session uses; `NoBackend` when the policy's choice cannot serve."""
    if policy == "A" or (policy == "auto" and asr_loaded):
        if not asr_loaded:
            raise NoBackend("asr_unavailable", "Backend A (on-box Whisper) is not loaded; ask the operator")
        return "A"
    if not relay_configured:
        if policy == "B":
            raise NoBackend("upstream_unconfigured", "Backend B has no upstream configured; ask the operator")
        raise NoBackend("asr_unavailable", "Backend A is not loaded and no Backend B upstream is configured")
    return "B"


def unavailable_choice(backend: str, relay_configured: bool) -> str | None:
    """Why ``backend`` cannot be chosen on this box (None when it can): B needs a configured upstream."""
    if backend == "B" and not relay_configured:
        return (
            "Backend B has no upstream configured on this appliance, so every stream would fail; "
            "the operator sets [backend_b] url in config.toml first"
        )
    return None
