"""Batches per (partition, contact list), bounded by records, bytes and time.

A batch contains every record of one source partition addressed to one contact list, in offset order:
the ones to write to Genesys Cloud, the rejected ones and the duplicates, so that one import result
reports all of them and their offsets are acknowledged together once the outcome is durable. A batch
closes when it contains `max_contacts` records to write, `max_records` records in all or
`max_bytes`, when it has been open `max_seconds`, or before a second write for a contact id it
already contains, so operations on one contact reach Genesys in order. Counting the contacts to write, rather than all
records, fills each Genesys Cloud request although some records are rejected or duplicates.

A record read again after a crash or a rebalance may fall into a batch planned by an earlier run
(see `stream_app.pipeline.progress`). Such a batch keeps the planned offset range, whatever the
limits say: it closes when its last planned offset arrives, or when a later offset of its partition
shows that the rest is not coming.

This module is pure: no Kafka, no I/O. The faust agent feeds it and flushes what it returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from opentelemetry.trace import SpanContext

from schemas.reason import Reason
from schemas.rejected_record import Stage
from stream_app.pipeline.progress import BatchProgress
from stream_app.settings import BatchSettings

# uuid5 namespace for batch ids, so a replayed batch gets the id it had before.
BATCH_NAMESPACE = uuid.UUID("6f0d4a5e-5d0c-4bb9-9a57-0c1b1f1e7a10")


class Outcome(StrEnum):
    SUBMIT = "submit"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"


@dataclass(slots=True)
class BatchRecord:
    """One consumed record and what the pipeline decided for it."""

    partition: int
    offset: int
    outcome: Outcome
    operation: str = "upsert"
    event_id: str | None = None
    contact_id: str | None = None
    data: dict[str, str] | None = None
    reasons: tuple[Reason, ...] = ()
    dedupe_key: str | None = None
    dedupe_entry: str | None = None  # the entry this record writes, encoded
    previous_entry: str | None = None  # the entry it replaced, restored if the batch fails
    channel_key: str | None = None  # set when channel identity is on and the record claimed one
    previous_channel_entry: str | None = None
    occurred_at: float | None = None  # Unix seconds, from the event
    key: bytes | None = None
    # The original message value, so a record rejected by validation or by Genesys Cloud can be
    # dead-lettered with what is needed to replay it.
    raw_value: bytes | None = None
    rejected_stage: Stage = "validation"
    size: int = 0
    handle: Any = None  # the faust event, acknowledged when the batch is done
    # The trace span that processed the record; its batch's span links to it, and its dead-letter
    # message carries it as the parent.
    span_context: SpanContext | None = None


@dataclass
class Batch:
    topic: str
    partition: int
    contact_list_id: str
    contact_list_name: str
    opened_at: float
    records: list[BatchRecord] = field(default_factory=list)
    byte_size: int = 0
    submit_count: int = 0  # records with Outcome.SUBMIT
    submitted_ids: set[str] = field(default_factory=set)
    plan: BatchProgress | None = None  # set when an earlier run planned this batch

    @property
    def first_offset(self) -> int:
        return self.plan.first_offset if self.plan else self.records[0].offset

    @property
    def last_offset(self) -> int:
        return self.plan.last_offset if self.plan else self.records[-1].offset

    @property
    def batch_id(self) -> str:
        """A UUID derived from topic, partition, contact list and offset range."""
        name = (
            f"{self.topic}/{self.partition}/{self.contact_list_id}/"
            f"{self.first_offset}-{self.last_offset}"
        )
        return str(uuid.uuid5(BATCH_NAMESPACE, name))

    def object_key(self, prefix: str) -> str:
        """Return the S3 key of the batch's CSV; the manifest sits beside it, ending `.manifest.json`."""
        return (
            f"{prefix.strip('/')}/{self.topic}/partition={self.partition:04d}/"
            f"{self.first_offset:020d}-{self.last_offset:020d}.{self.contact_list_id}.csv"
        )

    def records_with(self, outcome: Outcome) -> list[BatchRecord]:
        return [record for record in self.records if record.outcome is outcome]


