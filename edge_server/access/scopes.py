"""Scopes and the rules between them; pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.contract import ADMIN, ALL_SCOPES, DIARIZE, ENROLL, TRANSCRIBE

__all__ = ["ADMIN", "ALL_SCOPES", "DIARIZE", "ENROLL", "TRANSCRIBE", "Principal", "missing_scope"]


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key of one tenant, with its scopes."""

    key_id: str
    tenant_id: str
    scopes: frozenset[str]


def missing_scope(held: frozenset[str], required: str) -> str | None:
    """The scope that ``held`` lacks for ``required`` (diarize also needs transcribe), or None.

    No scope implies another: admin does not grant enroll.
    """
    needed = (TRANSCRIBE, DIARIZE) if required == DIARIZE else (required,)
    for scope in needed:
        if scope not in held:
            return scope
    return None


def unknown_scopes(requested: list[str]) -> list[str]:
    """Requested scope names that do not exist."""
    return [s for s in requested if s not in ALL_SCOPES]


def ungrantable_scopes(creator: frozenset[str], requested: list[str]) -> list[str]:
    """Scopes a key creator asks for but does not hold itself (a key never escalates)."""
    return [s for s in requested if s not in creator]
