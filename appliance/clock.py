"""Timestamps as the API shows them: UTC, ISO 8601, millisecond precision, ``Z`` suffix."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> str:
    """Now, e.g. ``2026-11-23T20:47:55.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def relative_time(iso: str | None, now: datetime | None = None) -> str:
    """An API timestamp as people say it: ``2 s ago``, ``5 min ago``, ``3 h ago``, ``4 d ago``, ``in 30 s``."""
    if not iso:
        return "—"
    then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    seconds = ((now or datetime.now(UTC)) - then).total_seconds()
    ahead, span = seconds < 0, abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if span >= size:
            text = f"{int(span // size)} {unit}"
            break
    else:
        text = f"{int(span)} s"
    return f"in {text}" if ahead else f"{text} ago"
