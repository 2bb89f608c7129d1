"""Errors of the Genesys Cloud client, and their translation from HTTP responses.

Every failure of a Genesys Cloud call leaves the client as a `GenesysError`, split as in the rest
of the service. `GenesysRetriableError` (429 after the retries, 5xx, timeouts, connection errors)
means "keep the offsets and try the same records later". `GenesysPermanentError` (other 4xx, a
failed import) means "retrying cannot help". A 409 is neither, so `GenesysConflictError` goes back
to the caller's logic. httpx exceptions do not leave the client: the client raises a
`GenesysError` from them with `raise ... from`.

This module does not decide when to retry; `stream_app.genesys.caller` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from stream_app.errors import PermanentError, RetriableError, StreamAppError

CORRELATION_HEADER = "inin-correlation-id"

# Fixes for the import failure reasons that public reports describe. The Terraform provider's
# import check and its pull requests are the source of both.
IMPORT_FAILURE_HINTS: dict[str, str] = {
    "MISSING_CUSTOM_ID": (
        "the CSV header has no column with the name given as the contact id column. Check the "
        "first header name for a byte-order mark, quotes or spaces around it"
    ),
    "CONTACT_COLUMNS_LIMIT_EXCEEDED": (
        "the list's columns plus the extra columns of the file exceed 50. Upload only the "
        "contact id column and the list's own columns"
    ),
}
UNKNOWN_IMPORT_FAILURE_HINT = (
    "no fix is known for this reason. Check the contact list's import status in Genesys Cloud"
)

_AUTH_FIX = (
    "Check genesys.client_id and genesys.client_secret, and that genesys.login_url is the login "
    "host of the org's region (for example https://login.mypurecloud.ie for eu-west-1)"
)


class GenesysError(StreamAppError):
    """A failed Genesys Cloud call.

    `status` is the HTTP status (None when no response arrived), `code` the API's error code
    (e.g. ``bad.request``), `message` the API's message or the client's own description, and
    `correlation_id` the ``inin-correlation-id`` header or ``contextId`` of the response.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.code = code
        self.correlation_id = correlation_id
        super().__init__(_with_details(message, status, code, correlation_id))


class GenesysRetriableError(GenesysError, RetriableError):
    """A transient failure that outlasted the client's retries: try the same records later.

    Raised for 429 after the Retry-After waits, for 5xx, timeouts and connection errors after
    `max_retry_seconds`, and when an import does not finish within `import_timeout_seconds`.
    """


class GenesysPermanentError(GenesysError, PermanentError):
    """A 4xx other than 401, 409 and 429, or a response the client cannot use.

    Retrying the same request cannot succeed; `message` and `code` carry the API's reason.
    """


class GenesysNotFoundError(GenesysPermanentError):
    """A 404: the contact list (or another resource in the path) does not exist."""


class GenesysAuthError(GenesysPermanentError):
    """Genesys Cloud rejected the OAuth client, or a freshly issued token.

    Raised for the OAuth ``invalid_client`` and ``unauthorized_client`` errors and for a 401 that
    persists after one token renewal. The worker cannot continue until the settings change.
    """


class GenesysConflictError(GenesysError):
    """A 409, returned to the caller's logic because it is neither transient nor permanent.

    Genesys Cloud sends 409 for a version mismatch on a contact-list update and, in the
    local emulator's default mode, for an upload while an import runs for the same list.
    """


class ImportInProgressError(GenesysConflictError, RetriableError):
    """An upload was rejected with 409 for the whole of `import_timeout_seconds`.

    Another import for the list is still running, so the batch should be retried later.
    """


class ImportFailedError(GenesysPermanentError):
    """A CSV import that Genesys Cloud reported as FAILED, with its `failure_reason` and a `hint`.

    Uploading the same file again fails the same way; the file or the list must change.
    """

    def __init__(self, list_id: str, failure_reason: str | None) -> None:
        self.list_id = list_id
        self.failure_reason = failure_reason or "UNKNOWN"
        self.hint = IMPORT_FAILURE_HINTS.get(self.failure_reason, UNKNOWN_IMPORT_FAILURE_HINT)
        super().__init__(
            f"import into contact list {list_id} failed: {self.hint}", code=self.failure_reason
        )


@dataclass(frozen=True)
class ResponseFields:
    """The parts of an error response that errors carry: message, code and correlation id."""

    message: str
    code: str | None
    correlation_id: str | None

    @classmethod
    def of(cls, response: httpx.Response) -> ResponseFields:
        """Read the platform ErrorBody ({message, code, contextId}) or an OAuth error body.

        The OAuth body of the login service is {error, description, error_description}. A body
        that is neither leaves the HTTP reason phrase as the message.
        """
        body = _json_object(response)
        message = (
            _text(body.get("message"))
            or _text(body.get("error_description"))
            or _text(body.get("description"))
            or response.reason_phrase
            or "no message"
        )
        code = _text(body.get("code")) or _text(body.get("error"))
        return cls(message, code, correlation_id_of(response, body))


