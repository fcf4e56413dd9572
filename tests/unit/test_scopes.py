"""Scope rules."""

from __future__ import annotations

from edge_server.access.scopes import (
    ADMIN,
    DIARIZE,
    ENROLL,
    TRANSCRIBE,
    missing_scope,
    ungrantable_scopes,
    unknown_scopes,
)


def test_exact_scope_is_enough() -> None:
    assert missing_scope(frozenset({ENROLL}), ENROLL) is None


def test_no_scope_implies_another() -> None:
    assert missing_scope(frozenset({ADMIN}), ENROLL) == ENROLL
    assert missing_scope(frozenset({ADMIN, DIARIZE}), TRANSCRIBE) == TRANSCRIBE


def test_diarize_needs_transcribe_too() -> None:
    assert missing_scope(frozenset({DIARIZE}), DIARIZE) == TRANSCRIBE
    assert missing_scope(frozenset({TRANSCRIBE}), DIARIZE) == DIARIZE
    assert missing_scope(frozenset({TRANSCRIBE, DIARIZE}), DIARIZE) is None


def test_keys_never_escalate() -> None:
    assert ungrantable_scopes(frozenset({ENROLL, ADMIN}), [ENROLL, TRANSCRIBE]) == [TRANSCRIBE]
    assert unknown_scopes(["scaiecho:enroll", "scaiecho:root"]) == ["scaiecho:root"]
