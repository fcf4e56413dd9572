"""Enrollment status transitions."""

from __future__ import annotations

from edge_server.cluster import NodeResult
from edge_server.speakers.store import decode_cursor, encode_cursor, status_after_fanout, status_from_holders

OK = NodeResult("node-1", ok=True)
REFUSED = NodeResult("node-2", ok=False, error="too short", refused=True)
TIMEOUT = NodeResult("node-3", ok=False, error="timeout")


def test_any_acceptance_is_ready() -> None:
    assert status_after_fanout({"node-1": OK, "node-2": REFUSED}) == ("ready", None)


def test_no_node_stays_pending() -> None:
    assert status_after_fanout({}) == ("pending", None)


def test_all_refused_is_failed_with_reason() -> None:
    assert status_after_fanout({"node-2": REFUSED}) == ("failed", "too short")


def test_timeouts_are_not_refusals() -> None:
    assert status_after_fanout({"node-2": REFUSED, "node-3": TIMEOUT}) == ("pending", None)


def test_holders_drive_ready_and_evicted() -> None:
    assert status_from_holders("ready", []) == "evicted"
    assert status_from_holders("evicted", ["node-1"]) == "ready"
    assert status_from_holders("pending", ["node-1"]) == "ready"
    assert status_from_holders("pending", []) == "pending"
    assert status_from_holders("failed", ["node-1"]) == "failed"


def test_cursor_round_trip() -> None:
    row = {"created_at": "2026-11-23T20:00:00.000Z", "id": "spk_1"}
    assert decode_cursor(encode_cursor(row)) == ("2026-11-23T20:00:00.000Z", "spk_1")
