"""A batch flush that stops part-way and is resumed from its saved progress.

Each test runs `BatchFlusher.flush` against the session's emulator and S3 server, stops it at a
chosen step by raising from the progress callback (as a kill -9 would stop the worker after that
step), and then flushes the same batch again from the saved progress, as a restarted worker does.
The emulator's write log must show every contact written once, and never again with equal values.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from local_stack.stack import LocalStack
from schemas.import_result import ImportResult
from schemas.rejected_record import RejectedRecord
from stream_app.archive import BatchArchive
from stream_app.genesys.client import GenesysClient
from stream_app.genesys.models import ContactWrite
from stream_app.pipeline.batching import Batch, BatchRecord, Outcome
from stream_app.pipeline.flush import BatchFlusher
from stream_app.pipeline.progress import BatchProgress, Step
from stream_app.settings import Settings
from stream_app.validation.contact_list import ContactListSchema

pytestmark = pytest.mark.integration

COLUMNS = ("id", "name", "phone")


class Stopped(Exception):
    """Raised by the progress callback to stop a flush after a step."""


@dataclass
class Published:
    results: list[ImportResult] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)

    async def result(self, result: ImportResult) -> None:
        self.results.append(result)

    async def rejection(self, _record: BatchRecord, rejected: RejectedRecord) -> None:
        self.rejected.append(rejected)


@dataclass
class Table:
    """The saved progress of one batch, as the worker's table would hold it."""

    stop_after: Step | None = None
    saved: BatchProgress | None = None
    steps: list[Step] = field(default_factory=list)

    async def save(self, progress: BatchProgress, durable: bool) -> None:
        self.saved = BatchProgress.from_json(copy.deepcopy(progress.to_json()))
        self.steps.append(progress.stage)
        if progress.stage is Step.PLANNED:
            assert durable, "the plan must reach the changelog before any side effect"
        if progress.stage is self.stop_after:
            raise Stopped(progress.stage.name)


@pytest.fixture
async def genesys(local_stack: LocalStack) -> AsyncIterator[GenesysClient]:
    settings = _settings(local_stack)
    async with GenesysClient(settings.genesys) as client:
        yield client


@pytest.fixture
async def archive(local_stack: LocalStack) -> AsyncIterator[BatchArchive]:
    async with BatchArchive(_settings(local_stack).s3) as archive:
        yield archive


@pytest.fixture
async def schema(genesys: GenesysClient) -> ContactListSchema:
    created = await genesys.create_contact_list(
        name=f"resume-{uuid.uuid4().hex[:12]}", column_names=list(COLUMNS), phone_columns=["phone"]
    )
    return ContactListSchema(
        list_id=created.id,
        name=created.name or "",
        column_names=COLUMNS,
        phone_columns=("phone",),
        email_columns=(),
    )


def _settings(stack: LocalStack, **extra: str) -> Settings:
    return Settings.from_environ(
        {
            **stack.env(),
            "STREAM_APP_S3__PREFIX": f"resume-{uuid.uuid4().hex[:8]}",
            "STREAM_APP_GENESYS__IMPORT_POLL_INTERVAL_SECONDS": "0.2",
            **extra,
        }
    )


def _batch(schema: ContactListSchema, count: int, *, deletes: int = 0) -> Batch:
    batch = Batch("contact-events", 2, schema.list_id, schema.name, opened_at=0.0)
    for index in range(count):
        contact_id = f"c{index:04d}"
        batch.records.append(
            BatchRecord(
                partition=2,
                offset=100 + index,
                outcome=Outcome.SUBMIT,
                contact_id=contact_id,
                event_id=str(uuid.uuid4()),
                data={
                    "id": contact_id,
                    "name": f"Hospital {index}",
                    "phone": f"+1334793{index:04d}",
                },
            )
        )
    for index in range(deletes):
        batch.records.append(
            BatchRecord(
                partition=2,
                offset=100 + count + index,
                outcome=Outcome.SUBMIT,
                operation="delete",
                contact_id=f"gone{index}",
                event_id=str(uuid.uuid4()),
                data={},
            )
        )
    return batch


def _flusher(
    settings: Settings, genesys: GenesysClient, archive: BatchArchive, published: Published
) -> BatchFlusher:
    return BatchFlusher(settings, genesys, archive, published.rejection, published.result)


def _writes(stack: LocalStack, list_id: str) -> list[dict[str, Any]]:
    return [write for write in stack.genesys.writes(list_id) if write["method"] != "delete"]


def _upload_requests(stack: LocalStack, since: int) -> list[dict[str, Any]]:
    return [
        request
        for request in stack.genesys.requests_log(since)
        if request["method"] == "POST" and request["path"].endswith("/contactlists/uploads")
    ]


