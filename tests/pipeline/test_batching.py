"""Batches per (partition, contact list) with a fake clock: the close rules, popping and batch ids."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.pipeline import progress
from stream_app.pipeline.batching import Batch, BatchBuffer, BatchRecord, Outcome
from stream_app.pipeline.progress import BatchProgress
from stream_app.settings import BatchSettings

TOPIC = "contact-events"


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Offsets:
    """The next offset of each partition, so records of a partition arrive in offset order."""

    next_offset: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def record(
        self,
        partition: int = 0,
        contact_id: str = "c1",
        *,
        outcome: Outcome = Outcome.SUBMIT,
        size: int = 100,
    ) -> BatchRecord:
        offset = self.next_offset[partition]
        self.next_offset[partition] += 1
        return BatchRecord(
            partition=partition, offset=offset, outcome=outcome, contact_id=contact_id, size=size
        )


def _buffer(
    clock: FakeClock,
    *,
    max_records: int = 100,
    max_contacts: int = 1000,
    max_bytes: int = 1024 * 1024,
    max_seconds: float = 5.0,
) -> BatchBuffer:
    limits = BatchSettings(
        max_records=max_records,
        max_contacts=max_contacts,
        max_bytes=max_bytes,
        max_seconds=max_seconds,
    )
    return BatchBuffer(TOPIC, limits, clock)


def _offsets(batch: Batch) -> list[int]:
    return [record.offset for record in batch.records]


def test_batch_closes_at_max_records() -> None:
    buffer = _buffer(FakeClock(), max_records=3)
    offsets = Offsets()

    first = buffer.add(offsets.record(contact_id="c1"), "list-1", "List 1")
    second = buffer.add(offsets.record(contact_id="c2"), "list-1", "List 1")
    closed = buffer.add(offsets.record(contact_id="c3"), "list-1", "List 1")

    assert first == []
    assert second == []
    assert [_offsets(batch) for batch in closed] == [[0, 1, 2]]
    assert len(buffer) == 0


def test_batch_closes_at_max_contacts() -> None:
    buffer = _buffer(FakeClock(), max_records=10, max_contacts=2)
    offsets = Offsets()

    first = buffer.add(offsets.record(contact_id="c1"), "list-1", "List 1")
    rejected = buffer.add(
        offsets.record(contact_id="c2", outcome=Outcome.REJECTED), "list-1", "List 1"
    )
    duplicate = buffer.add(
        offsets.record(contact_id="c3", outcome=Outcome.DUPLICATE), "list-1", "List 1"
    )
    closed = buffer.add(offsets.record(contact_id="c4"), "list-1", "List 1")

    assert first == []
    assert rejected == [], "a rejected record does not count towards max_contacts"
    assert duplicate == [], "a duplicate does not count towards max_contacts"
    assert [_offsets(batch) for batch in closed] == [[0, 1, 2, 3]]
    assert closed[0].submit_count == 2


def test_batch_closes_at_max_bytes() -> None:
    buffer = _buffer(FakeClock(), max_bytes=1024)
    offsets = Offsets()

    first = buffer.add(offsets.record(contact_id="c1", size=600), "list-1", "List 1")
    closed = buffer.add(offsets.record(contact_id="c2", size=600), "list-1", "List 1")

    assert first == []
    assert [_offsets(batch) for batch in closed] == [[0, 1]]
    assert closed[0].byte_size == 1200


def test_record_over_max_bytes_closes_alone() -> None:
    buffer = _buffer(FakeClock(), max_bytes=1024)

    closed = buffer.add(Offsets().record(size=5000), "list-1", "List 1")

    assert [_offsets(batch) for batch in closed] == [[0]]


def test_due_closes_after_max_seconds() -> None:
    clock = FakeClock()
    buffer = _buffer(clock, max_seconds=5.0)
    offsets = Offsets()
    buffer.add(offsets.record(contact_id="c1"), "list-1", "List 1")
    clock.now += 3.0
    buffer.add(offsets.record(contact_id="c2"), "list-2", "List 2")

    clock.now += 1.5
    early = buffer.due()
    clock.now += 0.5
    first_due = buffer.due()
    clock.now += 3.0
    second_due = buffer.due()

    assert early == []
    assert [batch.contact_list_id for batch in first_due] == ["list-1"]
    assert [batch.contact_list_id for batch in second_due] == ["list-2"]
    assert len(buffer) == 0


def test_due_counts_from_first_record() -> None:
    clock = FakeClock()
    buffer = _buffer(clock, max_seconds=5.0)
    offsets = Offsets()
    buffer.add(offsets.record(contact_id="c1"), "list-1", "List 1")
    clock.now += 4.0
    buffer.add(offsets.record(contact_id="c2"), "list-1", "List 1")
    clock.now += 1.0

    closed = buffer.due()

    assert [_offsets(batch) for batch in closed] == [[0, 1]]
    assert closed[0].opened_at == 1000.0


def test_second_submit_of_contact_closes_batch() -> None:
    buffer = _buffer(FakeClock())
    offsets = Offsets()
    buffer.add(offsets.record(contact_id="c1"), "list-1", "List 1")
    buffer.add(offsets.record(contact_id="c2"), "list-1", "List 1")

    closed = buffer.add(offsets.record(contact_id="c1"), "list-1", "List 1")
    still_open = buffer.pop_all()

    assert [_offsets(batch) for batch in closed] == [[0, 1]]
    assert [_offsets(batch) for batch in still_open] == [[2]]


@pytest.mark.parametrize("outcome", [Outcome.REJECTED, Outcome.DUPLICATE])
def test_repeat_contact_without_submit_stays(outcome: Outcome) -> None:
    buffer = _buffer(FakeClock())
    offsets = Offsets()
    buffer.add(offsets.record(contact_id="c1"), "list-1", "List 1")

    closed = buffer.add(offsets.record(contact_id="c1", outcome=outcome), "list-1", "List 1")
    after_repeat = buffer.add(offsets.record(contact_id="c1"), "list-1", "List 1")

    assert closed == []
    assert [_offsets(batch) for batch in after_repeat] == [[0, 1]]


def test_same_contact_in_other_list_stays() -> None:
    buffer = _buffer(FakeClock())
    offsets = Offsets()
    buffer.add(offsets.record(contact_id="c1"), "list-1", "List 1")

    closed = buffer.add(offsets.record(contact_id="c1"), "list-2", "List 2")

    assert closed == []
    assert len(buffer) == 2


def test_batches_split_by_partition_and_list() -> None:
    buffer = _buffer(FakeClock())
    offsets = Offsets()
    buffer.add(offsets.record(0, "c1"), "list-1", "List 1")
    buffer.add(offsets.record(1, "c2"), "list-1", "List 1")
    buffer.add(offsets.record(0, "c3"), "list-2", "List 2")
    buffer.add(offsets.record(0, "c4"), "list-1", "List 1")

    batches = buffer.pop_all()

    slots = {(batch.partition, batch.contact_list_id): _offsets(batch) for batch in batches}
    assert slots == {(0, "list-1"): [0, 2], (1, "list-1"): [0], (0, "list-2"): [1]}
    assert {batch.contact_list_name for batch in batches} == {"List 1", "List 2"}
    assert len(buffer) == 0


def test_pop_partition_leaves_other_partitions() -> None:
    buffer = _buffer(FakeClock())
    offsets = Offsets()
    buffer.add(offsets.record(0, "c1"), "list-1", "List 1")
    buffer.add(offsets.record(0, "c2"), "list-2", "List 2")
    buffer.add(offsets.record(1, "c3"), "list-1", "List 1")

    revoked = buffer.pop_partition(0)
    remaining = buffer.pop_all()

    assert sorted(batch.contact_list_id for batch in revoked) == ["list-1", "list-2"]
    assert {batch.partition for batch in revoked} == {0}
    assert [(batch.partition, batch.contact_list_id) for batch in remaining] == [(1, "list-1")]


def test_pop_all_empties_buffer() -> None:
    buffer = _buffer(FakeClock())
    buffer.add(Offsets().record(), "list-1", "List 1")

    first = buffer.pop_all()
    second = buffer.pop_all()

    assert len(first) == 1
    assert second == []
    assert len(buffer) == 0


def test_records_with_outcome() -> None:
    buffer = _buffer(FakeClock())
    offsets = Offsets()
    buffer.add(offsets.record(contact_id="c1"), "list-1", "List 1")
    buffer.add(offsets.record(contact_id="c2", outcome=Outcome.REJECTED), "list-1", "List 1")
    buffer.add(offsets.record(contact_id="c3", outcome=Outcome.DUPLICATE), "list-1", "List 1")
    (batch,) = buffer.pop_all()

    assert [record.offset for record in batch.records_with(Outcome.SUBMIT)] == [0]
    assert [record.offset for record in batch.records_with(Outcome.REJECTED)] == [1]
    assert [record.offset for record in batch.records_with(Outcome.DUPLICATE)] == [2]


def test_object_key_layout() -> None:
    buffer = _buffer(FakeClock())
    offsets = Offsets()
    offsets.next_offset[3] = 41
    buffer.add(offsets.record(3, "c1"), "list-1", "List 1")
    buffer.add(offsets.record(3, "c2"), "list-1", "List 1")
    (batch,) = buffer.pop_all()

    key = batch.object_key("/archive/")

    assert key == (
        "archive/contact-events/partition=0003/00000000000000000041-00000000000000000042.list-1.csv"
    )


# Any sequence of additions, clock advances and due() calls.

ADD = st.tuples(
    st.just("add"),
    st.integers(0, 2),  # partition
    st.sampled_from(["list-1", "list-2"]),
    st.sampled_from(["c1", "c2", "c3", "c4"]),
    st.sampled_from(list(Outcome)),
    st.integers(0, 700),  # size in bytes
)
ADVANCE = st.tuples(st.just("advance"), st.floats(0.1, 4.0))
DUE = st.tuples(st.just("due"))
STEPS = st.lists(st.one_of(ADD, ADD, ADD, ADVANCE, DUE), max_size=80)


@settings(max_examples=300)
@given(steps=STEPS, max_records=st.integers(1, 6))
def test_batches_cover_every_offset(steps: list[tuple], max_records: int) -> None:
    clock = FakeClock()
    buffer = _buffer(clock, max_records=max_records, max_bytes=1024, max_seconds=5.0)
    offsets = Offsets()
    added: list[tuple[int, int]] = []
    closed: list[Batch] = []

    for step in steps:
        if step[0] == "add":
            _, partition, list_id, contact_id, outcome, size = step
            record = offsets.record(partition, contact_id, outcome=outcome, size=size)
            added.append((partition, record.offset))
            closed.extend(buffer.add(record, list_id, list_id.title()))
        elif step[0] == "advance":
            clock.now += step[1]
        else:
            closed.extend(buffer.due())
    closed.extend(buffer.pop_all())

    positions = [(batch.partition, record.offset) for batch in closed for record in batch.records]
    assert sorted(positions) == sorted(added)
    assert len(positions) == len(set(positions))
    assert len(buffer) == 0

    by_slot: dict[tuple[int, str], list[Batch]] = defaultdict(list)
    for batch in closed:
        assert batch.records, "empty batch"
        assert {record.partition for record in batch.records} == {batch.partition}
        assert _offsets(batch) == sorted(_offsets(batch)), f"offsets out of order: {batch}"
        assert len(batch.records) <= max_records
        assert batch.byte_size - batch.records[-1].size < 1024, f"closed too late: {batch}"
        submitted = [r.contact_id for r in batch.records if r.outcome is Outcome.SUBMIT]
        assert len(submitted) == len(set(submitted)), f"contact submitted twice: {batch}"
        by_slot[(batch.partition, batch.contact_list_id)].append(batch)

    for slot, batches in by_slot.items():
        for earlier, later in pairwise(batches):
            assert earlier.last_offset < later.first_offset, f"{slot}: overlapping offset ranges"

    batch_ids = [batch.batch_id for batch in closed]
    object_keys = [batch.object_key("archive") for batch in closed]
    assert len(set(batch_ids)) == len(closed)
    assert len(set(object_keys)) == len(closed)

    for batch in closed:
        copy = Batch(
            TOPIC,
            batch.partition,
            batch.contact_list_id,
            batch.contact_list_name,
            opened_at=clock.now + 100,
            records=[
                BatchRecord(r.partition, r.offset, r.outcome, contact_id=r.contact_id)
                for r in batch.records
            ],
        )
        assert copy.batch_id == batch.batch_id
        assert copy.object_key("archive") == batch.object_key("archive")


# Replays: records read again after a crash form the planned batches, whatever the timing.

REPLAY_TIMING = st.lists(st.one_of(ADVANCE, DUE, st.just(("none",))), min_size=1, max_size=200)


@settings(max_examples=200)
@given(steps=STEPS, replay_timing=REPLAY_TIMING, max_records=st.integers(1, 6))
def test_replayed_records_form_the_planned_batches(
    steps: list[tuple], replay_timing: list[tuple], max_records: int
) -> None:
    clock = FakeClock()
    buffer = _buffer(clock, max_records=max_records, max_bytes=1024, max_seconds=5.0)
    offsets = Offsets()
    added: list[tuple[BatchRecord, str]] = []
    closed: list[Batch] = []
    for step in steps:
        if step[0] == "add":
            _, partition, list_id, contact_id, outcome, size = step
            record = offsets.record(partition, contact_id, outcome=outcome, size=size)
            added.append((record, list_id))
            closed.extend(buffer.add(record, list_id, list_id.title()))
        elif step[0] == "advance":
            clock.now += step[1]
        else:
            closed.extend(buffer.due())
    # The batches that were planned before the crash; the open ones were never planned.
    plans = {(batch.partition, batch.contact_list_id): [] for batch in closed}
    for batch in closed:
        plans[(batch.partition, batch.contact_list_id)].append(
            BatchProgress(batch.first_offset, batch.last_offset)
        )

    replay = _buffer(FakeClock(), max_records=max_records, max_bytes=1024, max_seconds=5.0)
    replayed: list[Batch] = []
    timing = iter(replay_timing * (len(added) + 1))
    for record, list_id in added:
        copy = BatchRecord(
            partition=record.partition,
            offset=record.offset,
            outcome=record.outcome,
            contact_id=record.contact_id,
            size=record.size,
        )
        plan = progress.covering(plans.get((record.partition, list_id), []), record.offset)
        replayed.extend(replay.add(copy, list_id, list_id.title(), plan))
        step = next(timing)
        if step[0] == "advance":
            replay.clock.now += step[1]  # type: ignore[attr-defined]
        elif step[0] == "due":
            replayed.extend(replay.due())
    replayed.extend(replay.pop_all())

    def ranges(batches: list[Batch]) -> set[tuple[int, str, int, int]]:
        return {(b.partition, b.contact_list_id, b.first_offset, b.last_offset) for b in batches}

    assert ranges(closed) <= ranges(replayed)
    planned_keys = {batch.object_key("archive") for batch in closed}
    replayed_keys = [batch.object_key("archive") for batch in replayed]
    assert planned_keys <= set(replayed_keys)
    positions = [(b.partition, r.offset) for b in replayed for r in b.records]
    assert len(positions) == len(set(positions)) == len(added)
    for batch in replayed:
        if batch.object_key("archive") in planned_keys:
            continue
        for planned in closed:
            if (planned.partition, planned.contact_list_id) == (
                batch.partition,
                batch.contact_list_id,
            ):
                assert (
                    batch.last_offset < planned.first_offset
                    or batch.first_offset > planned.last_offset
                ), "a new batch overlaps a planned one"
