"""In-memory state of the emulator: contact lists, contacts, pending uploads and the inspection logs.

Everything lives in one EmulatorState owned by the running server and is lost when it stops;
POST /_emulator/reset clears it. The write log records every contact change with the request that
caused it, so tests can check for lost or duplicated writes. This module also renders contact lists
and contacts as the ContactList and DialerContact JSON of the Platform API. It does not validate
request bodies; the route modules do that before they change anything here.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from local_stack.genesys_emulator.errors import not_found

logger = logging.getLogger(__name__)

CONTACT_LISTS_PATH = "/api/v2/outbound/contactlists"
HOME_DIVISION_ID = "00000000-0000-4000-8000-000000000001"
HOME_DIVISION: dict[str, str] = {
    "id": HOME_DIVISION_ID,
    "name": "Home",
    "selfUri": f"/api/v2/authorization/divisions/{HOME_DIVISION_ID}",
}
REQUEST_LOG_SIZE = 100_000

# Values of WriteRecord.method.
WRITE_CONTACTS_POST = "contacts POST"
WRITE_CONTACT_PUT = "contact PUT"
WRITE_IMPORT = "import"
WRITE_DELETE = "delete"


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_timestamp(moment: datetime) -> str:
    """Format a time as the Platform API does: yyyy-MM-ddTHH:mm:ss.mmmZ."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def data_hash(data: dict[str, str]) -> str:
    """Return a SHA-256 of the contact data with sorted keys, so equal data gives equal hashes."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def empty_import_status() -> dict[str, Any]:
    # NOTE: what Genesys Cloud returns for a list that never had an import is unconfirmed. This
    # shape has no state and is not complete, so a client waiting for an import keeps waiting.
    return {"totalRecords": 0, "completedRecords": 0, "percentComplete": 0}


@dataclass
class Contact:
    """One contact of a contact list, with the system data the dialer would keep."""

    id: str
    contact_list_id: str
    data: dict[str, str]
    date_created: datetime
    date_modified: datetime
    callable: bool = True
    phone_number_status: dict[str, Any] = field(default_factory=dict)
    contactable_status: dict[str, Any] = field(default_factory=dict)
    call_records: dict[str, Any] = field(default_factory=dict)
    # Other writable DialerContact fields (latest*Evaluations, retention*), stored as sent.
    extra: dict[str, Any] = field(default_factory=dict)
    priority: bool = False
    queue_position: int = 0
    write_count: int = 1

    def to_json(self) -> dict[str, Any]:
        """Render the contact as a DialerContact."""
        body: dict[str, Any] = {
            "id": self.id,
            "contactListId": self.contact_list_id,
            "data": dict(self.data),
            "callRecords": dict(self.call_records),
            "callable": self.callable,
            "phoneNumberStatus": dict(self.phone_number_status),
            "contactColumnTimeZones": {},
            "configurationOverrides": {"priority": self.priority},
            "dateCreated": iso_timestamp(self.date_created),
            "selfUri": f"{CONTACT_LISTS_PATH}/{self.contact_list_id}/contacts/{self.id}",
        }
        if self.contactable_status:
            body["contactableStatus"] = dict(self.contactable_status)
        body.update(self.extra)
        return body

    def clear_system_data(self) -> None:
        self.callable = True
        self.phone_number_status = {}
        self.contactable_status = {}
        self.call_records = {}


@dataclass
class ContactWrite:
    """One validated contact write, from POST /contacts, PUT /contacts/{id} or a CSV row."""

    contact_id: str
    data: dict[str, str]
    callable: bool | None = None
    phone_number_status: dict[str, Any] | None = None
    contactable_status: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportJob:
    """A stored CSV file waiting for, or going through, the import worker."""

    job_id: str
    contact_list_id: str
    content: bytes
    contact_id_name: str | None
    clear_system_data: bool
    request_id: str


@dataclass
class PendingUpload:
    """A presigned upload URL handed out by POST /contactlists/uploads."""

    upload_key: str
    contact_list_id: str
    contact_id_name: str | None
    clear_system_data: bool
    content_type: str
    headers: dict[str, str]
    expires_at: float  # time.time() seconds


@dataclass
class ContactList:
    """A contact list with its contacts, import status and import queue."""

    id: str
    name: str
    column_names: list[str]
    phone_columns: list[dict[str, Any]]
    # Every other ContactList field the client set (emailColumns, trimWhitespace, ...).
    fields: dict[str, Any]
    date_created: datetime
    date_modified: datetime
    version: int = 1
    contacts: dict[str, Contact] = field(default_factory=dict)
    import_status: dict[str, Any] = field(default_factory=empty_import_status)
    pending_imports: deque[ImportJob] = field(default_factory=deque)
    import_task: asyncio.Task[None] | None = None
    _front_position: int = 0
    _back_position: int = 0

    @property
    def trim_whitespace(self) -> bool:
        return bool(self.fields.get("trimWhitespace", True))

    def import_running(self) -> bool:
        return self.import_task is not None and not self.import_task.done()

    def column_by_folded_name(self) -> dict[str, str]:
        """Map each column name in lower case to its name as the list defines it."""
        return {name.casefold(): name for name in self.column_names}

    def to_json(
        self, include_size: bool = False, include_import_status: bool = False
    ) -> dict[str, Any]:
        """Render the list as a ContactList; size and importStatus only when asked for."""
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "dateCreated": iso_timestamp(self.date_created),
            "dateModified": iso_timestamp(self.date_modified),
            "version": self.version,
            "division": dict(HOME_DIVISION),
            "columnNames": list(self.column_names),
            "phoneColumns": [dict(column) for column in self.phone_columns],
            "trimWhitespace": self.trim_whitespace,
        }
        body.update(self.fields)
        if include_size:
            body["size"] = len(self.contacts)
        if include_import_status:
            body["importStatus"] = dict(self.import_status)
        body["selfUri"] = f"{CONTACT_LISTS_PATH}/{self.id}"
        return body

    def upsert(
        self, write: ContactWrite, priority: bool, clear_system_data: bool, do_not_queue: bool
    ) -> tuple[Contact, bool]:
        """Insert or update one contact; return it and whether its data changed.

        clearSystemData and doNotQueue act only on contacts that already exist, as the SDK
        documents for POST /contacts. A new contact always joins the queue, at the front when
        `priority` is true.
        """
        now = utc_now()
        existing = self.contacts.get(write.contact_id)
        if existing is None:
            contact = Contact(
                id=write.contact_id,
                contact_list_id=self.id,
                data=dict(write.data),
                date_created=now,
                date_modified=now,
                priority=priority,
                queue_position=self._queue_position(priority),
            )
            _apply_optional_fields(contact, write)
            self.contacts[contact.id] = contact
            return contact, True

        changed = existing.data != write.data
        existing.data = dict(write.data)
        existing.date_modified = now
        existing.write_count += 1
        if clear_system_data:
            existing.clear_system_data()
        _apply_optional_fields(existing, write)
        if not do_not_queue:
            existing.priority = priority
            existing.queue_position = self._queue_position(priority)
        return existing, changed

    def _queue_position(self, priority: bool) -> int:
        if priority:
            self._front_position -= 1
            return self._front_position
        self._back_position += 1
        return self._back_position


def _apply_optional_fields(contact: Contact, write: ContactWrite) -> None:
    if write.callable is not None:
        contact.callable = write.callable
    if write.phone_number_status is not None:
        contact.phone_number_status = dict(write.phone_number_status)
    if write.contactable_status is not None:
        contact.contactable_status = dict(write.contactable_status)
    contact.extra.update(write.extra)


@dataclass(frozen=True)
class WriteRecord:
    """One contact write as GET /_emulator/writes returns it."""

    seq: int
    time: str
    request_id: str
    method: str
    contact_list_id: str
    contact_id: str
    data_hash: str
    changed: bool


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request as GET /_emulator/requests returns it."""

    seq: int
    time: str
    method: str
    path: str
    status: int
    token_hash: str | None
    client_id: str | None
    correlation_id: str
    duration_ms: float


