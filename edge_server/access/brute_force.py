"""Brute-force limiting of API key checks: failed attempts per client address and per key id.

A wrong key costs an attacker nothing but a round trip, so after ``limit`` failures within
``window_s`` from one address (or against one key id, from anywhere) every further attempt is
answered 429 with ``Retry-After`` until the window has room again: also the correct key, so the
guessing stops paying. Successful checks are never counted. State is in memory, bounded.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from edge_server.errors import ApiError

#: Buckets kept at most; the least recently used go first (an attacker spraying addresses
#: cannot grow memory without bound).
MAX_BUCKETS = 50_000


@dataclass(frozen=True)
class GuardLimits:
    """How many failures a window tolerates, per address and per key id."""

    per_address: int
    per_key: int
    window_s: float


class AuthGuard:
    """Sliding windows of failed key checks."""

    def __init__(self, limits: GuardLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, bucket: str, now: float) -> deque[float]:
        times = self._failures.get(bucket)
        if times is None:
            return deque()
        while times and times[0] <= now - self.limits.window_s:
            times.popleft()
        return times

    def retry_after(self, address: str | None, key_id: str | None) -> int:
        """Seconds until an attempt from ``address`` for ``key_id`` is checked again (0: now)."""
        now = self._clock()
        wait = 0.0
        for bucket, limit in self._buckets(address, key_id):
            times = self._recent(bucket, now)
            if len(times) >= limit:
                wait = max(wait, times[0] + self.limits.window_s - now)
        return math.ceil(wait)

    def failed(self, address: str | None, key_id: str | None) -> None:
        """Count one failed check."""
        now = self._clock()
        for bucket, _ in self._buckets(address, key_id):
            times = self._recent(bucket, now)
            times.append(now)
            self._failures[bucket] = times
            self._failures.move_to_end(bucket)
        while len(self._failures) > MAX_BUCKETS:
            self._failures.popitem(last=False)

    def _buckets(self, address: str | None, key_id: str | None) -> list[tuple[str, int]]:
        buckets = []
        if address:
            buckets.append((f"addr:{address}", self.limits.per_address))
        if key_id:
            buckets.append((f"key:{key_id}", self.limits.per_key))
        return buckets


def key_id_of(token: str | None) -> str | None:
    """The id part of an ``sce_<id>_<secret>`` key (None when the token has another shape)."""
    parts = (token or "").split("_", 2)
    return parts[1] if len(parts) == 3 and parts[1] else None


def too_many_attempts(seconds: int) -> ApiError:
    """429 with ``Retry-After``."""
    return ApiError(
        429,
        "rate_limited",
        f"too many failed API key checks from this address or for this key; try again in {seconds} s",
        {"retry_after_s": seconds},
        headers={"Retry-After": str(seconds)},
    )