class BatchBuffer:
    """Open batches keyed by (partition, contact list id).

    Not thread-safe; the pipeline serialises calls with one asyncio lock.
    """

    # A planned batch whose last record never arrives is closed after this many `max_seconds`.
    PLANNED_PATIENCE = 12

    def __init__(self, topic: str, limits: BatchSettings, clock: Callable[[], float]) -> None:
        self.topic = topic
        self.limits = limits
        self.clock = clock
        self._open: dict[tuple[int, str], Batch] = {}
        self._planned_open = 0

    def __len__(self) -> int:
        return sum(len(batch.records) for batch in self._open.values())

    def add(
        self,
        record: BatchRecord,
        contact_list_id: str,
        contact_list_name: str,
        plan: BatchProgress | None = None,
    ) -> list[Batch]:
        """Add `record` and return the batches that are now closed, oldest first.

        `plan` is the planned batch whose range contains the record's offset, if there is one.
        """
        closed = self.close_passed(record.partition, record.offset)
        slot = (record.partition, contact_list_id)
        batch = self._open.get(slot)

        if batch is not None and (
            batch.plan is not plan
            or (
                plan is None
                and record.outcome is Outcome.SUBMIT
                and record.contact_id in batch.submitted_ids
            )
        ):
            closed.append(self._pop(slot))
            batch = None

        if batch is None:
            batch = Batch(
                self.topic,
                record.partition,
                contact_list_id,
                contact_list_name,
                self.clock(),
                plan=plan,
            )
            self._open[slot] = batch
            self._planned_open += plan is not None

        batch.records.append(record)
        batch.byte_size += record.size
        if record.outcome is Outcome.SUBMIT:
            batch.submit_count += 1
            if record.contact_id is not None:
                batch.submitted_ids.add(record.contact_id)

        if plan is not None:
            full = record.offset >= plan.last_offset
        else:
            full = (
                batch.submit_count >= self.limits.max_contacts
                or len(batch.records) >= self.limits.max_records
                or batch.byte_size >= self.limits.max_bytes
            )
        if full:
            closed.append(self._pop(slot))
        return closed

    def close_passed(self, partition: int, offset: int) -> list[Batch]:
        """Close the planned batches of `partition` that end before `offset`.

        The record at a planned batch's last offset may not come back to the same batch, for
        example when the mapping file changed. A later offset of the partition shows it is not
        coming.
        """
        if not self._planned_open:
            return []
        slots = [
            slot
            for slot, batch in self._open.items()
            if slot[0] == partition and batch.plan is not None and batch.plan.last_offset < offset
        ]
        return [self._pop(slot) for slot in slots]

    def due(self) -> list[Batch]:
        """Close and return the batches open for `max_seconds` or longer.

        A planned batch waits for its last record, up to PLANNED_PATIENCE times as long.
        """
        now = self.clock()
        slots = [
            slot
            for slot, batch in self._open.items()
            if now - batch.opened_at
            >= self.limits.max_seconds * (self.PLANNED_PATIENCE if batch.plan else 1)
        ]
        return [self._pop(slot) for slot in slots]

    def open_batches(self, partition: int) -> list[Batch]:
        """Return the open batches of `partition`, leaving them open."""
        return [batch for slot, batch in self._open.items() if slot[0] == partition]

    def pop_partition(self, partition: int) -> list[Batch]:
        """Close and return every open batch of `partition`, as on revocation."""
        slots = [slot for slot in self._open if slot[0] == partition]
        return [self._pop(slot) for slot in slots]

    def pop_all(self) -> list[Batch]:
        return [self._pop(slot) for slot in list(self._open)]

    def _pop(self, slot: tuple[int, str]) -> Batch:
        batch = self._open.pop(slot)
        self._planned_open -= batch.plan is not None
        return batch