@pytest.mark.parametrize("stop_after", [Step.PLANNED, Step.ARCHIVED, Step.RESOLVED])
async def test_resumed_contacts_batch_writes_each_contact_once(
    local_stack: LocalStack,
    genesys: GenesysClient,
    archive: BatchArchive,
    schema: ContactListSchema,
    stop_after: Step,
) -> None:
    settings = _settings(local_stack)
    batch = _batch(schema, 30)
    table = Table(stop_after=stop_after)
    first = Published()
    with pytest.raises(Stopped):
        await _flusher(settings, genesys, archive, first).flush(
            batch, schema, "id", BatchProgress(batch.first_offset, batch.last_offset), table.save
        )
    assert table.saved is not None
    assert table.saved.stage is stop_after
    assert first.results == []

    table.stop_after = None
    second = Published()
    report = await _flusher(settings, genesys, archive, second).flush(
        batch, schema, "id", table.saved, table.save
    )

    writes = _writes(local_stack, schema.list_id)
    assert sorted(write["contact_id"] for write in writes) == [f"c{i:04d}" for i in range(30)]
    assert all(write["changed"] for write in writes)
    assert report.result is not None
    assert report.result.counts.imported == 30
    assert [result.batch_id for result in second.results] == [batch.batch_id]
    assert table.steps[-1] is Step.PUBLISHED


async def test_resume_writes_only_the_contacts_genesys_lacks(
    local_stack: LocalStack,
    genesys: GenesysClient,
    archive: BatchArchive,
    schema: ContactListSchema,
) -> None:
    """The earlier run wrote the first chunk of the batch and stopped before recording it."""
    settings = _settings(local_stack)
    batch = _batch(schema, 20, deletes=1)
    await genesys.add_contacts(
        schema.list_id, [ContactWrite("gone0", {"id": "gone0", "name": "Old", "phone": ""})]
    )
    earlier = [
        ContactWrite(record.contact_id or "", record.data or {}) for record in batch.records[:8]
    ]
    await genesys.add_contacts(schema.list_id, earlier)
    progress = BatchProgress(batch.first_offset, batch.last_offset, stage=Step.ARCHIVED)
    progress.resumed = True

    table = Table()
    await _flusher(settings, genesys, archive, Published()).flush(
        batch, schema, "id", progress, table.save
    )

    writes = _writes(local_stack, schema.list_id)
    written = [write["contact_id"] for write in writes if write["contact_id"] != "gone0"]
    assert sorted(written) == [f"c{i:04d}" for i in range(20)]
    assert all(write["changed"] for write in writes)
    stored = {contact["id"] for contact in local_stack.genesys.contacts(schema.list_id)}
    assert "gone0" not in stored
    assert len(stored) == 20


async def test_resumed_upload_waits_for_the_running_import(
    local_stack: LocalStack,
    genesys: GenesysClient,
    archive: BatchArchive,
    schema: ContactListSchema,
) -> None:
    settings = _settings(local_stack, STREAM_APP_GENESYS__UPLOAD_THRESHOLD="10")
    batch = _batch(schema, 25)
    since = local_stack.genesys.requests_log()[-1]["seq"]
    table = Table(stop_after=Step.UPLOADED)
    with pytest.raises(Stopped):
        await _flusher(settings, genesys, archive, Published()).flush(
            batch, schema, "id", BatchProgress(batch.first_offset, batch.last_offset), table.save
        )
    assert table.saved is not None
    assert table.saved.upload_key

    table.stop_after = None
    published = Published()
    report = await _flusher(settings, genesys, archive, published).flush(
        batch, schema, "id", table.saved, table.save
    )

    assert len(_upload_requests(local_stack, since)) == 1
    writes = _writes(local_stack, schema.list_id)
    assert sorted(write["contact_id"] for write in writes) == [f"c{i:04d}" for i in range(25)]
    assert all(write["changed"] for write in writes)
    assert report.result is not None
    assert report.result.genesys is not None
    assert report.result.genesys.method == "upload"
    assert report.result.genesys.upload_key == table.saved.upload_key
    assert report.result.counts.imported == 25


async def test_published_batch_is_only_acknowledged(
    local_stack: LocalStack,
    genesys: GenesysClient,
    archive: BatchArchive,
    schema: ContactListSchema,
) -> None:
    settings = _settings(local_stack)
    batch = _batch(schema, 5)
    table = Table()
    first = Published()
    await _flusher(settings, genesys, archive, first).flush(
        batch, schema, "id", BatchProgress(batch.first_offset, batch.last_offset), table.save
    )
    assert table.saved is not None
    assert table.saved.stage is Step.PUBLISHED
    writes_before = len(local_stack.genesys.writes(schema.list_id))

    again = Published()
    report = await _flusher(settings, genesys, archive, again).flush(
        batch, schema, "id", table.saved, table.save
    )

    assert report.result is None
    assert again.results == []
    assert len(local_stack.genesys.writes(schema.list_id)) == writes_before
    assert len(first.results) == 1
