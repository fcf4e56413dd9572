"""When each stretch of a stream's audio arrived, to time how late its words went out final."""

from __future__ import annotations

from collections import deque


class Arrivals:
    """(samples received so far, monotonic time) pairs: at most one per 10 ms, none older than
    ``horizon`` samples behind the newest (a word older than that cannot still be waiting), so a
    long silent session holds a bounded number of them."""

    def __init__(self, horizon: int) -> None:
        self.horizon = horizon
        self._marks: deque[tuple[int, float]] = deque()

    def arrived(self, received: int, now: float) -> None:
        """The audio up to sample ``received`` is here at ``now``."""
        if self._marks and now - self._marks[-1][1] < 0.01:
            self._marks[-1] = (received, self._marks[-1][1])  # that close: a few ms early at most
        else:
            self._marks.append((received, now))
        while len(self._marks) > 1 and self._marks[0][0] < received - self.horizon:
            self._marks.popleft()

    def time_of(self, sample: int) -> float | None:
        """When audio sample ``sample`` arrived; forgets what is older (ask in stream order)."""
        while len(self._marks) > 1 and self._marks[0][0] < sample:
            self._marks.popleft()
        return self._marks[0][1] if self._marks else None

    def __len__(self) -> int:
        return len(self._marks)
