"""Sending one Genesys Cloud request: token, rate limit, retries, error translation, call records.

Every request of `GenesysClient` goes through `ApiCaller`, which applies one retry policy:

- 429: wait Retry-After seconds (integer seconds; `retry_after_default_seconds` when absent),
  then retry.
- 408, 5xx, timeouts and connection errors: retry with exponential backoff and full jitter.
- 401 on an API call: renew the token once and retry at once.
- Any other status: raise at once (see `stream_app.genesys.errors`).

Retries stop when the next wait would end more than `max_retry_seconds` after the first attempt,
and the last failure is raised as `GenesysRetriableError`. A call marked as not idempotent retries
only what cannot have reached the server: 429, 503 and failures to connect.

API calls pass the rate limiter. The token request and the presigned upload PUT do not, because
Genesys Cloud limits the API calls made with a token, and neither of them is such a call.
Every HTTP attempt is one CLIENT span and one count of the `stream_app.genesys.calls` metric.
This module knows no endpoint except the token endpoint; `stream_app.genesys.client` does.
"""

from __future__ import annotations

import logging
import random as random_module
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from stream_app.genesys.auth import AccessToken, TokenCache
from stream_app.genesys.errors import (
    GenesysAuthError,
    GenesysError,
    GenesysPermanentError,
    GenesysRetriableError,
    ResponseFields,
    correlation_id_of,
    error_from_response,
    error_from_token_response,
    error_from_upload_response,
)
from stream_app.genesys.models import CallRecord
from stream_app.genesys.rate_limit import SlidingWindowRateLimiter
from stream_app.observability.metrics import record_genesys_call, record_rate_limit_wait
from stream_app.observability.spans import http_client_span, set_http_status
from stream_app.settings import GenesysSettings

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v2/outbound"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path, not a password
# The path recorded for presigned upload PUTs, whose URL changes per upload and carries a signature.
PRESIGNED_UPLOAD_PATH = "{presignedUploadUrl}"

ErrorTranslator = Callable[[httpx.Response, str], GenesysError]
ResponseHook = Callable[[CallRecord], None]

