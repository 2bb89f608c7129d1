"""The async Genesys Cloud Outbound client: contact lists, contacts, CSV uploads and imports.

The pipeline calls it to upsert contacts (POST .../contacts, or a presigned CSV upload for large
batches), to delete contacts, and to wait for imports. The demo also creates and deletes contact
lists. Every request goes through `ApiCaller`, which applies the token, the rate limit and the retry
policy described in `stream_app.genesys.caller`.

It covers only the endpoints the product uses: no campaigns, DNC lists, contact-list updates,
bulk jobs or the legacy multipart upload.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random as random_module
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from stream_app.genesys.caller import API_PREFIX, ApiCaller, ResponseHook, RetryPolicy
from stream_app.genesys.errors import (
    GenesysConflictError,
    GenesysPermanentError,
    GenesysRetriableError,
    ImportFailedError,
    ImportInProgressError,
    ResponseFields,
)
from stream_app.genesys.models import (
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
from stream_app.settings import GenesysSettings

logger = logging.getLogger(__name__)

# The maximum page size of GET /contactlists and POST .../contacts/search, per the SDK docstrings.
MAX_PAGE_SIZE = 100
# Many proxies and servers reject request lines over 8 KiB, so DELETE URLs stay under this.
MAX_URL_BYTES = 8000
# The SDK documents 600 s as the default lifetime of a presigned upload URL, and 604800 s as the
# maximum. The client asks for at least as long as its own retries of the PUT may take.
DEFAULT_SIGNED_URL_SECONDS = 600
MAX_SIGNED_URL_SECONDS = 604800

# The models in this module's signatures are exported with the client, so callers can import
# them from here or from the package.
__all__ = [
    "ContactList",
    "ContactWrite",
    "DialerContact",
    "DialerContactRef",
    "EmailColumn",
    "GenesysClient",
    "ImportOutcome",
    "ImportStatus",
    "PhoneColumn",
    "UploadTicket",
]

# Column type given to a phone or e-mail column passed by name only; Genesys Cloud takes free text.
DEFAULT_PHONE_TYPE = "cell"
DEFAULT_EMAIL_TYPE = "work"

_ModelT = TypeVar("_ModelT", bound=BaseModel)
_DIALER_CONTACTS = TypeAdapter(list[DialerContactRef])
_STORED_CONTACTS = TypeAdapter(list[DialerContact])
# Ids per POST .../contacts/bulk request. The API's maximum is unconfirmed; 100 matches the
# page size limit of the other contact endpoints.
CONTACTS_PER_BULK_READ = 100


class _ResponseModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class _ContactListPage(_ResponseModel):
    entities: list[ContactList] = []
    page_count: int | None = None


class _ContactSearchResult(_ResponseModel):
    contacts_count: int | None = None
    total: int | None = None


class _UploadUrl(_ResponseModel):
    url: str
    upload_key: str
    headers: dict[str, str] = {}


class GenesysClient:
    """An async Genesys Cloud Outbound API client, used as an async context manager.

    One client per worker: its rate limiter and token are shared by every task that uses it.
    `transport`, `clock`, `sleep` and `random` are for tests (httpx.MockTransport, a fake clock).
    `on_response` receives a `CallRecord` for every HTTP attempt, and must be quick and not block.
    `rate_limiter` lets several clients share one limit. `backoff_initial_seconds` and
    `backoff_max_seconds` shape the backoff between retries of 5xx, timeouts and connection errors.

    Every method may raise `GenesysRetriableError` (retry later), `GenesysPermanentError` and its
    subclasses (retrying cannot help), or `GenesysConflictError` (a 409).
    """

    def __init__(
        self,
        settings: GenesysSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = random_module.random,
        on_response: ResponseHook | None = None,
        rate_limiter: SlidingWindowRateLimiter | None = None,
        backoff_initial_seconds: float = 1.0,
        backoff_max_seconds: float = 30.0,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(settings.timeout_seconds)
        )
        self._api_base = settings.api_url.rstrip("/") + API_PREFIX
        limiter = rate_limiter or SlidingWindowRateLimiter.from_settings(
            settings, clock=clock, sleep=sleep
        )
        self.rate_limiter = limiter
        policy = RetryPolicy(
            max_retry_seconds=settings.max_retry_seconds,
            retry_after_default_seconds=settings.retry_after_default_seconds,
            backoff_initial_seconds=backoff_initial_seconds,
            backoff_max_seconds=backoff_max_seconds,
        )
        self._caller = ApiCaller(
            settings,
            self._http,
            limiter=limiter,
            policy=policy,
            clock=clock,
            sleep=sleep,
            random=random,
            on_response=on_response,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections; the client cannot be used afterwards."""
        await self._http.aclose()

    # Contact lists

    async def get_contact_list(self, list_id: str) -> ContactList:
        """Return the contact list with its size and import status.

        Raises `GenesysNotFoundError` when the list does not exist. Safe to retry.
        """
        operation = "GET /contactlists/{contactListId}"
        response = await self._caller.call_api(
            "GET",
            "/contactlists/{contactListId}",
            path_params={"contactListId": list_id},
            params={"includeSize": "true", "includeImportStatus": "true"},
        )
        return _parse(ContactList, response, operation)

    async def find_contact_list(self, name: str) -> ContactList | None:
        """Return the contact list named exactly `name`, or None when there is none.

        Reads every page of GET /contactlists?filterType=Equals; the first exact match wins.
        `size` and `import_status` of the result are None. Safe to retry.
        """
        operation = "GET /contactlists"
        page_number = 1
        while True:
            response = await self._caller.call_api(
                "GET",
                "/contactlists",
                params={
                    "name": name,
                    "filterType": "Equals",
                    "pageSize": str(MAX_PAGE_SIZE),
                    "pageNumber": str(page_number),
                },
            )
            page = _parse(_ContactListPage, response, operation)
            for contact_list in page.entities:
                if contact_list.name == name:
                    return contact_list

            if not page.entities or page.page_count is None or page_number >= page.page_count:
                return None
            page_number += 1

    async def create_contact_list(
        self,
        name: str,
        column_names: Sequence[str],
        phone_columns: Sequence[PhoneColumn | str],
        email_columns: Sequence[EmailColumn | str] = (),
    ) -> ContactList:
        """Create a contact list and return it.

        A phone or e-mail column given by name alone gets the type "cell" or "work".

        Not idempotent: a request that may have reached the server (a read timeout, 500, 502,
        504) is not retried and raises `GenesysRetriableError`; call `find_contact_list` before
        creating again. Genesys Cloud needs at least one phone or e-mail column.
        """
        operation = "POST /contactlists"
        body: dict[str, Any] = {
            "name": name,
            "columnNames": list(column_names),
            "phoneColumns": [_dump(_phone_column(column)) for column in phone_columns],
        }
        if email_columns:
            body["emailColumns"] = [_dump(_email_column(column)) for column in email_columns]

        response = await self._caller.call_api("POST", "/contactlists", json=body, idempotent=False)
        contact_list = _parse(ContactList, response, operation)
        logger.info("Created contact list %s (%s)", contact_list.id, name)
        return contact_list

    async def delete_contact_list(self, list_id: str) -> None:
        """Delete a contact list and its contacts.

        Raises `GenesysNotFoundError` when the list does not exist, which includes a retry
        after a deletion that succeeded but whose response was lost.
        """
        await self._caller.call_api(
            "DELETE", "/contactlists/{contactListId}", path_params={"contactListId": list_id}
        )
        logger.info("Deleted contact list %s", list_id)

    # Contacts

    async def add_contacts(
        self, list_id: str, contacts: Sequence[ContactWrite]
    ) -> list[DialerContactRef]:
        """Insert or update contacts by id and return the written ids in request order.

        Sends requests of at most `contacts_per_request` contacts, one after another, with the
        priority, clearSystemData and doNotQueue flags from the settings. Retrying the whole call
        is safe, because the ids are chosen by the caller and an existing id is updated.
        When a request fails, the requests before it have already been written.
        """
        operation = "POST /contactlists/{contactListId}/contacts"
        params = {
            "priority": _flag(self._settings.priority),
            "clearSystemData": _flag(self._settings.clear_system_data),
            "doNotQueue": _flag(self._settings.do_not_queue),
        }
        written: list[DialerContactRef] = []
        for chunk in _chunks(contacts, self._settings.contacts_per_request):
            body = [
                {
                    "id": contact.id,
                    "contactListId": list_id,
                    "data": dict(contact.data),
                    "callable": True,
                }
                for contact in chunk
            ]
            response = await self._caller.call_api(
                "POST",
                "/contactlists/{contactListId}/contacts",
                path_params={"contactListId": list_id},
                params=params,
                json=body,
            )
            refs = _parse_list(_DIALER_CONTACTS, response, operation)
            if len(refs) != len(chunk):
                logger.warning(
                    "Contact list %s: sent %d contacts but the response lists %d",
                    list_id,
                    len(chunk),
                    len(refs),
                )
            written.extend(refs)

        logger.debug("Contact list %s: wrote %d contacts", list_id, len(written))
        return written

    async def get_contacts(self, list_id: str, ids: Sequence[str]) -> dict[str, DialerContact]:
        """Return the stored contacts among `ids`, by id (POST .../contacts/bulk).

        Ids that are not in the list are left out of the result. Reads only; safe to retry.
        """
        operation = "POST /contactlists/{contactListId}/contacts/bulk"
        found: dict[str, DialerContact] = {}
        for start in range(0, len(ids), CONTACTS_PER_BULK_READ):
            response = await self._caller.call_api(
                "POST",
                "/contactlists/{contactListId}/contacts/bulk",
                path_params={"contactListId": list_id},
                json=list(ids[start : start + CONTACTS_PER_BULK_READ]),
            )
            for contact in _parse_list(_STORED_CONTACTS, response, operation):
                found[contact.id] = contact
        return found

    async def delete_contacts(self, list_id: str, ids: Sequence[str]) -> None:
        """Delete contacts by id, in as many requests as keep each URL under 8000 bytes.

        Genesys Cloud deletes only the contacts that no campaign is using, and still returns
        success, so the others stay in the list. Ids that do not exist are not an error. Safe to
        retry.
        """
        path = "/contactlists/{contactListId}/contacts"
        base_url = f"{self._api_base}/contactlists/{quote(list_id, safe='')}/contacts?contactIds="
        for chunk in _chunks_for_url(ids, MAX_URL_BYTES - len(base_url)):
            await self._caller.call_api(
                "DELETE",
                path,
                path_params={"contactListId": list_id},
                params={"contactIds": ",".join(chunk)},
            )
            logger.debug("Contact list %s: deleted up to %d contacts", list_id, len(chunk))

    async def count_contacts(self, list_id: str) -> int:
        """Return the number of contacts in the list, from POST .../contacts/search.

        Genesys Cloud counts are eventually consistent, so the count may lag a write by a few
        seconds. Safe to retry.
        """
        operation = "POST /contactlists/{contactListId}/contacts/search"
        response = await self._caller.call_api(
            "POST",
            "/contactlists/{contactListId}/contacts/search",
            path_params={"contactListId": list_id},
            json={"pageSize": 1, "pageNumber": 1},
        )
        result = _parse(_ContactSearchResult, response, operation)
        count = result.contacts_count if result.contacts_count is not None else result.total
        if count is None:
            raise GenesysPermanentError(
                f"{operation} returned neither contactsCount nor total",
                status=response.status_code,
                correlation_id=ResponseFields.of(response).correlation_id,
            )
        return count

    # CSV upload and import

    async def upload_contacts_csv(
        self, list_id: str, csv_bytes: bytes, contact_id_column: str
    ) -> UploadTicket:
        """Upload a CSV file for import into the list and return a ticket for `wait_for_import`.

        Requests a presigned URL (POST /contactlists/uploads), then PUTs the bytes to it with
        exactly the headers it came with. `contact_id_column` names the CSV column that contains
        the contact ids, so the import upserts by id and repeating an upload is safe.
        While another import runs for the list, Genesys Cloud may answer 409; the client then
        waits for that import and tries again, and raises `ImportInProgressError` after
        `import_timeout_seconds`.
        """
        deadline = self._clock() + self._settings.import_timeout_seconds
        while True:
            try:
                return await self._upload_once(list_id, csv_bytes, contact_id_column)
            except GenesysConflictError as error:
                if self._clock() >= deadline:
                    raise ImportInProgressError(
                        f"contact list {list_id} still had an import in progress after "
                        f"{self._settings.import_timeout_seconds:.0f} s "
                        "(genesys.import_timeout_seconds), so the upload was not made",
                        status=error.status,
                        code=error.code,
                        correlation_id=error.correlation_id,
                    ) from error

                logger.info(
                    "Contact list %s has an import in progress; waiting for it before uploading",
                    list_id,
                )
                await self._wait_while_import_runs(list_id, deadline)

    async def get_import_status(self, list_id: str) -> ImportStatus:
        """Return the list's import status (GET .../importstatus). Safe to retry."""
        operation = "GET /contactlists/{contactListId}/importstatus"
        response = await self._caller.call_api(
            "GET",
            "/contactlists/{contactListId}/importstatus",
            path_params={"contactListId": list_id},
        )
        return _parse(ImportStatus, response, operation)

    async def wait_for_import(
        self, list_id: str, expected_size: int, *, started_after: float | None = None
    ) -> ImportOutcome:
        """Poll the import status until the import finishes, and return how it finished.

        The import is finished when the status shows no state and percentComplete 100. The
        Terraform provider's import check notes that the status is sometimes not updated for
        small files. So when the status has not changed for `import_stalled_seconds`, the client
        also counts the contacts, and the import is finished once the list contains at least
        `expected_size` contacts (for example its size before the upload plus the ids new to it).

        `started_after` is the client clock reading at the upload (`UploadTicket.uploaded_at`),
        and the stall and the overall `import_timeout_seconds` count from it (default: now).
        Raises `ImportFailedError` when the state is FAILED, and `GenesysRetriableError` when
        the import does not finish in time. Safe to call again.
        """
        # NOTE: the import status carries no upload key or time, so a status read before Genesys
        # Cloud registers the new file would show the previous import's result. The emulator
        # registers it before the PUT returns; whether Genesys Cloud does is unconfirmed.
        started = self._clock() if started_after is None else started_after
        deadline = started + self._settings.import_timeout_seconds
        last_status: ImportStatus | None = None
        last_change = started
        contacts_count: int | None = None
        while True:
            status = await self.get_import_status(list_id)
            now = self._clock()
            if status.failed:
                raise ImportFailedError(list_id, status.failure_reason)
            if status.finished:
                return self._finished(list_id, status, started, by_count=None)

            if last_status is not None and status != last_status:
                last_change = now
            last_status = status

            if now - last_change >= self._settings.import_stalled_seconds:
                contacts_count = await self.count_contacts(list_id)
                if contacts_count >= expected_size:
                    return self._finished(list_id, status, started, by_count=contacts_count)

            if self._clock() >= deadline:
                raise _import_timeout(
                    list_id, self._settings, status, contacts_count, expected_size
                )
            await self._sleep(
                min(self._settings.import_poll_interval_seconds, deadline - self._clock())
            )

    async def wait_until_no_import(self, list_id: str) -> None:
        """Return once the list has no import in progress.

        Raises `ImportInProgressError` when one is still running after `import_timeout_seconds`.
        Safe to retry.
        """
        deadline = self._clock() + self._settings.import_timeout_seconds
        status = await self.get_import_status(list_id)
        while status.in_progress:
            if self._clock() >= deadline:
                raise ImportInProgressError(
                    f"contact list {list_id} still had an import in progress after "
                    f"{self._settings.import_timeout_seconds:.0f} s (genesys.import_timeout_seconds)"
                )
            await self._sleep(
                min(self._settings.import_poll_interval_seconds, deadline - self._clock())
            )
            status = await self.get_import_status(list_id)

    async def _upload_once(
        self, list_id: str, csv_bytes: bytes, contact_id_column: str
    ) -> UploadTicket:
        operation = "POST /contactlists/uploads"
        response = await self._caller.call_api(
            "POST",
            "/contactlists/uploads",
            json={
                "contentType": "text/csv",
                "id": list_id,
                "contactIdName": contact_id_column,
                "signedUrlTimeoutSeconds": self._signed_url_seconds(),
                "clearSystemData": self._settings.clear_system_data,
            },
        )
        upload_url = _parse(_UploadUrl, response, operation)
        await self._caller.put_presigned(upload_url.url, csv_bytes, upload_url.headers)

        logger.info(
            "Uploaded %d bytes for import into contact list %s (upload key %s)",
            len(csv_bytes),
            list_id,
            upload_url.upload_key,
        )
        return UploadTicket(
            list_id=list_id,
            upload_key=upload_url.upload_key,
            size_bytes=len(csv_bytes),
            uploaded_at=self._clock(),
        )

    async def _wait_while_import_runs(self, list_id: str, deadline: float) -> None:
        """Sleep at least one poll interval, then until the import stops or `deadline` passes."""
        while True:
            remaining = deadline - self._clock()
            await self._sleep(max(0.0, min(self._settings.import_poll_interval_seconds, remaining)))
            if self._clock() >= deadline:
                return
            status = await self.get_import_status(list_id)
            if not status.in_progress:
                return

    def _signed_url_seconds(self) -> int:
        retries = math.ceil(self._settings.max_retry_seconds + 2 * self._settings.timeout_seconds)
        return min(MAX_SIGNED_URL_SECONDS, max(DEFAULT_SIGNED_URL_SECONDS, retries))

    def _finished(
        self, list_id: str, status: ImportStatus, started: float, *, by_count: int | None
    ) -> ImportOutcome:
        seconds = self._clock() - started
        if by_count is None:
            logger.info(
                "Import into contact list %s finished: %s of %s records in %.1f s",
                list_id,
                status.completed_records,
                status.total_records,
                seconds,
            )
        else:
            logger.info(
                "Import into contact list %s finished after %.1f s: its status stopped changing "
                "and the list contains %d contacts, as expected",
                list_id,
                seconds,
                by_count,
            )
        return ImportOutcome(
            list_id=list_id,
            completed_by="status" if by_count is None else "count",
            state=status.state,
            total_records=status.total_records,
            completed_records=status.completed_records,
            contacts_count=by_count,
            seconds=seconds,
        )


