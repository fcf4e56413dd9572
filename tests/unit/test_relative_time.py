"""Relative times, as the console and the desktop client show them."""

from __future__ import annotations

from datetime import UTC, datetime

from appliance.clock import relative_time

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


def test_relative_times_read_like_a_person_says_them() -> None:
    assert relative_time("2026-11-24T11:59:58.000Z", NOW) == "2 s ago"
    assert relative_time("2026-11-24T11:55:00.000Z", NOW) == "5 min ago"
    assert relative_time("2026-11-24T09:00:00.000Z", NOW) == "3 h ago"
    assert relative_time("2026-11-20T12:00:00.000Z", NOW) == "4 d ago"
    assert relative_time("2026-11-24T12:00:30.000Z", NOW) == "in 30 s"
    assert relative_time(None, NOW) == "—"
