"""Flush closed batches in the background while the intake agent reads on.

Each partition has one runner task that flushes its batches one at a time, in the order they
closed; runners of different partitions overlap. The intake agent waits before it classifies
another record while `max_waiting` batches wait for their runner, so memory stays bounded.

An exception from a flush is kept and raised once, to the next caller of `submit`,
`wait_for_room` or `join`, so the intake agent fails as it did when it flushed inline, and faust
restarts it. The partition's runner stops, and its waiting batches stay unflushed, with their
records unacknowledged, until the next batch of that partition starts a runner again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from stream_app.pipeline.batching import Batch

logger = logging.getLogger(__name__)


class FlushQueue:
    """Waiting batches per partition and the tasks that flush them."""

    def __init__(self, flush: Callable[[Batch], Awaitable[None]], max_waiting: int) -> None:
        self._flush = flush
        self.max_waiting = max_waiting
        self._waiting: dict[int, deque[Batch]] = {}
        self._runners: dict[int, asyncio.Task[None]] = {}
        self._changed = asyncio.Event()
        self._error: BaseException | None = None

    def __len__(self) -> int:
        """Return the number of batches waiting for their runner."""
        return sum(len(batches) for batches in self._waiting.values())

    @property
    def busy(self) -> bool:
        """True while a batch waits or a flush runs."""
        return bool(self._runners)

    def submit(self, batch: Batch) -> None:
        """Queue `batch` behind the earlier batches of its partition."""
        self._raise_error()
        self._waiting.setdefault(batch.partition, deque()).append(batch)
        if batch.partition not in self._runners:
            self._runners[batch.partition] = asyncio.ensure_future(self._run(batch.partition))

    def waiting(self, partition: int) -> list[Batch]:
        """Return the batches of `partition` that wait for their runner, oldest first."""
        return list(self._waiting.get(partition, ()))

    def cancel_waiting(self, partitions: Iterable[int] | None = None) -> list[Batch]:
        """Remove and return the waiting batches of `partitions` (all when None), unflushed.

        A flush that already runs goes on to its end.
        """
        numbers = list(self._waiting) if partitions is None else list(partitions)
        cancelled: list[Batch] = []
        for number in numbers:
            cancelled.extend(self._waiting.pop(number, ()))
        return cancelled

    async def wait_for_room(self) -> None:
        """Return once fewer than `max_waiting` batches wait."""
        while len(self) >= self.max_waiting:
            self._raise_error()
            await self._next_change()
        self._raise_error()

    async def join(self) -> None:
        """Return once no batch waits and no flush runs."""
        while self._runners:
            self._raise_error()
            await self._next_change()
        self._raise_error()

    async def _run(self, partition: int) -> None:
        try:
            while True:
                batches = self._waiting.get(partition)
                if not batches:
                    return
                batch = batches.popleft()
                if not batches:
                    del self._waiting[partition]
                self._notify()
                await self._flush(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.error("Flushing a batch of partition %d failed: %r", partition, exc)
            self._error = exc
        finally:
            del self._runners[partition]
            self._notify()

    async def _next_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error
