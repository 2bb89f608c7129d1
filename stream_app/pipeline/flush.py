"""Flushing one closed batch: archive to S3, write to Genesys Cloud, report the outcome.

`BatchFlusher.flush` is the only place where a batch's records leave the worker. In order:
1. the valid upserts are encoded as CSV in the list's column order and archived to S3 with a JSON
   manifest (retried until S3 accepts it: the agent waits, so no new records are taken meanwhile);
2. the upserts go to Genesys Cloud through POST .../contacts in chunks. A batch with at least
   `upload_threshold` upserts goes through the CSV upload and the import status instead. Then the
   deletes are sent;
3. records that were rejected by validation or by Genesys Cloud go to the dead-letter topic;
4. the import result goes to the results topic.
Only after all four may the caller acknowledge the batch's offsets. A Genesys failure that is
permanent, or still retriable after the client's retry time, fails the batch's writes: those
records are rejected with the API's reason instead of being committed as if imported.

This module knows nothing of faust: it gets callables to publish, and it returns what happened.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.import_result import (
    GenesysImport,
    ImportCounts,
    ImportResult,
    ImportTimings,
    RecordOutcome,
    S3Object,
)
from schemas.reason import Reason
from schemas.rejected_record import RejectedRecord, Stage
from stream_app.archive import ArchivedBatch, BatchArchive, S3UnavailableError
from stream_app.csv_codec import encode_csv
from stream_app.errors import RetriableError
from stream_app.genesys.client import GenesysClient
from stream_app.genesys.errors import GenesysError
from stream_app.genesys.models import CallRecord, ContactWrite
from stream_app.observability.spans import current_traceparent
from stream_app.pipeline.batching import Batch, BatchRecord, Outcome
from stream_app.pipeline.progress import BatchProgress, Step
from stream_app.settings import Settings
from stream_app.validation.contact_list import ContactListSchema

logger = logging.getLogger(__name__)

# Correlation ids of the Genesys calls made for the batch being flushed; `record_request_id`
# is the GenesysClient's on_response hook that fills it.
_request_ids: ContextVar[list[str] | None] = ContextVar("batch_request_ids", default=None)


def record_request_id(call: CallRecord) -> None:
    """Add a Genesys call's correlation id to the batch being flushed in this task, if any."""
    request_ids = _request_ids.get()
    if request_ids is not None and call.correlation_id and call.correlation_id not in request_ids:
        request_ids.append(call.correlation_id)


PublishRejected = Callable[[BatchRecord, RejectedRecord], Awaitable[None]]
# Publishes a batch's result; returns once Kafka has it and every rejection published before it,
# because the batch is marked published next.
PublishResult = Callable[[ImportResult], Awaitable[None]]
# Stores a batch's progress; with durable=True it returns once the changelog has it.
SaveProgress = Callable[[BatchProgress, bool], Awaitable[None]]


@dataclass
class FlushReport:
    """The outcome of a flush, for the caller's table updates, metrics and the demo's accounting."""

    result: ImportResult | None  # None when the batch was published by an earlier run
    failed_records: list[BatchRecord] = field(default_factory=list)


