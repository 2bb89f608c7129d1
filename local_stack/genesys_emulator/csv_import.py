"""The CSV import worker: parses an uploaded contact file and upserts its rows into a contact list.

Rules, from the Resource Center's CSV page and the Terraform provider's contact-list import check:
- UTF-8, comma-separated, RFC 4180 quoting, and the first line is the header.
- At most 50 columns, else the import fails with CONTACT_COLUMNS_LIMIT_EXCEEDED.
- Column names are unique and match the list's columns without regard to case.
- The file must contain every list column. It may contain extra columns, which are not stored.
- The column named by contact-id-name (contactIdName) must be in the header, else the import fails
  with MISSING_CUSTOM_ID. A byte-order mark is not stripped, so a BOM-prefixed first header is a
  different name, as Genesys' own export files have shown.
- The list's trimWhitespace (default true) trims values.
- A row is an upsert by its contact id, so re-importing a file never duplicates contacts.
Status while running is {state: IN_PROGRESS, totalRecords, completedRecords, percentComplete}; when
done it has no state and percentComplete 100, and a failure is {state: FAILED, failureReason}.

This module does not read Excel files; the upload routes accept only text/csv.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import time
import uuid
from dataclasses import dataclass

from local_stack.genesys_emulator.context import EmulatorContext
from local_stack.genesys_emulator.errors import RESOURCE_CONFLICT, ApiError
from local_stack.genesys_emulator.settings import EmulatorSettings
from local_stack.genesys_emulator.state import WRITE_IMPORT, ContactList, ContactWrite, ImportJob
from local_stack.genesys_emulator.validation import MAX_COLUMNS, fit_value

logger = logging.getLogger(__name__)

# Failure reasons. Genesys Cloud has been seen to send the first two. The others are the emulator's
# own names, because the public record describes those failures without a reason string.
CONTACT_COLUMNS_LIMIT_EXCEEDED = "CONTACT_COLUMNS_LIMIT_EXCEEDED"
MISSING_CUSTOM_ID = "MISSING_CUSTOM_ID"
INVALID_FILE_ENCODING = "INVALID_FILE_ENCODING"
MISSING_HEADER_ROW = "MISSING_HEADER_ROW"
DUPLICATE_COLUMN_NAMES = "DUPLICATE_COLUMN_NAMES"
MISSING_LIST_COLUMNS = "MISSING_LIST_COLUMNS"
MALFORMED_ROW = "MALFORMED_ROW"
INTERNAL_ERROR = "INTERNAL_ERROR"

_PROGRESS_EVERY_ROWS = 25
_YIELD_EVERY_ROWS = 500


class ImportFailure(Exception):
    """The file cannot be imported; `reason` becomes the status's failureReason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class ParsedFile:
    """The rows of a contact file, None for a row that is skipped (empty id or value too long)."""

    rows: list[ContactWrite | None]


def parse_contact_file(
    content: bytes,
    contact_list: ContactList,
    contact_id_name: str | None,
    settings: EmulatorSettings,
) -> ParsedFile:
    """Parse a contact CSV for `contact_list`; raise ImportFailure when the whole file fails."""
    try:
        # Plain utf-8, not utf-8-sig: a byte-order mark stays part of the first header.
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ImportFailure(INVALID_FILE_ENCODING, f"the file is not UTF-8: {error}") from None

    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as error:
        raise ImportFailure(MALFORMED_ROW, f"the file is not valid CSV: {error}") from None
    if not records or not any(records[0]):
        raise ImportFailure(MISSING_HEADER_ROW, "the file has no header row")

    header = records[0]
    targets, id_index = _map_header(header, contact_list, contact_id_name)

    rows: list[ContactWrite | None] = []
    for line_number, record in enumerate(records[1:], start=2):
        if len(record) != len(header):
            raise ImportFailure(
                MALFORMED_ROW,
                f"line {line_number} has {len(record)} fields, the header has {len(header)}",
            )
        rows.append(_row_write(record, targets, id_index, contact_list, settings))
    return ParsedFile(rows)


def _map_header(
    header: list[str], contact_list: ContactList, contact_id_name: str | None
) -> tuple[dict[int, str], int | None]:
    """Return {field index: list column} and the index of the contact id column."""
    if len(header) > MAX_COLUMNS:
        raise ImportFailure(
            CONTACT_COLUMNS_LIMIT_EXCEEDED,
            f"the file has {len(header)} columns, at most {MAX_COLUMNS}",
        )
    folded = [name.casefold() for name in header]
    duplicates = sorted({name for name in folded if folded.count(name) > 1})
    if duplicates:
        raise ImportFailure(DUPLICATE_COLUMN_NAMES, f"the header repeats {duplicates}")

    id_index: int | None = None
    if contact_id_name is not None:
        if contact_id_name.casefold() not in folded:
            raise ImportFailure(
                MISSING_CUSTOM_ID, f"the header has no column named {contact_id_name!r}"
            )
        id_index = folded.index(contact_id_name.casefold())

    columns = contact_list.column_by_folded_name()
    missing = [name for key, name in columns.items() if key not in folded]
    if missing:
        raise ImportFailure(MISSING_LIST_COLUMNS, f"the file lacks the list columns {missing}")
    targets = {index: columns[name] for index, name in enumerate(folded) if name in columns}
    return targets, id_index