def error_from_response(response: httpx.Response, operation: str) -> GenesysError:
    """Build the error for a final non-2xx API response.

    `operation` names the call as method and path template. 401 becomes `GenesysAuthError`,
    because the caller renews the token once before it gives up. 408, 429 and 5xx become
    `GenesysRetriableError`, because the caller only gets here after its retries or for a call
    it must not repeat.
    """
    status = response.status_code
    fields = ResponseFields.of(response)
    arguments: dict[str, Any] = {
        "status": status,
        "code": fields.code,
        "correlation_id": fields.correlation_id,
    }

    if status == 401:
        message = (
            f"{operation} was rejected with 401 after a token renewal: {fields.message}. "
            f"{_AUTH_FIX}"
        )
        return GenesysAuthError(message, **arguments)
    if status == 403:
        message = (
            f"{operation} was rejected with 403: {fields.message}. Grant the OAuth client's "
            "role the permission this endpoint needs"
        )
        return GenesysPermanentError(message, **arguments)
    if status == 404:
        return GenesysNotFoundError(f"{operation} failed with 404: {fields.message}", **arguments)
    if status == 409:
        return GenesysConflictError(f"{operation} failed with 409: {fields.message}", **arguments)

    message = f"{operation} failed with {status}: {fields.message}"
    if status in (408, 429) or status >= 500:
        return GenesysRetriableError(message, **arguments)
    return GenesysPermanentError(message, **arguments)


def error_from_token_response(response: httpx.Response) -> GenesysError:
    """Build the error for a final non-2xx response of POST /oauth/token.

    The login service responds with OAuth-style bodies ({error, description, error_description})
    rather than the platform ErrorBody. Any 4xx other than 408 and 429 means that the client
    credentials or the OAuth client are wrong, so it becomes `GenesysAuthError`.
    """
    status = response.status_code
    fields = ResponseFields.of(response)
    arguments: dict[str, Any] = {
        "status": status,
        "code": fields.code,
        "correlation_id": fields.correlation_id,
    }

    if status in (408, 429) or status >= 500:
        return GenesysRetriableError(
            f"POST /oauth/token failed with {status}: {fields.message}", **arguments
        )
    if fields.code == "unauthorized_client":
        message = (
            f"the OAuth client is not allowed to use the client-credentials grant "
            f"({fields.message}). Use an OAuth client of grant type Client Credentials"
        )
        return GenesysAuthError(message, **arguments)
    if fields.code == "invalid_client":
        message = (
            f"Genesys Cloud rejected the OAuth client credentials ({fields.message}). {_AUTH_FIX}"
        )
        return GenesysAuthError(message, **arguments)
    message = f"POST /oauth/token failed with {status}: {fields.message}. {_AUTH_FIX}"
    return GenesysAuthError(message, **arguments)


def error_from_upload_response(response: httpx.Response, operation: str) -> GenesysError:
    """Build the error for a final non-2xx response of a presigned upload PUT.

    The storage service behind the URL responds like S3, not with the platform ErrorBody.
    """
    status = response.status_code
    arguments: dict[str, Any] = {"status": status, "correlation_id": correlation_id_of(response)}

    if status == 403:
        message = (
            f"{operation} was rejected with 403: the presigned URL expired, or a header from the "
            "upload URL response was changed or left out"
        )
        return GenesysPermanentError(message, **arguments)
    if status == 409:
        return GenesysConflictError(f"{operation} failed with 409", **arguments)

    message = f"{operation} failed with {status} {response.reason_phrase}"
    if status in (408, 429) or status >= 500:
        return GenesysRetriableError(message, **arguments)
    return GenesysPermanentError(message, **arguments)


def correlation_id_of(response: httpx.Response, body: dict[str, Any] | None = None) -> str | None:
    """Return the response's ``inin-correlation-id`` header, else the body's ``contextId``."""
    header: str | None = response.headers.get(CORRELATION_HEADER)
    if header:
        return header
    if body is None:
        return None
    return _text(body.get("contextId"))


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _with_details(
    message: str, status: int | None, code: str | None, correlation_id: str | None
) -> str:
    details = [
        f"status {status}" if status is not None else None,
        f"code {code}" if code else None,
        f"correlation id {correlation_id}" if correlation_id else None,
    ]
    present = [detail for detail in details if detail]
    if not present:
        return message
    return f"{message} ({', '.join(present)})"
