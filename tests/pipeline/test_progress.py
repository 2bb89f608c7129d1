"""Batch plans: encoding, lookup by offset, replacement and pruning behind the committed offset."""

from __future__ import annotations

import pytest

from stream_app.pipeline import progress
from stream_app.pipeline.progress import BatchProgress, Step


def test_round_trip_keeps_every_stored_field_and_marks_the_entry_resumed() -> None:
    entry = BatchProgress(
        10,
        20,
        stage=Step.UPLOADED,
        s3={"bucket": "b", "key": "k.csv", "manifest_key": "k.manifest.json"},
        method="upload",
        upload_key="up-1",
        request_ids=["r1"],
    )

    (decoded,) = progress.decode_plans(progress.encode_plans([entry]))

    assert decoded == entry
    assert decoded.resumed
    assert not entry.resumed


def test_covering_finds_the_plan_whose_range_holds_the_offset() -> None:
    plans = [BatchProgress(0, 9), BatchProgress(15, 20)]

    assert progress.covering(plans, 9) is plans[0]
    assert progress.covering(plans, 15) is plans[1]
    assert progress.covering(plans, 12) is None


def test_put_replaces_the_entry_with_the_same_first_offset_and_sorts() -> None:
    plans = [BatchProgress(15, 20), BatchProgress(0, 9)]

    updated = progress.put(plans, BatchProgress(15, 20, stage=Step.ARCHIVED))

    assert [(plan.first_offset, plan.stage) for plan in updated] == [
        (0, Step.PLANNED),
        (15, Step.ARCHIVED),
    ]


def test_prune_drops_only_published_plans_behind_the_committed_offset() -> None:
    plans = [
        BatchProgress(0, 9, stage=Step.PUBLISHED),
        BatchProgress(10, 19, stage=Step.RESOLVED),
        BatchProgress(20, 29, stage=Step.PUBLISHED),
    ]

    assert progress.prune(plans, None) == plans
    assert [plan.first_offset for plan in progress.prune(plans, 25)] == [10, 20]
    assert [plan.first_offset for plan in progress.prune(plans, 30)] == [10]


def test_decode_rejects_a_value_that_is_not_a_list() -> None:
    with pytest.raises(ValueError, match="JSON array"):
        progress.decode_plans('{"first_offset": 1}')
