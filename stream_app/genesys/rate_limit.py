"""A client-side rate limiter for Genesys Cloud API calls, shared by all tasks of one worker.

Genesys Cloud allows 300 requests per minute per client-credentials token by default and responds
with 429 above that. Waiting before sending is cheaper than a 429 and its Retry-After wait, so every
API attempt (including retries) first takes a slot here. The limiter keeps a log of the send times
of the last 60 seconds, so no 60-second window ever holds more than `limit` sends; a token bucket
refilled at the same average rate could put a full bucket plus a minute's refill into one window.

The limiter does not know about other workers or other programs that use the same OAuth client;
`rate_limit_headroom` in the settings leaves room for them and for clock and network skew.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

from stream_app.observability.metrics import record_rate_limit_wait
from stream_app.settings import GenesysSettings

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0


class SlidingWindowRateLimiter:
    """Admit at most `limit` acquisitions in any `window_seconds` long window.

    A send at time t counts until t + window_seconds, so the window is half-open, as in the
    local emulator. Waiters are served in arrival order because they queue on one asyncio.Lock.
    """

    def __init__(
        self,
        limit: int,
        *,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError(f"rate limit must be at least 1 request per window, got {limit}")
        if window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, got {window_seconds}")
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: GenesysSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> SlidingWindowRateLimiter:
        """Build a limiter of requests_per_minute * rate_limit_headroom per 60 s, at least 1."""
        limit = max(1, math.floor(settings.requests_per_minute * settings.rate_limit_headroom))
        return cls(limit, clock=clock, sleep=sleep)

    async def acquire(self) -> None:
        """Wait until a send fits in the window, then count it as sent now.

        Cancelling the waiting task leaves the count unchanged.
        """
        async with self._lock:
            while True:
                now = self._clock()
                self._drop_before(now - self.window_seconds)
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return

                wait = self._sent[0] + self.window_seconds - now
                logger.debug(
                    "Rate limit of %d per %.0f s reached; waiting %.2f s",
                    self.limit,
                    self.window_seconds,
                    wait,
                )
                record_rate_limit_wait("limiter")
                await self._sleep(wait)

    def available(self) -> int:
        """Return how many more sends the window that ends now admits without waiting."""
        cutoff = self._clock() - self.window_seconds
        return self.limit - sum(1 for sent in self._sent if sent > cutoff)

    def _drop_before(self, cutoff: float) -> None:
        while self._sent and self._sent[0] <= cutoff:
            self._sent.popleft()
