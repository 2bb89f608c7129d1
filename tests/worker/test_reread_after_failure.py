"""A failed batch sends the later records of its partition back to be read again.

With the background flush, records after a batch are classified while it flushes. When the batch
fails, its dedupe entries are undone, and a later record deduplicated against them would be
counted as a duplicate of a record that never reached Genesys Cloud. So every later record of the
partition not yet flushed is dropped unacknowledged, its own dedupe writes undone newest first,
and the partition is sought back to the oldest of them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from faust.types import TP

from local_stack.stack import PROJECT_ROOT
from stream_app.pipeline.batching import Batch, BatchBuffer, BatchRecord, Outcome
from stream_app.pipeline.flush import FlushReport
from stream_app.pipeline.offsets import OffsetTracker
from stream_app.settings import Settings
from stream_app.worker.app import Runtime, StreamWorker
from stream_app.worker.flush_queue import FlushQueue

MAPPING_FILE = PROJECT_ROOT / "stream_app" / "demo_data" / "cms-hospitals.mapping.toml"
TOPIC = "events"


class _Message:
    def __init__(self, partition: int, offset: int) -> None:
        self.topic = TOPIC
        self.partition = partition
        self.offset = offset


class _Event:
    def __init__(self, partition: int, offset: int) -> None:
        self.message = _Message(partition, offset)
        self.acked = False

    def ack(self) -> None:
        self.acked = True


class _Changelog:
    """Records the dedupe writes in order instead of writing a store."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str | None]] = []

    def set(self, table: Any, partition: int, key: str, value: str) -> None:
        self.writes.append((key, value))

    def delete(self, table: Any, partition: int, key: str) -> None:
        self.writes.append((key, None))


def _record(
    partition: int,
    offset: int,
    outcome: Outcome,
    key: str | None = None,
    previous: str | None = None,
) -> BatchRecord:
    return BatchRecord(
        partition=partition,
        offset=offset,
        outcome=outcome,
        contact_id=key,
        dedupe_key=key if outcome is Outcome.SUBMIT else None,
        dedupe_entry=f"{key}@{offset}" if key and outcome is Outcome.SUBMIT else None,
        previous_entry=previous,
        handle=_Event(partition, offset),
    )


def _batch(partition: int, list_id: str, records: list[BatchRecord]) -> Batch:
    return Batch(TOPIC, partition, list_id, list_id, opened_at=0.0, records=records)


async def test_failed_batch_rereads_later_records(tmp_path: Path) -> None:
    settings = Settings.from_environ(
        {
            "STREAM_APP_APP_ID": "reread-test",
            "STREAM_APP_TOPICS__CONTACT_EVENTS": TOPIC,
            "STREAM_APP_DATA_DIR": str(tmp_path),
            "STREAM_APP_MAPPING_FILE": str(MAPPING_FILE),
        }
    )
    worker = StreamWorker(settings)
    seeks: list[tuple[TP, int]] = []
    dropped: list[Any] = []
    worker._seek = lambda tp, offset: seeks.append((tp, offset))  # type: ignore[method-assign]
    worker._drop = dropped.extend  # type: ignore[method-assign]
    changelog = _Changelog()

    release = asyncio.Event()

    async def blocked_flush(batch: Batch) -> None:
        await release.wait()

    flushes = FlushQueue(blocked_flush, max_waiting=10)
    runtime = Runtime(
        genesys=None,  # type: ignore[arg-type]
        archive=None,  # type: ignore[arg-type]
        lists=None,  # type: ignore[arg-type]
        flusher=None,  # type: ignore[arg-type]
        buffer=BatchBuffer(TOPIC, settings.batch, lambda: 0.0),
        offsets=OffsetTracker(),
        lock=asyncio.Lock(),
        changelog=changelog,  # type: ignore[arg-type]
        flushes=flushes,
    )
    worker.runtime = runtime

    # Partition 0: the failed batch (offsets 10-11), then a waiting batch of the same list with
    # a record of contact "a" deduplicated against it (13) and an update of "c" (12), and an
    # open batch of another list (14). Partition 1 has an open batch that must stay.
    failed = _batch(
        0,
        "list-1",
        [_record(0, 10, Outcome.SUBMIT, "a", "a@1"), _record(0, 11, Outcome.SUBMIT, "b")],
    )
    waiting = _batch(
        0,
        "list-1",
        [_record(0, 12, Outcome.SUBMIT, "c", "c@2"), _record(0, 13, Outcome.DUPLICATE, "a")],
    )
    other_list = _record(0, 14, Outcome.SUBMIT, "d")
    other_partition = _record(1, 5, Outcome.SUBMIT, "e")
    for record in [*failed.records, *waiting.records, other_list, other_partition]:
        runtime.offsets.track(record.partition, record.offset, record.handle)
    runtime.buffer.add(other_list, "list-2", "list-2")
    runtime.buffer.add(other_partition, "list-1", "list-1")
    # The batch in flight before the failed one keeps the partition's runner busy.
    flushes.submit(_batch(0, "list-0", [_record(0, 9, Outcome.REJECTED)]))
    flushes.submit(waiting)
    await asyncio.sleep(0)

    worker._finish_flush(runtime, failed, FlushReport(None, list(failed.records)))

    assert seeks == [(TP(TOPIC, 0), 12)]
    assert [handle.message.offset for handle in dropped] == [12, 13, 14]
    assert flushes.waiting(0) == []
    assert runtime.buffer.open_batches(0) == []
    assert [batch.records for batch in runtime.buffer.open_batches(1)] == [[other_partition]]
    # Later writes are undone newest first, then the failed batch's own, so every key ends at
    # its value from before the failed batch.
    assert changelog.writes == [("d", None), ("c", "c@2"), ("b", None), ("a", "a@1")]
    # The failed batch's records are done: acknowledged, since nothing before them is pending.
    assert [record.handle.acked for record in failed.records] == [True, True]
    assert runtime.offsets.oldest(0) is None
    assert runtime.offsets.oldest(1) == 5

    release.set()
    await asyncio.wait_for(flushes.join(), 5)
