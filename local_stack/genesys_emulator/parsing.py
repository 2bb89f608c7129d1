"""Reading JSON bodies and query parameters the way the Platform API accepts them.

Every failure raises an ApiError (400 bad.request, or 415 for a non-JSON content type), so handlers
never let a json or int parsing exception escape.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from local_stack.genesys_emulator.errors import (
    MALFORMED_BODY_MESSAGE,
    UNSUPPORTED_MEDIA_TYPE,
    ApiError,
    bad_request,
)

logger = logging.getLogger(__name__)


async def read_json(request: web.Request, allow_empty: bool = False) -> Any:
    """Return the parsed JSON body; an empty or `null` body gives None when `allow_empty`."""
    content_type = request.headers.get("Content-Type")
    if content_type is not None and request.content_type not in ("application/json", "text/json"):
        raise ApiError(
            415,
            UNSUPPORTED_MEDIA_TYPE,
            f"The content type {request.content_type} is not supported; send application/json.",
        )

    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return None
        raise bad_request("The request body is missing; send a JSON body.")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise bad_request(MALFORMED_BODY_MESSAGE) from None
    if body is None and not allow_empty:
        raise bad_request("The request body is null; send a JSON body.")
    return body


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """Return a boolean query parameter; the SDK sends `true` or `false`."""
    value = request.query.get(name)
    if value is None or value == "":
        return default
    if value.lower() == "true":
        return True
    if value.lower() == "false":
        return False
    raise bad_request(f"The query parameter {name} must be true or false, got {value!r}.")


def query_int(request: web.Request, name: str, default: int, minimum: int, maximum: int) -> int:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise bad_request(
            f"The query parameter {name} must be an integer, got {value!r}."
        ) from None
    if not minimum <= number <= maximum:
        raise bad_request(
            f"The query parameter {name} must be between {minimum} and {maximum}, got {number}."
        )
    return number


def query_list(request: web.Request, name: str) -> list[str]:
    """Return a list query parameter, sent comma-joined (`id=a,b`) or repeated (`id=a&id=b`)."""
    values: list[str] = []
    for raw in request.query.getall(name, []):
        values.extend(part.strip() for part in raw.split(",") if part.strip())
    return values


def require_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(f"{what} must be a JSON object.")
    return value


def body_int(body: dict[str, Any], name: str, default: int, minimum: int, maximum: int) -> int:
    """Return an integer field of a JSON body, rejecting booleans and out-of-range values."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{name} must be an integer, got {value!r}.")
    if not minimum <= value <= maximum:
        raise bad_request(f"{name} must be between {minimum} and {maximum}, got {value}.")
    return value