class EmulatorState:
    """Every contact list, pending upload and log entry of one running emulator."""

    def __init__(self) -> None:
        self.contact_lists: dict[str, ContactList] = {}
        self.uploads: dict[str, PendingUpload] = {}
        self.writes: list[WriteRecord] = []
        self.requests: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_SIZE)
        self._request_seq = 0

    def contact_list(self, contact_list_id: str) -> ContactList:
        """Return the list with this id; raise a 404 ApiError when there is none."""
        contact_list = self.contact_lists.get(contact_list_id)
        if contact_list is None:
            raise not_found(f"The contact list {contact_list_id} was not found.")
        return contact_list

    def new_contact_id(self) -> str:
        return str(uuid.uuid4())

    def record_write(self, request_id: str, method: str, contact: Contact, changed: bool) -> None:
        self.writes.append(
            WriteRecord(
                seq=len(self.writes) + 1,
                time=iso_timestamp(utc_now()),
                request_id=request_id,
                method=method,
                contact_list_id=contact.contact_list_id,
                contact_id=contact.id,
                data_hash=data_hash(contact.data),
                changed=changed,
            )
        )

    def record_request(
        self,
        *,
        method: str,
        path: str,
        status: int,
        token_hash: str | None,
        client_id: str | None,
        correlation_id: str,
        started: float,
    ) -> None:
        self._request_seq += 1
        self.requests.append(
            RequestRecord(
                seq=self._request_seq,
                time=iso_timestamp(utc_now()),
                method=method,
                path=path,
                status=status,
                token_hash=token_hash,
                client_id=client_id,
                correlation_id=correlation_id,
                duration_ms=round((time.monotonic() - started) * 1000, 3),
            )
        )

    def writes_json(self, contact_list_id: str | None, since: int) -> list[dict[str, Any]]:
        return [
            asdict(record)
            for record in self.writes[since:]
            if contact_list_id is None or record.contact_list_id == contact_list_id
        ]

    def requests_json(self, since: int) -> list[dict[str, Any]]:
        return [asdict(record) for record in self.requests if record.seq > since]

    def clear(self) -> None:
        """Drop every list, upload and log entry, cancelling imports in flight."""
        for contact_list in self.contact_lists.values():
            if contact_list.import_task is not None:
                contact_list.import_task.cancel()
        self.contact_lists.clear()
        self.uploads.clear()
        self.writes.clear()
        self.requests.clear()
        self._request_seq = 0
        logger.info("Cleared all contact lists, uploads and logs")
