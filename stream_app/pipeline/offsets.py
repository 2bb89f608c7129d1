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
from enum import StrEnum
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

    def release_from(self, partition: int, offset: int) -> list[Any]:
        """Remove and return the handles of `partition` at `offset` or later, done or not."""
        pending = self._pending.get(partition)
        if not pending:
            return []
        later = [tracked for tracked in pending if tracked >= offset]
        return [pending.pop(tracked)[0] for tracked in later]

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop what is in flight for revoked partitions; their new owner reads it again."""
        for partition in partitions:
            self._pending.pop(partition, None)


class Continuity(StrEnum):
    """The action for a consumed record, given the offset its partition should deliver next."""

    ACCEPT = "accept"
    DROP = "drop"  # a copy fetched before the last seek; it comes again, or came already
    SEEK = "seek"  # records before this one were never delivered: seek back and drop it


class ContinuityGuard:
    """Check that each partition delivers an unbroken run of offsets from where it started.

    faust 0.15 streams skip events they dequeue while flow control is suspended or that carry an
    older consumer generation, and a skipped event is never delivered again unless the partition
    seeks back. Acknowledging the records after it would commit past it. The guard directs the
    worker to seek back to the first missing offset, and to drop the stale copies that arrive
    before the seek takes effect.

    The seek can lose a race with records still in faust's fetch pipeline, which move its read
    position forward again, so the guard asks for the seek again every `reseek_seconds` while
    records after the missing one keep arriving. A partition can also have real gaps: transaction
    markers and compaction leave offsets without a record. A gap that is still there
    `gap_seconds` after the first seek is accepted.

    Pure: the caller supplies the start offset and the clock, and performs the seek.
    """

    def __init__(self, gap_seconds: float = 60.0, reseek_seconds: float = 3.0) -> None:
        self.gap_seconds = gap_seconds
        self.reseek_seconds = reseek_seconds
        self._next: dict[Any, int] = {}
        # partition -> (time of the first seek for the missing offset, time of the latest seek)
        self._seeking: dict[Any, tuple[float, float]] = {}

    def started(self, partition: Any) -> bool:
        return partition in self._next

    def start(self, partition: Any, offset: int) -> None:
        """Set the offset `partition` delivers first: the committed offset, or the log start."""
        self._next[partition] = offset
        self._seeking.pop(partition, None)

    def expected(self, partition: Any) -> int:
        return self._next[partition]

    def check(self, partition: Any, offset: int, now: float) -> Continuity:
        """Classify a delivered record of a started partition and advance on ACCEPT."""
        expected = self._next[partition]
        seeking = self._seeking.get(partition)
        gap_accepted = seeking is not None and now - seeking[0] >= self.gap_seconds
        if offset == expected or (offset > expected and gap_accepted):
            self._next[partition] = offset + 1
            self._seeking.pop(partition, None)
            return Continuity.ACCEPT
        if offset < expected:
            return Continuity.DROP
        if seeking is None:
            self._seeking[partition] = (now, now)
            return Continuity.SEEK
        if now - seeking[1] >= self.reseek_seconds:
            self._seeking[partition] = (seeking[0], now)
            return Continuity.SEEK
        return Continuity.DROP

    def note_seek(self, partition: Any, expected: int, now: float) -> None:
        """Record a seek the caller started without a record asking for it (see `due_seeks`)."""
        self._next[partition] = expected
        first = self._seeking.get(partition, (now, now))[0]
        self._seeking[partition] = (first, now)

    def seeking(self, partition: Any) -> bool:
        return partition in self._seeking

    def due_seeks(self, now: float) -> list[tuple[Any, int]]:
        """Return the partitions to seek again, with their missing offsets, and note the seeks.

        These are the partitions whose last seek is `reseek_seconds` old. A seek that lost the
        race can leave faust dropping every record of the partition. Then no record arrives to
        trigger the next seek, so the worker calls this from a timer.
        """
        due: list[tuple[Any, int]] = []
        for partition, (first, latest) in self._seeking.items():
            if now - latest >= self.reseek_seconds:
                self._seeking[partition] = (first, now)
                due.append((partition, self._next[partition]))
        return due

    def reset(self) -> None:
        """Forget every partition, as after a rebalance, when faust seeks to the committed offsets."""
        self._next.clear()
        self._seeking.clear()
