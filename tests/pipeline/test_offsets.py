"""OffsetTracker releases records for acknowledgement only as an unbroken run from the oldest."""

from __future__ import annotations

from stream_app.pipeline.offsets import OffsetTracker


def _tracker(partition: int, offsets: range) -> OffsetTracker:
    tracker = OffsetTracker()
    for offset in offsets:
        tracker.track(partition, offset, f"h{offset}")
    return tracker


def test_a_later_record_done_first_waits_for_the_earlier_ones() -> None:
    tracker = _tracker(0, range(10, 15))

    assert tracker.done(0, [12]) == []
    assert tracker.done(0, [10]) == ["h10"]
    assert tracker.done(0, [11]) == ["h11", "h12"]
    assert tracker.oldest(0) == 13
    assert tracker.done(0, [14, 13]) == ["h13", "h14"]
    assert tracker.oldest(0) is None
    assert len(tracker) == 0


def test_partitions_are_independent() -> None:
    tracker = _tracker(0, range(3))
    tracker.track(1, 7, "p1")

    assert tracker.done(1, [7]) == ["p1"]
    assert tracker.done(0, [1, 2]) == []
    assert len(tracker) == 3


def test_revoked_partition_is_forgotten_and_late_completions_ignored() -> None:
    tracker = _tracker(3, range(5))
    tracker.forget([3])

    assert tracker.done(3, [0, 1, 2]) == []
    assert tracker.oldest(3) is None


def test_offsets_done_twice_or_untracked_are_ignored() -> None:
    tracker = _tracker(0, range(2))

    assert tracker.done(0, [0, 0, 99]) == ["h0"]
    assert tracker.done(0, [0, 1]) == ["h1"]


def test_drain_returns_every_record_in_flight_and_empties_the_tracker() -> None:
    tracker = _tracker(0, range(3))
    tracker.track(1, 5, "p1")
    tracker.done(0, [1])

    assert sorted(tracker.drain()) == ["h0", "h1", "h2", "p1"]
    assert len(tracker) == 0
    assert tracker.done(0, [0]) == []
