"""Genesys Cloud Outbound API client: contact lists, contacts, CSV uploads and imports.

`GenesysClient` is the entry point. Errors derive from `GenesysError` and split into retriable
and permanent as the rest of the service does.
"""

from stream_app.genesys.client import GenesysClient
from stream_app.genesys.errors import (
    GenesysAuthError,
    GenesysConflictError,
    GenesysError,
    GenesysNotFoundError,
    GenesysPermanentError,
    GenesysRetriableError,
    ImportFailedError,
    ImportInProgressError,
)
from stream_app.genesys.models import (
    CallRecord,
    ContactList,
    ContactWrite,
    DialerContact,
    DialerContactRef,
    EmailColumn,
    ImportOutcome,
    ImportStatus,
    PhoneColumn,
    UploadTicket,
)
from stream_app.genesys.rate_limit import SlidingWindowRateLimiter

__all__ = [
    "CallRecord",
    "ContactList",
    "ContactWrite",
    "DialerContact",
    "DialerContactRef",
    "EmailColumn",
    "GenesysAuthError",
    "GenesysClient",
    "GenesysConflictError",
    "GenesysError",
    "GenesysNotFoundError",
    "GenesysPermanentError",
    "GenesysRetriableError",
    "ImportFailedError",
    "ImportInProgressError",
    "ImportOutcome",
    "ImportStatus",
    "PhoneColumn",
    "SlidingWindowRateLimiter",
    "UploadTicket",
]