# Failures after which the request cannot have reached the server.
_NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
_TRANSIENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often failed requests are retried."""

    max_retry_seconds: float
    retry_after_default_seconds: float
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 30.0

    def backoff_seconds(self, retry_number: int, random: Callable[[], float]) -> float:
        """Return the wait before retry `retry_number` (0 for the first), with full jitter.

        The wait is uniform in [0, min(backoff_max, backoff_initial * 2**retry_number)), the
        "full jitter" of the AWS Architecture Blog post "Exponential Backoff And Jitter", so
        workers that failed together do not retry together.
        """
        ceiling = min(self.backoff_max_seconds, self.backoff_initial_seconds * 2.0**retry_number)
        return random() * ceiling


def retry_after_seconds(response: httpx.Response, default: float) -> float:
    """Return the Retry-After header of a 429 in seconds, or `default` when absent or invalid.

    Genesys Cloud sends whole seconds; the HTTP-date form of RFC 9110 is not used, so it also
    falls back to `default`.
    """
    header = response.headers.get("Retry-After")
    if header is None:
        return default
    try:
        seconds = float(header.strip())
    except ValueError:
        return default
    return seconds if seconds >= 0 else default


@dataclass(frozen=True)
class _Request:
    """One logical request, which `ApiCaller` may send several times."""

    method: str
    url: str
    path: str
    translate_error: ErrorTranslator
    params: Mapping[str, str] | None = None
    json: Any = None
    content: bytes | None = None
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: httpx.Auth | None = field(default=None, repr=False)
    authenticated: bool = True
    rate_limited: bool = True
    idempotent: bool = True

    @property
    def operation(self) -> str:
        return f"{self.method} {self.path}"


class ApiCaller:
    """Sends Genesys Cloud requests under one token cache, rate limiter and retry policy."""

    def __init__(
        self,
        settings: GenesysSettings,
        http: httpx.AsyncClient,
        *,
        limiter: SlidingWindowRateLimiter,
        policy: RetryPolicy,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        random: Callable[[], float] = random_module.random,
        on_response: ResponseHook | None = None,
    ) -> None:
        self._settings = settings
        self._http = http
        self._limiter = limiter
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._on_response = on_response
        self._hook_failures = 0
        self._api_base = settings.api_url.rstrip("/") + API_PREFIX
        self.tokens = TokenCache(
            self._fetch_token,
            renew_margin_seconds=settings.token_renew_margin_seconds,
            clock=clock,
        )

    async def call_api(
        self,
        method: str,
        path_template: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send an API call to {api_url}/api/v2/outbound{path_template} and return the 2xx response.

        `path_template` names its parameters in braces ("/contactlists/{contactListId}"), and
        `path_params` fills them, percent-encoded. Raises `GenesysError` subclasses as the module
        docstring describes. After an error the call may or may not have taken effect, unless
        the error is a 4xx other than 429.
        """
        path = path_template.format_map(
            {name: quote(value, safe="") for name, value in (path_params or {}).items()}
        )
        request = _Request(
            method=method,
            url=self._api_base + path,
            path=API_PREFIX + path_template,
            translate_error=error_from_response,
            params=params,
            json=json,
            headers={"Accept": "application/json"},
            idempotent=idempotent,
        )
        return await self._send_with_retry(request)

    async def put_presigned(
        self, url: str, content: bytes, headers: Mapping[str, str]
    ) -> httpx.Response:
        """PUT `content` to a presigned upload URL with exactly `headers`, and return the response.

        The URL carries its own signature, so no bearer token is sent and the rate limiter is
        not used. 5xx, timeouts and connection errors are retried like API calls; repeating the
        PUT stores the same file again, which imports the same upserts again.
        """
        request = _Request(
            method="PUT",
            url=url,
            path=PRESIGNED_UPLOAD_PATH,
            translate_error=error_from_upload_response,
            content=content,
            headers=dict(headers),
            authenticated=False,
            rate_limited=False,
        )
        return await self._send_with_retry(request)

    async def _fetch_token(self) -> AccessToken:
        request = _Request(
            method="POST",
            url=self._settings.login_url.rstrip("/") + TOKEN_PATH,
            path=TOKEN_PATH,
            translate_error=lambda response, _operation: error_from_token_response(response),
            data={"grant_type": "client_credentials"},
            headers={"Accept": "application/json"},
            auth=httpx.BasicAuth(
                self._settings.client_id, self._settings.client_secret.get_secret_value()
            ),
            authenticated=False,
            rate_limited=False,
        )
        obtained_at = self._clock()
        response = await self._send_with_retry(request)
        return _parse_token(response, obtained_at)

    async def _send_with_retry(self, request: _Request) -> httpx.Response:
        started = self._clock()
        attempt = 0
        token_renewed = False
        while True:
            attempt += 1
            token = await self.tokens.get() if request.authenticated else None
            if request.rate_limited:
                await self._limiter.acquire()

            try:
                with http_client_span(
                    request.method, request.url, url_template=request.path, attempt=attempt
                ) as span:
                    response = await self._send_once(request, token, attempt)
                    set_http_status(span, response.status_code)
            except httpx.TransportError as error:
                wait = self._wait_after_transport_error(request, error, attempt)
                await self._sleep_or_give_up(request, started, attempt, wait, error=error)
                continue

            if response.is_success:
                return response

            if response.status_code == 401 and token is not None and not token_renewed:
                # The token expired early or was revoked; one renewal decides which.
                logger.warning(
                    "%s got 401 (correlation id %s); renewing the access token and retrying",
                    request.operation,
                    correlation_id_of(response),
                )
                token_renewed = True
                await self.tokens.renew(token)
                continue

            retry_wait = self._wait_after_response(request, response, attempt)
            if retry_wait is None:
                raise request.translate_error(response, request.operation)
            await self._sleep_or_give_up(request, started, attempt, retry_wait, response=response)

    async def _send_once(
        self, request: _Request, token: str | None, attempt: int
    ) -> httpx.Response:
        headers = dict(request.headers)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"

        sent_at = self._clock()
        try:
            http_request = self._http.build_request(
                request.method,
                request.url,
                params=request.params,
                json=request.json,
                content=request.content,
                data=request.data,
                headers=headers,
            )
            response = await self._http.send(
                http_request,
                auth=request.auth if request.auth is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as error:
            self._record(request, sent_at=sent_at, attempt=attempt, error=type(error).__name__)
            raise
        except (httpx.InvalidURL, httpx.HTTPError) as error:
            self._record(request, sent_at=sent_at, attempt=attempt, error=type(error).__name__)
            raise GenesysPermanentError(
                f"{request.operation} could not be sent: {error}. Check genesys.api_url and "
                "genesys.login_url"
            ) from error

        self._record(
            request,
            sent_at=sent_at,
            attempt=attempt,
            status=response.status_code,
            correlation_id=correlation_id_of(response),
        )
        return response

    def _wait_after_transport_error(
        self, request: _Request, error: httpx.TransportError, attempt: int
    ) -> float:
        """Return the backoff after a transport error, or raise when it must not be retried."""
        if not isinstance(error, _TRANSIENT_ERRORS):
            # UnsupportedProtocol and LocalProtocolError: the URL or the request is wrong.
            raise GenesysPermanentError(
                f"{request.operation} could not be sent: {type(error).__name__}: {error}. "
                "Check genesys.api_url and genesys.login_url"
            ) from error
        if not request.idempotent and not isinstance(error, _NOT_SENT_ERRORS):
            raise GenesysRetriableError(
                f"{request.operation} failed with {type(error).__name__} and is not retried, "
                "because the request may have taken effect"
            ) from error
        return self._policy.backoff_seconds(attempt - 1, self._random)

    def _wait_after_response(
        self, request: _Request, response: httpx.Response, attempt: int
    ) -> float | None:
        """Return the wait before retrying a failed response, or None when it is final."""
        status = response.status_code
        if status == 429:
            return retry_after_seconds(response, self._policy.retry_after_default_seconds)
        retriable = status == 503 or (request.idempotent and (status == 408 or status >= 500))
        if retriable:
            return self._policy.backoff_seconds(attempt - 1, self._random)
        return None

    async def _sleep_or_give_up(
        self,
        request: _Request,
        started: float,
        attempt: int,
        wait: float,
        *,
        response: httpx.Response | None = None,
        error: httpx.TransportError | None = None,
    ) -> None:
        """Sleep `wait` seconds before the next attempt, or raise if that passes the retry limit."""
        elapsed = self._clock() - started
        failure = _describe_failure(response, error)
        if elapsed + wait > self._policy.max_retry_seconds:
            raise _retries_exhausted(request, failure, attempt, elapsed, response) from error
        if response is not None and response.status_code == 429:
            record_rate_limit_wait("retry_after")

        logger.warning(
            "%s failed with %s (attempt %d, correlation id %s); retrying in %.1f s",
            request.operation,
            failure,
            attempt,
            correlation_id_of(response) if response is not None else None,
            wait,
        )
        await self._sleep(wait)

    def _record(
        self,
        request: _Request,
        *,
        sent_at: float,
        attempt: int,
        status: int | None = None,
        correlation_id: str | None = None,
        error: str | None = None,
    ) -> None:
        duration = self._clock() - sent_at
        record_genesys_call(request.method, request.path, status, error)
        logger.debug(
            "%s -> %s in %.3f s (attempt %d, correlation id %s)",
            request.operation,
            status if status is not None else error,
            duration,
            attempt,
            correlation_id,
        )
        if self._on_response is None:
            return

        record = CallRecord(
            method=request.method,
            path=request.path,
            status=status,
            correlation_id=correlation_id,
            duration_seconds=duration,
            attempt=attempt,
            error=error,
        )
        try:
            self._on_response(record)
        except Exception:
            # An exception in the hook does not fail the call. The first one is logged in full.
            self._hook_failures += 1
            if self._hook_failures == 1:
                logger.warning(
                    "on_response hook failed; later failures are logged at debug level",
                    exc_info=True,
                )
            else:
                logger.debug("on_response hook failed %d times", self._hook_failures, exc_info=True)


def _parse_token(response: httpx.Response, obtained_at: float) -> AccessToken:
    try:
        body = response.json()
    except ValueError as error:
        raise GenesysAuthError(
            f"POST {TOKEN_PATH} returned {response.status_code} with a body that is not JSON. "
            "Check that genesys.login_url is the Genesys Cloud login host"
        ) from error

    access_token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(access_token, str) or not access_token:
        raise GenesysAuthError(
            f"POST {TOKEN_PATH} returned {response.status_code} without an access_token. Check "
            "that genesys.login_url is the Genesys Cloud login host"
        )
    expires_in = body.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else None
    return AccessToken(value=access_token, obtained_at=obtained_at, expires_in=lifetime)


def _describe_failure(response: httpx.Response | None, error: httpx.TransportError | None) -> str:
    if response is not None:
        return str(response.status_code)
    return type(error).__name__


def _retries_exhausted(
    request: _Request,
    failure: str,
    attempt: int,
    elapsed: float,
    response: httpx.Response | None,
) -> GenesysRetriableError:
    message = (
        f"{request.operation} still failed with {failure} after {attempt} attempts in "
        f"{elapsed:.1f} s, the limit set by genesys.max_retry_seconds"
    )
    if response is None:
        return GenesysRetriableError(message)

    fields = ResponseFields.of(response)
    message += f": {fields.message}"
    if response.status_code == 429:
        message += (
            ". Other clients may share the OAuth client's rate limit, so lower "
            "genesys.requests_per_minute or genesys.rate_limit_headroom"
        )
    return GenesysRetriableError(
        message,
        status=response.status_code,
        code=fields.code,
        correlation_id=fields.correlation_id,
    )
