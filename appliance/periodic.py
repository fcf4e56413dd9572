"""A background loop that runs a coroutine function every N seconds until cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable


async def _loop(tick: Callable[[], Awaitable[None]], interval_s: float, log: logging.Logger, delay_first: bool) -> None:
    current = asyncio.current_task()
    if delay_first:
        await asyncio.sleep(interval_s)
    # Some clients (redis-py) swallow a cancellation or turn it into their own error; the
    # task's pending cancellation request is checked explicitly so the loop still ends.
    while current is None or not current.cancelling():
        try:
            await tick()
        except Exception:
            if current is not None and current.cancelling():
                break
            log.warning("periodic task failed; retrying", exc_info=True)
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def running_every(
    interval_s: float,
    tick: Callable[[], Awaitable[None]],
    log: logging.Logger,
    delay_first: bool = False,
) -> AsyncIterator[None]:
    """Run ``tick`` every ``interval_s`` seconds while the context is open."""
    task = asyncio.create_task(_loop(tick, interval_s, log, delay_first))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
