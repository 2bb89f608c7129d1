"""aiohttp middleware: correlation ids, ErrorBody rendering, fault injection, auth and rate limit.

The order matters and is fixed in `MIDDLEWARES`, outermost first:
1. `correlation_and_errors` gives each request a correlation id, turns every exception into an
   ErrorBody (never a stack trace), puts `inin-correlation-id` on every response and writes the
   request log.
2. `faults` adds latency and injected 503 and 429 responses, on API paths only.
3. `bearer_auth_and_rate_limit` checks the bearer token and the per-token rate limit, on API paths.
Admin routes (/_emulator/...), the login route and the presigned upload URL skip steps 2 and 3.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from local_stack.genesys_emulator.auth import authenticate_bearer
from local_stack.genesys_emulator.context import (
    CORRELATION_ID_KEY,
    TOKEN_KEY,
    emulator_context,
)
from local_stack.genesys_emulator.errors import (
    CORRELATION_HEADER,
    INTERNAL_SERVER_ERROR,
    ApiError,
    from_http_exception,
    rate_limited,
    service_unavailable,
)

logger = logging.getLogger(__name__)

API_PATH_PREFIXES = ("/api/v2/", "/uploads/v2/")
ADMIN_PATH_PREFIX = "/_emulator/"
# A client-sent correlation id is kept when it looks like an id, so a client can join its own logs
# with the write log. Unconfirmed: whether Genesys Cloud keeps a client-sent id.
_CLIENT_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_INJECTED_RETRY_AFTER_SECONDS = 1


def is_api_path(path: str) -> bool:
    return path.startswith(API_PATH_PREFIXES)


@web.middleware
async def correlation_and_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.monotonic()
    sent_id = request.headers.get(CORRELATION_HEADER, "")
    context_id = sent_id if _CLIENT_CORRELATION_ID.fullmatch(sent_id) else str(uuid.uuid4())
    request[CORRELATION_ID_KEY] = context_id
    context = emulator_context(request)

    try:
        response = await handler(request)
    except ApiError as error:
        logger.debug(
            "%s %s failed with %d %s (%s)",
            request.method,
            request.path,
            error.status,
            error.code,
            context_id,
        )
        response = error.to_response(context_id)
    except web.HTTPException as error:
        translated = from_http_exception(error, context.settings.max_request_bytes)
        logger.debug(
            "%s %s failed in aiohttp with %d (%s)",
            request.method,
            request.path,
            error.status,
            context_id,
        )
        response = translated.to_response(context_id)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("Unhandled error on %s %s (%s)", request.method, request.path, context_id)
        internal = ApiError(500, INTERNAL_SERVER_ERROR, "The server encountered an internal error.")
        response = internal.to_response(context_id)

    response.headers[CORRELATION_HEADER] = context_id
    if not request.path.startswith(ADMIN_PATH_PREFIX):
        token = request.get(TOKEN_KEY)
        context.state.record_request(
            method=request.method,
            path=request.path,
            status=response.status,
            token_hash=token.token_hash if token else None,
            client_id=token.client_id if token else None,
            correlation_id=context_id,
            started=started,
        )
    return response


@web.middleware
async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_api_path(request.path):
        return await handler(request)

    settings = emulator_context(request).settings
    if settings.added_latency_ms:
        await asyncio.sleep(settings.added_latency_ms / 1000)

    if settings.fault_5xx_share or settings.fault_429_share:
        draw = emulator_context(request).fault_random.random()
        if draw < settings.fault_5xx_share:
            raise service_unavailable()
        if draw < settings.fault_5xx_share + settings.fault_429_share:
            raise rate_limited(settings.retry_after_seconds or _INJECTED_RETRY_AFTER_SECONDS)
    return await handler(request)


@web.middleware
async def bearer_auth_and_rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_api_path(request.path):
        return await handler(request)

    context = emulator_context(request)
    token = authenticate_bearer(request.headers.get("Authorization", ""), context.tokens)
    request[TOKEN_KEY] = token

    retry_after = context.limiter.admit(token.token_hash, context.settings.rate_limit_per_minute)
    if retry_after is not None:
        if context.settings.retry_after_seconds is not None:
            retry_after = context.settings.retry_after_seconds
        logger.debug("Rate limit hit for token %s; Retry-After %d", token.token_hash, retry_after)
        raise rate_limited(retry_after)
    return await handler(request)


MIDDLEWARES: tuple[Middleware, ...] = (correlation_and_errors, faults, bearer_auth_and_rate_limit)
