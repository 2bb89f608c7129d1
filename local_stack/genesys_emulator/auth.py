"""OAuth client-credentials login, bearer-token checks, permissions and the per-token rate limit.

POST /oauth/token follows the Genesys Cloud login service: Basic client authentication, form field
grant_type=client_credentials, and OAuth-style error bodies ({error, description,
error_description}) instead of the platform ErrorBody. API calls then carry `Authorization: Bearer
<token>`. This module issues no refresh tokens, because Genesys Cloud issues none for this grant.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from local_stack.genesys_emulator.errors import (
    BAD_CREDENTIALS,
    FORBIDDEN_MESSAGE,
    INVALID_LOGIN_MESSAGE,
    MISSING_PERMISSIONS,
    ApiError,
    oauth_error,
)
from local_stack.genesys_emulator.settings import (
    CLIENT_CREDENTIALS_GRANT,
    EmulatorSettings,
    OAuthClientSettings,
)

logger = logging.getLogger(__name__)

RATE_WINDOW_SECONDS = 60.0
UNAUTHORIZED_CLIENT_DESCRIPTION = "client is not authorized to use the client_credential grant type"
AUTHENTICATION_FAILED_DESCRIPTION = "authentication failed"


def token_hash(token: str) -> str:
    """Return a short SHA-256 of a token, so logs can tell tokens apart without holding them."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class AccessToken:
    """An issued bearer token, known by its hash."""

    token_hash: str
    client_id: str
    permissions: frozenset[str]
    expires_at: float  # monotonic seconds


class TokenStore:
    """Tokens issued by POST /oauth/token, until they expire or the emulator stops."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[str, AccessToken] = {}

    def issue(self, client: OAuthClientSettings, expires_in: int) -> str:
        self._drop_expired()
        token = secrets.token_urlsafe(32)
        self._tokens[token_hash(token)] = AccessToken(
            token_hash=token_hash(token),
            client_id=client.client_id,
            permissions=frozenset(client.permissions),
            expires_at=self._clock() + expires_in,
        )
        return token

    def lookup(self, token: str) -> AccessToken | None:
        """Return the token's record, or None when it is unknown or expired."""
        record = self._tokens.get(token_hash(token))
        if record is None or record.expires_at <= self._clock():
            return None
        return record

    def _drop_expired(self) -> None:
        now = self._clock()
        for key in [key for key, record in self._tokens.items() if record.expires_at <= now]:
            del self._tokens[key]


class RateLimiter:
    """A sliding 60-second window of accepted requests per token.

    Rejected requests do not enter the window, so a client that waits Retry-After seconds gets
    through. `max_in_window` keeps the largest number of accepted requests seen in any 60 s.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, deque[float]] = {}
        self.max_in_window: dict[str, int] = {}
        self.rejected: dict[str, int] = {}

    def admit(self, key: str, limit: int) -> int | None:
        """Count one request for `key`; return None when admitted, else the seconds to wait."""
        now = self._clock()
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - RATE_WINDOW_SECONDS:
            window.popleft()

        if len(window) >= limit:
            self.rejected[key] = self.rejected.get(key, 0) + 1
            # The request can pass once the oldest requests above the limit leave the window.
            oldest_blocking = window[len(window) - limit]
            return max(1, math.ceil(oldest_blocking + RATE_WINDOW_SECONDS - now))

        window.append(now)
        self.max_in_window[key] = max(self.max_in_window.get(key, 0), len(window))
        return None

    def clear(self) -> None:
        self._windows.clear()
        self.max_in_window.clear()
        self.rejected.clear()


async def post_oauth_token(
    request: web.Request, settings: EmulatorSettings, tokens: TokenStore
) -> web.Response:
    """Serve POST /oauth/token for the client-credentials grant."""
    client = _authenticate_client(request.headers.get("Authorization", ""), settings)
    if client is None:
        # NOTE: the status of invalid_client is unconfirmed; RFC 6749 suggests 401 for a failed
        # Basic client authentication, and the Genesys body has been seen without its status.
        return oauth_error(401, "invalid_client", AUTHENTICATION_FAILED_DESCRIPTION)

    form = await request.post()
    grant_type = form.get("grant_type")
    if not isinstance(grant_type, str) or not grant_type:
        return oauth_error(400, "invalid_request", "grant_type is required")
    if grant_type != CLIENT_CREDENTIALS_GRANT:
        return oauth_error(
            400,
            "unsupported_grant_type",
            f"the emulator supports only the client_credentials grant, got {grant_type}",
        )
    if CLIENT_CREDENTIALS_GRANT not in client.grant_types:
        return oauth_error(400, "unauthorized_client", UNAUTHORIZED_CLIENT_DESCRIPTION)

    token = tokens.issue(client, settings.token_expires_in)
    logger.info(
        "Issued token %s to client %s for %d s",
        token_hash(token),
        client.client_id,
        settings.token_expires_in,
    )
    body = {"access_token": token, "token_type": "bearer", "expires_in": settings.token_expires_in}
    return web.json_response(body)


def _authenticate_client(header: str, settings: EmulatorSettings) -> OAuthClientSettings | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None

    client_id, separator, client_secret = decoded.partition(":")
    if not separator:
        return None
    for client in settings.oauth_clients():
        if client.client_id == client_id and secrets.compare_digest(
            client.client_secret.get_secret_value().encode("utf-8"), client_secret.encode("utf-8")
        ):
            return client
    return None


def authenticate_bearer(header: str, tokens: TokenStore) -> AccessToken:
    """Return the token of an `Authorization: Bearer` header; raise 401 bad.credentials if none.

    A missing, unknown and expired token all get the same response, as on the Platform API.
    """
    scheme, _, token = header.partition(" ")
    record = tokens.lookup(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    if record is None:
        raise ApiError(401, BAD_CREDENTIALS, INVALID_LOGIN_MESSAGE)
    return record


def require_permission(token: AccessToken, permission: str) -> None:
    """Raise 403 unless the token's client has `permission`."""
    if permission not in token.permissions:
        raise ApiError(
            403,
            MISSING_PERMISSIONS,
            FORBIDDEN_MESSAGE,
            details=[{"errorCode": MISSING_PERMISSIONS, "fieldName": permission}],
        )
