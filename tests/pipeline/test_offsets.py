"""OffsetTracker releases records for acknowledgement only as an unbroken run from the oldest."""

from __future__ import annotations

from stream_app.pipeline.offsets import Continuity, ContinuityGuard, OffsetTracker


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


def test_continuity_accepts_an_unbroken_run() -> None:
    guard = ContinuityGuard()
    guard.start("p0", 10)

    assert [guard.check("p0", offset, now=0.0) for offset in (10, 11, 12)] == [
        Continuity.ACCEPT
    ] * 3
    assert guard.expected("p0") == 13


def test_continuity_seeks_then_drops_until_the_missing_offset() -> None:
    guard = ContinuityGuard(gap_seconds=60.0, reseek_seconds=3.0)
    guard.start("p0", 10)

    assert guard.check("p0", 12, now=0.0) is Continuity.SEEK
    assert guard.check("p0", 13, now=1.0) is Continuity.DROP
    assert guard.check("p0", 14, now=3.5) is Continuity.SEEK
    assert guard.check("p0", 10, now=4.0) is Continuity.ACCEPT
    assert guard.check("p0", 11, now=4.0) is Continuity.ACCEPT
    assert guard.check("p0", 12, now=4.0) is Continuity.ACCEPT


def test_continuity_drops_a_repeated_offset() -> None:
    guard = ContinuityGuard()
    guard.start("p0", 5)
    guard.check("p0", 5, now=0.0)

    assert guard.check("p0", 5, now=0.0) is Continuity.DROP
    assert guard.expected("p0") == 6


def test_continuity_accepts_a_real_gap_after_the_wait() -> None:
    guard = ContinuityGuard(gap_seconds=30.0, reseek_seconds=100.0)
    guard.start("p0", 10)

    assert guard.check("p0", 12, now=0.0) is Continuity.SEEK
    assert guard.check("p0", 12, now=29.0) is Continuity.DROP
    assert guard.check("p0", 12, now=30.0) is Continuity.ACCEPT
    assert guard.expected("p0") == 13


def test_continuity_reset_forgets_every_partition() -> None:
    guard = ContinuityGuard()
    guard.start("p0", 1)
    guard.reset()

    assert not guard.started("p0")


def test_continuity_due_seeks_repeat_a_seek_nothing_answered() -> None:
    guard = ContinuityGuard(reseek_seconds=3.0)
    guard.start("p0", 10)
    guard.start("p1", 4)
    assert guard.check("p0", 15, now=0.0) is Continuity.SEEK

    assert guard.due_seeks(now=2.0) == []
    assert guard.due_seeks(now=3.0) == [("p0", 10)]
    assert guard.due_seeks(now=4.0) == []
    assert guard.check("p0", 10, now=5.0) is Continuity.ACCEPT
    assert guard.due_seeks(now=10.0) == []


def test_continuity_note_seek_starts_seeking_a_quiet_partition() -> None:
    guard = ContinuityGuard(reseek_seconds=3.0)
    guard.note_seek("p0", 40, now=0.0)

    assert guard.seeking("p0")
    assert guard.expected("p0") == 40
    assert guard.check("p0", 41, now=1.0) is Continuity.DROP
    assert guard.due_seeks(now=3.0) == [("p0", 40)]
    assert guard.check("p0", 40, now=4.0) is Continuity.ACCEPT
    assert not guard.seeking("p0")
