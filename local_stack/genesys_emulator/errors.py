"""The Genesys Cloud ErrorBody and the exceptions that route handlers raise to produce one.

Platform API errors share one JSON shape, ErrorBody: {message, code, status, contextId, details,
errors}, where contextId equals the inin-correlation-id response header. Handlers raise ApiError and
the error middleware renders it, so no handler builds an error response by hand. The OAuth login
endpoint uses a different, OAuth-style body and the presigned upload URL returns S3-style XML errors,
so neither goes through this module's ErrorBody.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

logger = logging.getLogger(__name__)

CORRELATION_HEADER = "inin-correlation-id"

# Generic error codes per status, as listed in the x-inin-error-codes of the Platform API swagger.
BAD_REQUEST = "bad.request"
BAD_CREDENTIALS = "bad.credentials"
NOT_FOUND = "not.found"
GENERAL_CONFLICT = "general.conflict"
RESOURCE_CONFLICT = "general.resource.conflict"
ENTITY_TOO_LARGE = "request.entity.too.large"
UNSUPPORTED_MEDIA_TYPE = "unsupported.media.type"
TOO_MANY_REQUESTS = "too.many.requests.retry.after"
INTERNAL_SERVER_ERROR = "internal.server.error"
SERVICE_UNAVAILABLE = "service.unavailable"
# Unconfirmed: the 403 code. Only the 403 message is documented.
MISSING_PERMISSIONS = "missing.permissions"
# No 405 code is documented, so this one follows the pattern of the others.
METHOD_NOT_ALLOWED = "method.not.allowed"

MALFORMED_BODY_MESSAGE = (
    "The request could not be understood by the server due to malformed syntax."
)
INVALID_LOGIN_MESSAGE = "Invalid login credentials."
FORBIDDEN_MESSAGE = "You are not authorized to perform the requested action."


class ApiError(Exception):
    """An error response in the ErrorBody shape; raised by handlers, rendered by the middleware."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details or []

    def body(self, context_id: str) -> dict[str, Any]:
        return {
            "message": self.message,
            "code": self.code,
            "status": self.status,
            "contextId": context_id,
            "details": self.details,
            "errors": [],
        }

    def to_response(self, context_id: str) -> web.Response:
        return web.json_response(self.body(context_id), status=self.status, headers=self.headers)


def bad_request(message: str) -> ApiError:
    return ApiError(400, BAD_REQUEST, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, NOT_FOUND, message)


def rate_limited(retry_after: int) -> ApiError:
    """Build the 429 Genesys Cloud has sent since November 2021, with Retry-After in seconds."""
    return ApiError(
        429,
        TOO_MANY_REQUESTS,
        f"Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds",
        headers={"Retry-After": str(retry_after)},
    )


def service_unavailable() -> ApiError:
    return ApiError(503, SERVICE_UNAVAILABLE, "Service Unavailable")


def from_http_exception(error: web.HTTPException, max_request_bytes: int) -> ApiError:
    """Translate an exception raised by aiohttp itself (no route, wrong method, body too large)."""
    if error.status == 404:
        return not_found("The requested operation failed with status 404")
    if error.status == 405:
        return ApiError(405, METHOD_NOT_ALLOWED, "The requested method is not allowed.")
    if error.status == 413:
        return ApiError(
            413,
            ENTITY_TOO_LARGE,
            f"The request is over the size limit. Maximum bytes: {max_request_bytes}",
        )
    if error.status == 400:
        return bad_request(MALFORMED_BODY_MESSAGE)
    logger.warning("Translating unexpected aiohttp HTTP error %d: %s", error.status, error.reason)
    return ApiError(error.status, BAD_REQUEST, error.reason)


def oauth_error(status: int, error: str, description: str) -> web.Response:
    """Build an OAuth-style login error, with description and error_description as Genesys sends."""
    body = {"error": error, "description": description, "error_description": description}
    return web.Response(
        text=json.dumps(body), status=status, content_type="application/json", charset="utf-8"
    )
