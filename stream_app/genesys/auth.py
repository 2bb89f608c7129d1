"""The cached OAuth access token of the client-credentials grant, and when to renew it.

Genesys Cloud issues client-credentials tokens with no refresh token, valid for `expires_in`
seconds (86400 by default, 300 at the least). This cache renews a token before it expires and once
more when the API rejects it with 401. Concurrent callers share one token request, so a burst of
tasks at start-up or at expiry sends one POST /oauth/token, not one per task.

The HTTP request itself is not made here: the cache calls the `fetch` coroutine it is given, which
`stream_app.genesys.caller` implements with its retries.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccessToken:
    """A bearer token with the clock reading at which it was obtained.

    `expires_in` is None when the login response carried no lifetime; such a token is renewed
    only after a 401.
    """

    value: str = field(repr=False)
    obtained_at: float
    expires_in: float | None

    def renew_at(self, renew_margin_seconds: float) -> float:
        """Return the clock reading after which the token should be renewed.

        That is `renew_margin_seconds` before expiry, but never before half the lifetime, so a
        short-lived token (in tests, a few seconds) is not renewed on every call.
        """
        if self.expires_in is None:
            return math.inf
        usable = max(self.expires_in - renew_margin_seconds, self.expires_in / 2)
        return self.obtained_at + usable


class TokenCache:
    """One access token shared by every call of a `GenesysClient`."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[AccessToken]],
        *,
        renew_margin_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._renew_margin_seconds = renew_margin_seconds
        self._clock = clock
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """Return a token that is not due for renewal, fetching one when needed.

        Raises what `fetch` raises (`GenesysAuthError` for rejected credentials,
        `GenesysRetriableError` when the login service stays unavailable).
        """
        token = self._token
        if token is not None and not self._due(token):
            return token.value

        async with self._lock:
            # Another task may have fetched a token while this one waited for the lock.
            token = self._token
            if token is None or self._due(token):
                token = await self._fetch_and_store()
            return token.value

    async def renew(self, rejected: str) -> str:
        """Replace the token the API rejected with 401 and return the new one.

        When another task has already replaced `rejected`, its newer token is returned without a
        second request.
        """
        async with self._lock:
            token = self._token
            if token is None or token.value == rejected:
                token = await self._fetch_and_store()
            return token.value

    def _due(self, token: AccessToken) -> bool:
        return self._clock() >= token.renew_at(self._renew_margin_seconds)

    async def _fetch_and_store(self) -> AccessToken:
        token = await self._fetch()
        self._token = token
        logger.info(
            "Obtained a Genesys Cloud access token valid for %s s; renewing it after %.0f s",
            "unknown" if token.expires_in is None else f"{token.expires_in:.0f}",
            token.renew_at(self._renew_margin_seconds) - token.obtained_at,
        )
        return token