def _import_timeout(
    list_id: str,
    settings: GenesysSettings,
    status: ImportStatus,
    contacts_count: int | None,
    expected_size: int,
) -> GenesysRetriableError:
    counted = "" if contacts_count is None else f", {contacts_count} of {expected_size} contacts"
    return GenesysRetriableError(
        f"import into contact list {list_id} did not finish within "
        f"{settings.import_timeout_seconds:.0f} s (genesys.import_timeout_seconds); last status: "
        f"state {status.state}, {status.percent_complete}% complete{counted}"
    )


def _parse(model: type[_ModelT], response: httpx.Response, operation: str) -> _ModelT:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as error:
        raise _unexpected_body(response, operation, error) from error


_ItemT = TypeVar("_ItemT")


def _parse_list(
    adapter: TypeAdapter[list[_ItemT]], response: httpx.Response, operation: str
) -> list[_ItemT]:
    try:
        return adapter.validate_json(response.content)
    except ValidationError as error:
        raise _unexpected_body(response, operation, error) from error


def _unexpected_body(
    response: httpx.Response, operation: str, error: ValidationError
) -> GenesysPermanentError:
    # The input values are left out of the message, because they may be contact data.
    first = error.errors(include_url=False, include_input=False)[0]
    location = ".".join(str(part) for part in first["loc"]) or "body"
    return GenesysPermanentError(
        f"{operation} returned a body the client cannot read: {location}: {first['msg']} "
        f"({error.error_count()} problems)",
        status=response.status_code,
        correlation_id=ResponseFields.of(response).correlation_id,
    )


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(by_alias=True, exclude_none=True)


def _phone_column(column: PhoneColumn | str) -> PhoneColumn:
    if isinstance(column, str):
        return PhoneColumn(column_name=column, type=DEFAULT_PHONE_TYPE)
    return column


def _email_column(column: EmailColumn | str) -> EmailColumn:
    if isinstance(column, str):
        return EmailColumn(column_name=column, type=DEFAULT_EMAIL_TYPE)
    return column


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _chunks(items: Sequence[ContactWrite], size: int) -> Iterator[Sequence[ContactWrite]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _chunks_for_url(ids: Sequence[str], budget: int) -> Iterator[list[str]]:
    """Split ids so each comma-joined, percent-encoded chunk fits in `budget` bytes.

    An id longer than the budget still goes out alone, and the server decides.
    """
    chunk: list[str] = []
    used = 0
    for contact_id in ids:
        # A comma is sent as %2C; quote() with no safe characters is the longest encoding.
        cost = len(quote(contact_id, safe="")) + (3 if chunk else 0)
        if chunk and used + cost > budget:
            yield chunk
            chunk, used = [], 0
            cost = len(quote(contact_id, safe=""))
        chunk.append(contact_id)
        used += cost
    if chunk:
        yield chunk