def _row_write(
    record: list[str],
    targets: dict[int, str],
    id_index: int | None,
    contact_list: ContactList,
    settings: EmulatorSettings,
) -> ContactWrite | None:
    values = [value.strip() for value in record] if contact_list.trim_whitespace else record
    if id_index is None:
        contact_id = str(uuid.uuid4())
    else:
        contact_id = values[id_index].strip()
        if not contact_id:
            return None

    data: dict[str, str] = {}
    for index, column in targets.items():
        fitted = fit_value(values[index], settings)
        if fitted is None:
            # NOTE: the Resource Center states that over-long values are logged in the Event Viewer;
            # whether the row is still imported is unconfirmed. The emulator skips it.
            return None
        data[column] = fitted
    return ContactWrite(contact_id=contact_id, data=data)


def ensure_upload_allowed(context: EmulatorContext, contact_list: ContactList) -> None:
    """Raise 409 general.resource.conflict when the list is importing and uploads do not queue."""
    if not contact_list.import_running() or context.settings.upload_during_import == "queue":
        return
    raise ApiError(
        409,
        RESOURCE_CONFLICT,
        f"An import is already in progress for the contact list {contact_list.id}; "
        "upload again when its import status no longer shows IN_PROGRESS.",
    )


def submit_import(context: EmulatorContext, contact_list: ContactList, job: ImportJob) -> None:
    """Queue a stored file for import; raise 409 as `ensure_upload_allowed` does.

    Called by the upload routes once the file is stored. The status shows IN_PROGRESS before this
    returns, so a client that polls right after the upload never reads the previous import's status.
    """
    ensure_upload_allowed(context, contact_list)
    contact_list.pending_imports.append(job)
    if contact_list.import_running():
        logger.info("Queued import %s behind the running one on %s", job.job_id, contact_list.id)
        return

    if context.settings.import_status_when_done == "complete":
        contact_list.import_status = _in_progress(0, 0)
    contact_list.import_task = asyncio.get_running_loop().create_task(
        _run_imports(context, contact_list), name=f"import-{contact_list.id}"
    )


async def _run_imports(context: EmulatorContext, contact_list: ContactList) -> None:
    while contact_list.pending_imports:
        job = contact_list.pending_imports.popleft()
        try:
            await _run_import(context, contact_list, job)
        except asyncio.CancelledError:
            logger.info("Cancelled import %s on %s", job.job_id, contact_list.id)
            raise
        except Exception:
            logger.exception("Import %s on %s failed unexpectedly", job.job_id, contact_list.id)
            contact_list.import_status = _failed(INTERNAL_ERROR)


async def _run_import(context: EmulatorContext, contact_list: ContactList, job: ImportJob) -> None:
    show_progress = context.settings.import_status_when_done == "complete"
    if show_progress:
        contact_list.import_status = _in_progress(0, 0)
    logger.info("Import %s on %s started (request %s)", job.job_id, contact_list.id, job.request_id)

    if context.settings.fail_imports > 0:
        context.settings.fail_imports -= 1
        reason = context.settings.fail_imports_reason
        contact_list.import_status = _failed(reason)
        logger.info("Import %s on %s failed by injection: %s", job.job_id, contact_list.id, reason)
        return

    try:
        parsed = parse_contact_file(
            job.content, contact_list, job.contact_id_name, context.settings
        )
    except ImportFailure as failure:
        contact_list.import_status = _failed(failure.reason)
        logger.info("Import %s on %s failed: %s", job.job_id, contact_list.id, failure)
        return

    total = len(parsed.rows)
    if show_progress:
        contact_list.import_status = _in_progress(total, 0)
    pacer = _Pacer()
    for completed, write in enumerate(parsed.rows, start=1):
        if write is not None:
            contact, changed = contact_list.upsert(
                write, priority=False, clear_system_data=job.clear_system_data, do_not_queue=False
            )
            context.state.record_write(job.request_id, WRITE_IMPORT, contact, changed)
        if show_progress and (completed % _PROGRESS_EVERY_ROWS == 0 or completed == total):
            contact_list.import_status = _in_progress(total, completed)
        await pacer.wait(context.settings.import_records_per_second, completed)

    if show_progress:
        contact_list.import_status = {
            "totalRecords": total,
            "completedRecords": total,
            "percentComplete": 100,
        }
    skipped = sum(1 for write in parsed.rows if write is None)
    logger.info(
        "Import %s on %s finished: %d rows, %d skipped", job.job_id, contact_list.id, total, skipped
    )


class _Pacer:
    """Holds an import to `records_per_second`, read again for every row so a PATCH applies."""

    def __init__(self) -> None:
        self._due = time.monotonic()

    async def wait(self, records_per_second: float, completed: int) -> None:
        now = time.monotonic()
        if records_per_second <= 0:
            self._due = now
            if completed % _YIELD_EVERY_ROWS == 0:
                await asyncio.sleep(0)
            return
        self._due = max(self._due, now - 1.0) + 1.0 / records_per_second
        if self._due > now:
            await asyncio.sleep(self._due - now)


def _in_progress(total: int, completed: int) -> dict[str, object]:
    percent = 0 if total == 0 else completed * 100 // total
    return {
        "state": "IN_PROGRESS",
        "totalRecords": total,
        "completedRecords": completed,
        "percentComplete": percent,
    }


def _failed(reason: str) -> dict[str, object]:
    return {
        "state": "FAILED",
        "totalRecords": 0,
        "completedRecords": 0,
        "percentComplete": 0,
        "failureReason": reason,
    }
