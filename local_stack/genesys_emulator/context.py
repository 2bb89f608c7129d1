"""The objects one running emulator shares between its middleware, routes and import worker.

Route handlers reach them through `emulator_context(request)`. Nothing here is a module global, so
several emulators can run in one process, for example under aiohttp's test server.
"""

from __future__ import annotations

import logging
import random
import secrets
from dataclasses import dataclass, field

from aiohttp import web

from local_stack.genesys_emulator.auth import AccessToken, RateLimiter, TokenStore
from local_stack.genesys_emulator.settings import EmulatorSettings
from local_stack.genesys_emulator.state import EmulatorState

logger = logging.getLogger(__name__)

CORRELATION_ID_KEY = "correlation_id"
TOKEN_KEY = "access_token"  # noqa: S105 - a request storage key, not a secret


@dataclass
class EmulatorContext:
    """Settings, state, tokens, rate limiter and fault random source of one emulator."""

    settings: EmulatorSettings
    state: EmulatorState = field(default_factory=EmulatorState)
    tokens: TokenStore = field(default_factory=TokenStore)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    fault_random: random.Random = field(default_factory=random.Random)
    # Signs presigned upload URLs; a new key per process invalidates URLs from an earlier run.
    upload_signing_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def __post_init__(self) -> None:
        self.fault_random.seed(self.settings.fault_seed)

    def replace_settings(self, settings: EmulatorSettings) -> None:
        """Swap in new settings; a changed fault_seed restarts the fault sequence."""
        if settings.fault_seed != self.settings.fault_seed:
            self.fault_random.seed(settings.fault_seed)
        self.settings = settings


CONTEXT_KEY = web.AppKey("emulator_context", EmulatorContext)


def emulator_context(request: web.Request) -> EmulatorContext:
    return request.app[CONTEXT_KEY]


def correlation_id(request: web.Request) -> str:
    value: str = request[CORRELATION_ID_KEY]
    return value


def request_token(request: web.Request) -> AccessToken:
    """Return the bearer token the auth middleware accepted for this API request."""
    token: AccessToken = request[TOKEN_KEY]
    return token
