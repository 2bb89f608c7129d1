"""The background flush: order per partition, overlap across partitions, bounds and errors."""

from __future__ import annotations

import asyncio

import pytest

from stream_app.pipeline.batching import Batch
from stream_app.worker.flush_queue import FlushQueue


def _batch(partition: int, number: int) -> Batch:
    return Batch("events", partition, f"list-{number}", "list", opened_at=0.0)


class _Recorder:
    """A flush that records its calls and finishes only when the test releases it."""

    def __init__(self) -> None:
        self.started: list[tuple[int, str]] = []
        self.finished: list[tuple[int, str]] = []
        self.release: dict[tuple[int, str], asyncio.Event] = {}
        self.fail: set[tuple[int, str]] = set()

    async def flush(self, batch: Batch) -> None:
        name = (batch.partition, batch.contact_list_id)
        self.started.append(name)
        await self.release.setdefault(name, asyncio.Event()).wait()
        if name in self.fail:
            raise RuntimeError(f"flush of {name} failed")
        self.finished.append(name)

    def let_finish(self, partition: int, number: int) -> None:
        self.release.setdefault((partition, f"list-{number}"), asyncio.Event()).set()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_partition_flushes_in_closing_order() -> None:
    recorder = _Recorder()
    queue = FlushQueue(recorder.flush, max_waiting=10)
    for number in range(3):
        queue.submit(_batch(0, number))
    queue.submit(_batch(1, 9))
    await _settle()

    # Partition 0 runs its first batch only; partition 1 runs beside it.
    assert recorder.started == [(0, "list-0"), (1, "list-9")]
    assert [batch.contact_list_id for batch in queue.waiting(0)] == ["list-1", "list-2"]

    for number in (1, 2, 0):  # released out of order: partition 0 still flushes in order
        recorder.let_finish(0, number)
    recorder.let_finish(1, 9)
    await asyncio.wait_for(queue.join(), 5)

    partition_0 = [name for name in recorder.finished if name[0] == 0]
    assert partition_0 == [(0, "list-0"), (0, "list-1"), (0, "list-2")]
    assert not queue.busy
    assert len(queue) == 0


async def test_wait_for_room_at_max_waiting() -> None:
    recorder = _Recorder()
    queue = FlushQueue(recorder.flush, max_waiting=2)
    for number in range(3):  # one runs, two wait
        queue.submit(_batch(0, number))
    await _settle()
    assert len(queue) == 2

    waiter = asyncio.ensure_future(queue.wait_for_room())
    await _settle()
    assert not waiter.done()

    recorder.let_finish(0, 0)  # the next batch starts, so one waits
    await asyncio.wait_for(waiter, 5)
    assert len(queue) == 1

    for number in (1, 2):
        recorder.let_finish(0, number)
    await asyncio.wait_for(queue.join(), 5)


async def test_cancel_waiting_keeps_running_flush() -> None:
    recorder = _Recorder()
    queue = FlushQueue(recorder.flush, max_waiting=10)
    for number in range(3):
        queue.submit(_batch(0, number))
    queue.submit(_batch(1, 5))
    queue.submit(_batch(1, 6))
    await _settle()

    cancelled = queue.cancel_waiting([0])

    assert [batch.contact_list_id for batch in cancelled] == ["list-1", "list-2"]
    assert queue.waiting(0) == []
    assert [batch.contact_list_id for batch in queue.waiting(1)] == ["list-6"]
    for partition, number in ((0, 0), (1, 5), (1, 6)):
        recorder.let_finish(partition, number)
    await asyncio.wait_for(queue.join(), 5)
    assert sorted(recorder.finished) == [(0, "list-0"), (1, "list-5"), (1, "list-6")]


async def test_flush_error_raised_to_caller() -> None:
    recorder = _Recorder()
    recorder.fail.add((0, "list-0"))
    queue = FlushQueue(recorder.flush, max_waiting=10)
    queue.submit(_batch(0, 0))
    queue.submit(_batch(0, 1))
    recorder.let_finish(0, 0)

    with pytest.raises(RuntimeError, match="flush of"):
        await asyncio.wait_for(queue.join(), 5)
    # The partition's runner stopped: its later batch was not flushed.
    assert recorder.started == [(0, "list-0")]
    assert [batch.contact_list_id for batch in queue.waiting(0)] == ["list-1"]
    # The error is raised once; the restarted agent's batches are flushed again.
    queue.submit(_batch(2, 2))
    recorder.let_finish(2, 2)
    await asyncio.wait_for(queue.join(), 5)
    assert (2, "list-2") in recorder.finished
