"""Acknowledge consumed records in offset order, once their outcome is durable.

Records of one partition finish out of order: a decode failure is dead-lettered at once, while
earlier records wait in an open batch, and batches of different contact lists interleave. faust
0.15 commits the highest run of consecutive acknowledged offsets. It does not check that the run
starts right after the committed offset: a fresh consumer group has no committed offset to compare
with, and after a commit a gap of one offset passes its check. So an early acknowledgement could
commit past a record that is still in a batch, and a crash would lose that record.

`OffsetTracker` holds every consumed record of a partition until all records before it are done,
and then releases them in offset order, so what faust sees acknowledged is always a prefix of what
it delivered.

This module is pure: the worker passes in whatever handle it acknowledges (the faust event).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any


class OffsetTracker:
    """In-flight records per partition, in the order they were consumed."""

    def __init__(self) -> None:
        # partition -> offset -> [handle, done]
        self._pending: dict[int, OrderedDict[int, list[Any]]] = {}

    def __len__(self) -> int:
        return sum(len(pending) for pending in self._pending.values())

    def track(self, partition: int, offset: int, handle: Any) -> None:
        """Register a consumed record; call in consumption order for each partition."""
        self._pending.setdefault(partition, OrderedDict())[offset] = [handle, False]

    def done(self, partition: int, offsets: Iterable[int]) -> list[Any]:
        """Mark `offsets` of `partition` done; return the handles now safe to acknowledge.

        The returned handles are in offset order and form a run from the oldest in-flight
        record. Offsets that are not tracked (for example after the partition was revoked) are
        ignored.
        """
        pending = self._pending.get(partition)
        if pending is None:
            return []
        for offset in offsets:
            entry = pending.get(offset)
            if entry is not None:
                entry[1] = True
        released: list[Any] = []
        while pending:
            offset, entry = next(iter(pending.items()))
            if not entry[1]:
                break
            released.append(entry[0])
            del pending[offset]
        return released

    def oldest(self, partition: int) -> int | None:
        """Return the oldest offset of `partition` still in flight, or None."""
        pending = self._pending.get(partition)
        if not pending:
            return None
        oldest: int = next(iter(pending))
        return oldest

    def drain(self) -> list[Any]:
        """Remove and return the handles of every record still in flight, done or not."""
        handles = [entry[0] for pending in self._pending.values() for entry in pending.values()]
        self._pending.clear()
        return handles

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop what is in flight for revoked partitions; their new owner reads it again."""
        for partition in partitions:
            self._pending.pop(partition, None)