class BatchFlusher:
    def __init__(
        self,
        settings: Settings,
        genesys: GenesysClient,
        archive: BatchArchive,
        publish_rejected: PublishRejected,
        publish_result: PublishResult,
        *,
        s3_retry_pause_seconds: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.genesys = genesys
        self.archive = archive
        self.publish_rejected = publish_rejected
        self.publish_result = publish_result
        self._s3_retry_pause = s3_retry_pause_seconds
        self._sleep = sleep

    async def flush(
        self,
        batch: Batch,
        schema: ContactListSchema,
        id_column: str,
        progress: BatchProgress,
        save: SaveProgress,
    ) -> FlushReport:
        """Run the four steps for `batch`, skipping those `progress` shows done; raise only for
        configuration errors.

        `save(progress, durable)` stores the progress in the worker's table. The plan is saved
        durably (the changelog has it) before anything leaves the worker; later stages are saved
        as they complete. A batch resumed from the table (`progress.resumed`) whose Genesys
        outcome is unknown reads its contacts back first and writes only those that Genesys
        Cloud does not hold yet with the same values.

        S3 outages are waited out here (each S3UnavailableError is logged and the write tried
        again), so a return means the batch's outcome is durable and its offsets may be committed.
        """
        started = datetime.now(tz=UTC)
        submit = batch.records_with(Outcome.SUBMIT)
        upserts = [record for record in submit if record.operation == "upsert"]
        deletes = [record for record in submit if record.operation == "delete"]

        if progress.stage is Step.PUBLISHED:
            logger.info(
                "Batch %s (partition %d, offsets %d-%d) was published before; acknowledging it",
                batch.batch_id,
                batch.partition,
                batch.first_offset,
                batch.last_offset,
            )
            failed = submit if progress.failure else []
            return FlushReport(None, failed)
        if progress.stage is Step.PLANNED:
            await save(progress, True)

        if submit and progress.stage < Step.ARCHIVED:
            csv_bytes = _upserts_csv(schema, upserts)
            archived = await self._archive(batch, csv_bytes, upserts, deletes, started)
            progress.s3 = {
                "bucket": archived.bucket,
                "key": archived.key,
                "manifest_key": archived.manifest_key,
            }
            progress.stage = Step.ARCHIVED
            await save(progress, False)

        if submit and progress.stage < Step.RESOLVED:
            request_ids: list[str] = []
            token = _request_ids.set(request_ids)
            try:
                await self._submit(
                    batch, schema, id_column, progress, save, upserts=upserts, deletes=deletes
                )
            finally:
                _request_ids.reset(token)
            progress.request_ids = [*progress.request_ids, *request_ids]
            progress.stage = Step.RESOLVED
            await save(progress, False)

        failure = progress.failure_reason
        failed = submit if failure is not None else []
        for record in failed:
            record.reasons = (failure,)  # type: ignore[assignment]

        finished = datetime.now(tz=UTC)
        await self._publish_rejections(batch, failed, finished)
        result = self._result(batch, progress, failed, started=started, finished=finished)
        await self.publish_result(result)
        progress.stage = Step.PUBLISHED
        await save(progress, False)
        logger.info(
            "Batch %s for list %s (partition %d, offsets %d-%d): %d received, %d submitted, %d failed, "
            "%d rejected, %d duplicates",
            result.batch_id,
            batch.contact_list_id,
            batch.partition,
            batch.first_offset,
            batch.last_offset,
            result.counts.received,
            result.counts.submitted,
            result.counts.failed,
            result.counts.rejected,
            result.counts.duplicates,
        )
        return FlushReport(result, failed)

    async def _archive(
        self,
        batch: Batch,
        csv_bytes: bytes,
        upserts: list[BatchRecord],
        deletes: list[BatchRecord],
        started: datetime,
    ) -> ArchivedBatch:
        manifest = {
            "batch_id": batch.batch_id,
            "topic": batch.topic,
            "partition": batch.partition,
            "first_offset": batch.first_offset,
            "last_offset": batch.last_offset,
            "contact_list_id": batch.contact_list_id,
            "contact_list_name": batch.contact_list_name,
            "rows": len(upserts),
            "upsert_offsets": [record.offset for record in upserts],
            "deletes": [
                {"offset": record.offset, "contact_id": record.contact_id} for record in deletes
            ],
            "created_at": started.isoformat(),
        }
        key = batch.object_key(self.settings.s3.prefix)
        while True:
            try:
                return await self.archive.put_batch(key, csv_bytes, manifest)
            except S3UnavailableError as exc:
                logger.warning(
                    "Batch %s waits for S3; no offsets are committed meanwhile: %s",
                    batch.batch_id,
                    exc,
                )
                await self._sleep(self._s3_retry_pause)

    async def _submit(
        self,
        batch: Batch,
        schema: ContactListSchema,
        id_column: str,
        progress: BatchProgress,
        save: SaveProgress,
        *,
        upserts: list[BatchRecord],
        deletes: list[BatchRecord],
    ) -> None:
        """Write the batch to Genesys Cloud and set `progress`'s method, state and failure."""
        list_id = batch.contact_list_id
        try:
            if progress.stage is Step.UPLOADED:
                logger.info(
                    "Batch %s: resuming the wait for import %s", batch.batch_id, progress.upload_key
                )
                outcome = await self.genesys.wait_for_import(list_id, len(upserts))
                progress.import_state = outcome.state
                upserts = []
            elif progress.resumed:
                upserts, deletes = await self._not_yet_written(batch, upserts, deletes)

            if upserts and len(upserts) < self.settings.genesys.upload_threshold:
                progress.method = "contacts"
                writes = [
                    ContactWrite(id=record.contact_id or "", data=record.data or {})
                    for record in upserts
                ]
                await self.genesys.add_contacts(list_id, writes)
            elif upserts:
                progress.method = "upload"
                csv_bytes = _upserts_csv(schema, upserts)
                ticket = await self.genesys.upload_contacts_csv(list_id, csv_bytes, id_column)
                progress.upload_key = ticket.upload_key
                progress.stage = Step.UPLOADED
                await save(progress, False)
                # NOTE: the batch's row count is a lower bound of the list size the client expects;
                # it only matters when the import status stalls and the client counts contacts.
                outcome = await self.genesys.wait_for_import(
                    list_id, len(upserts), started_after=ticket.uploaded_at
                )
                progress.import_state = outcome.state
            elif progress.method is None:
                progress.method = "contacts"
            if deletes:
                await self.genesys.delete_contacts(
                    list_id, [record.contact_id or "" for record in deletes]
                )
        except GenesysError as exc:
            # ImportInProgressError is a conflict that is retriable; the rest split by class.
            retriable = isinstance(exc, RetriableError)
            if retriable:
                logger.warning(
                    "Genesys Cloud unavailable for batch %s after retries: %s", batch.batch_id, exc
                )
            else:
                logger.warning("Genesys Cloud rejected batch %s: %s", batch.batch_id, exc)
            failure_reason = getattr(exc, "failure_reason", None)
            if failure_reason:
                progress.import_state = "FAILED"
                progress.import_failure = failure_reason
            progress.failure = _genesys_reason(exc, retriable=retriable).model_dump(mode="json")
        else:
            progress.failure = None

    async def _not_yet_written(
        self, batch: Batch, upserts: list[BatchRecord], deletes: list[BatchRecord]
    ) -> tuple[list[BatchRecord], list[BatchRecord]]:
        """Return the upserts and deletes of a resumed batch that Genesys Cloud lacks.

        An earlier run may have written some or all of them before it stopped. An upload it made
        may still be importing, so this waits for the list's import first and then reads the
        contacts back. An upsert is needed unless the stored contact has the same values, and a
        delete is needed unless the contact is gone.
        """
        list_id = batch.contact_list_id
        await self.genesys.wait_until_no_import(list_id)
        ids = [record.contact_id or "" for record in (*upserts, *deletes)]
        stored = await self.genesys.get_contacts(list_id, ids)
        needed_upserts = [
            record
            for record in upserts
            if (contact := stored.get(record.contact_id or "")) is None
            or any(contact.data.get(k, "") != v for k, v in (record.data or {}).items())
        ]
        needed_deletes = [record for record in deletes if (record.contact_id or "") in stored]
        logger.info(
            "Batch %s resumed: %d of %d upserts and %d of %d deletes still to write",
            batch.batch_id,
            len(needed_upserts),
            len(upserts),
            len(needed_deletes),
            len(deletes),
        )
        return needed_upserts, needed_deletes

    async def _publish_rejections(
        self, batch: Batch, failed: list[BatchRecord], now: datetime
    ) -> None:
        for record in batch.records:
            stage: Stage
            if record.outcome is Outcome.REJECTED:
                stage = record.rejected_stage
            elif record in failed:
                stage = "import"
            else:
                continue
            rejected = RejectedRecord.from_message(
                topic=batch.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.raw_value or b"",
                reasons=record.reasons,
                stage=stage,
                rejected_at=now,
                contact_list=batch.contact_list_id,
            )
            await self.publish_rejected(record, rejected)

    def _result(
        self,
        batch: Batch,
        progress: BatchProgress,
        failed: list[BatchRecord],
        *,
        started: datetime,
        finished: datetime,
    ) -> ImportResult:
        failed_ids = {id(record) for record in failed}
        outcomes: list[RecordOutcome] = []
        latencies: list[float] = []
        now = time.time()
        for record in batch.records:
            outcome = _record_outcome(record, id(record) in failed_ids)
            outcomes.append(outcome)
            if outcome.outcome in {"accepted", "deleted"} and record.occurred_at is not None:
                latencies.append((now - record.occurred_at) * 1000)

        rejected = len(batch.records_with(Outcome.REJECTED))
        duplicates = len(batch.records_with(Outcome.DUPLICATE))
        submitted = len(batch.records_with(Outcome.SUBMIT))
        counts = ImportCounts(
            received=len(batch.records),
            valid=submitted,
            rejected=rejected,
            duplicates=duplicates,
            submitted=submitted,
            imported=submitted - len(failed),
            failed=len(failed),
        )
        s3 = S3Object(**progress.s3) if progress.s3 else None
        genesys_info = (
            GenesysImport(
                method=progress.method,
                import_state=progress.import_state,
                failure_reason=progress.import_failure,
                request_ids=progress.request_ids,
                upload_key=progress.upload_key,
            )
            if progress.method
            else None
        )
        timings = ImportTimings(
            started_at=started,
            finished_at=finished,
            event_to_accepted_ms_p50=int(statistics.median(latencies)) if latencies else None,
            event_to_accepted_ms_max=int(max(latencies)) if latencies else None,
        )
        return ImportResult(
            batch_id=batch.batch_id,
            contact_list=batch.contact_list_id,
            contact_list_name=batch.contact_list_name,
            counts=counts,
            s3=s3,
            genesys=genesys_info,
            timings=timings,
            traceparent=current_traceparent(),
            records=outcomes,
        )


def _upserts_csv(schema: ContactListSchema, upserts: list[BatchRecord]) -> bytes:
    """Encode the upserts as CSV in the contact list's column order."""
    columns = list(schema.column_names)
    return encode_csv(
        columns,
        [[(record.data or {}).get(column, "") for column in columns] for record in upserts],
    )


def _record_outcome(record: BatchRecord, failed: bool) -> RecordOutcome:
    operation: Any = record.operation
    common = {
        "source_id": record.contact_id or "",
        "event_id": record.event_id or "",
        "operation": operation,
    }
    if record.outcome is Outcome.REJECTED or failed:
        return RecordOutcome(**common, outcome="rejected", reasons=list(record.reasons))
    if record.outcome is Outcome.DUPLICATE:
        return RecordOutcome(**common, outcome="duplicate", genesys_contact_id=record.contact_id)
    if record.operation == "delete":
        return RecordOutcome(**common, outcome="deleted", genesys_contact_id=record.contact_id)
    return RecordOutcome(**common, outcome="accepted", genesys_contact_id=record.contact_id)


def _genesys_reason(exc: GenesysError, *, retriable: bool) -> Reason:
    failure_reason = getattr(exc, "failure_reason", None)
    if retriable:
        return Reason(
            field=None,
            rule="genesys.unavailable",
            message=f"Genesys Cloud did not accept the batch within the retry time: {exc}",
            fix="Re-send the record from the dead-letter topic once Genesys Cloud is reachable.",
        )
    if failure_reason:
        return Reason(
            field=None,
            rule="genesys.import_failed",
            message=f"The Genesys Cloud import failed with {failure_reason}.",
            fix="Check the contact list's columns against the mapping file, then re-send the record.",
        )
    return Reason(
        field=None,
        rule="genesys.rejected",
        message=f"Genesys Cloud rejected the write: {exc}",
        fix="Correct the contact list or the record as the message says, then re-send the record.",
    )
