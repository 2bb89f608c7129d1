"""The Genesys Cloud Outbound shapes the product reads and writes, and the client's own records.

The pydantic models parse API responses by their camelCase JSON names and keep only the fields
the product uses. They ignore unknown fields, so a newer API version does not break parsing. They
do not model the whole ContactList or DialerContact of the Platform API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

IMPORT_STATE_IN_PROGRESS = "IN_PROGRESS"
IMPORT_STATE_FAILED = "FAILED"


class _ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class PhoneColumn(_ApiModel):
    """A phone column of a contact list; `type` is free text such as "cell" or "home"."""

    column_name: str
    type: str
    callable_time_column: str | None = None


class EmailColumn(_ApiModel):
    """An e-mail column of a contact list; `type` is free text such as "work"."""

    column_name: str
    type: str
    contactable_time_column: str | None = None


class ImportStatus(_ApiModel):
    """The import status of a contact list, from GET .../importstatus.

    Genesys Cloud has no COMPLETED state: a finished import shows no `state` and a
    `percent_complete` of 100, and a failed one shows FAILED with a `failure_reason`.
    """

    state: str | None = None
    total_records: int | None = None
    completed_records: int | None = None
    percent_complete: int | None = None
    failure_reason: str | None = None

    @property
    def in_progress(self) -> bool:
        return self.state == IMPORT_STATE_IN_PROGRESS

    @property
    def failed(self) -> bool:
        return self.state == IMPORT_STATE_FAILED

    @property
    def finished(self) -> bool:
        """True for the finished-import shape: no state and percentComplete 100."""
        return self.state is None and self.percent_complete == 100


class ContactList(_ApiModel):
    """A contact list, with the fields the product needs.

    `size` and `import_status` are None unless the request asked for them.
    """

    id: str
    name: str
    version: int | None = None
    column_names: list[str]
    phone_columns: list[PhoneColumn] = []
    email_columns: list[EmailColumn] = []
    size: int | None = None
    import_status: ImportStatus | None = None


class DialerContactRef(_ApiModel):
    """The id of a contact that POST .../contacts wrote, as the response returns it."""

    id: str
    contact_list_id: str | None = None


class DialerContact(_ApiModel):
    """A stored contact as POST .../contacts/bulk returns it: its id and column values."""

    id: str
    contact_list_id: str | None = None
    data: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class ContactWrite:
    """One contact to insert or update: its client-chosen id and its column values."""

    id: str
    data: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class UploadTicket:
    """A CSV file that was uploaded for import into a contact list.

    `uploaded_at` is a reading of the client's clock taken after the upload; pass it to
    `GenesysClient.wait_for_import` as `started_after`.
    """

    list_id: str
    upload_key: str
    size_bytes: int
    uploaded_at: float


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """The result of waiting for a CSV import.

    `completed_by` is "status" when the import status showed the finished shape, and "count" when
    the status stalled and the contact count reached the expected size. `state` is the state of
    the last import status read: None for the finished shape, and possibly IN_PROGRESS for
    "count". `contacts_count` is set only for "count". `seconds` is the time spent waiting.
    """

    list_id: str
    completed_by: Literal["status", "count"]
    state: str | None
    total_records: int | None
    completed_records: int | None
    contacts_count: int | None
    seconds: float


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One HTTP attempt the client made, for metrics and tracing.

    `path` is the path template (for example ``/api/v2/outbound/contactlists/{contactListId}``),
    so records group by endpoint. `status` is None when no response arrived, and then `error`
    names the httpx exception class. A retried call produces one record per attempt.
    """

    method: str
    path: str
    status: int | None
    correlation_id: str | None
    duration_seconds: float
    attempt: int
    error: str | None = None
