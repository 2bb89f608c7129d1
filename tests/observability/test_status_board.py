"""The status board's counts, samples and page, without Kafka."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import NamedTuple

from schemas.import_result import (
    GenesysImport,
    ImportCounts,
    ImportResult,
    ImportTimings,
    RecordOutcome,
)
from schemas.reason import Reason
from stream_app.observability.status import (
    StatusBoard,
    WorkerSample,
    consumer_lag,
    status_page_html,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PHONE_INVALID = Reason(field="phone", rule="phone.invalid", message="Invalid.", fix="Fix it.")
EMAIL_INVALID = Reason(field="email", rule="email.invalid", message="Invalid.", fix="Fix it.")


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class TopicPartition(NamedTuple):
    topic: str
    partition: int


def make_board(clock: FakeClock | None = None) -> StatusBoard:
    return StatusBoard(
        app_id="stream-app",
        webhook_enabled=True,
        requests_per_minute=300,
        rate_limit=270,
        clock=clock or FakeClock(),
    )


def batch_result(
    batch_id: str, *, accepted: int, rejected: int, duplicates: int = 0
) -> ImportResult:
    records = [
        RecordOutcome(source_id=f"a{n}", event_id=f"e{n}", operation="upsert", outcome="accepted")
        for n in range(accepted)
    ]
    records += [
        RecordOutcome(
            source_id=f"r{n}",
            event_id=f"f{n}",
            operation="upsert",
            outcome="rejected",
            reasons=[PHONE_INVALID, EMAIL_INVALID] if n == 0 else [PHONE_INVALID],
        )
        for n in range(rejected)
    ]
    records += [
        RecordOutcome(source_id=f"d{n}", event_id=f"g{n}", operation="upsert", outcome="duplicate")
        for n in range(duplicates)
    ]
    return ImportResult(
        batch_id=batch_id,
        contact_list="list-1",
        contact_list_name="cms-hospitals",
        counts=ImportCounts(
            received=accepted + rejected + duplicates,
            valid=accepted,
            rejected=rejected,
            duplicates=duplicates,
            submitted=accepted,
            imported=accepted,
            failed=0,
        ),
        genesys=GenesysImport(method="contacts") if accepted else None,
        timings=ImportTimings(started_at=NOW, finished_at=NOW),
        records=records,
    )


def test_board_totals_follow_demo_summary() -> None:
    board = make_board()

    board.batch_finished(
        batch_result("b-1", accepted=5, rejected=2, duplicates=1),
        partition=0,
        first_offset=0,
        last_offset=7,
    )
    board.batch_finished(
        batch_result("b-2", accepted=3, rejected=0), partition=1, first_offset=0, last_offset=2
    )
    for _ in range(2):
        board.record_dead_lettered([PHONE_INVALID], in_batch=True)
    board.record_dead_lettered([EMAIL_INVALID], in_batch=False)

    totals = board.snapshot()["totals"]
    assert totals["batches"] == 2
    assert totals["records_read"] == 12
    assert totals["records_valid"] == 8
    assert totals["contacts_imported"] == 8
    assert totals["records_rejected"] == 3
    assert totals["duplicates"] == 1
    assert totals["dead_letter_records"] == 3
    assert board.snapshot()["rejections_by_rule"] == {"email.invalid": 2, "phone.invalid": 2}


def test_board_counts_republished_batch_once() -> None:
    board = make_board()
    result = batch_result("b-1", accepted=4, rejected=0)

    board.batch_finished(result, partition=0, first_offset=0, last_offset=3)
    board.batch_finished(result, partition=0, first_offset=0, last_offset=3)

    snapshot = board.snapshot()
    assert snapshot["totals"]["batches"] == 1
    assert snapshot["totals"]["records_read"] == 4
    assert len(snapshot["batches"]) == 2


def test_board_tracks_webhook_state() -> None:
    clock = FakeClock()
    board = make_board(clock)
    board.batch_finished(
        batch_result("b-1", accepted=1, rejected=0), partition=0, first_offset=0, last_offset=0
    )
    board.batch_finished(
        batch_result("b-2", accepted=1, rejected=0), partition=0, first_offset=1, last_offset=1
    )

    clock.now = 1010.0
    board.webhook_finished("b-1", delivered=True, attempts=3)
    clock.now = 1020.0
    board.webhook_finished("b-2", delivered=False, attempts=5)

    snapshot = board.snapshot()
    webhook = snapshot["webhook"]
    assert (webhook["delivered"], webhook["retried"], webhook["dead_lettered"]) == (1, 6, 1)
    assert webhook["last_delivery_at"] == 1010.0
    assert webhook["last_failure_at"] == 1020.0
    assert snapshot["totals"]["webhook_deliveries"] == 1
    assert {row["batch_id"]: row["webhook"] for row in snapshot["batches"]} == {
        "b-1": "delivered",
        "b-2": "dead_lettered",
    }


def test_delivery_before_batch_listed() -> None:
    # The relay can deliver a result while the flush that published it still records it.
    board = make_board()
    board.webhook_finished("b-1", delivered=True, attempts=1)
    board.webhook_finished("b-2", delivered=False, attempts=4)

    board.batch_finished(
        batch_result("b-1", accepted=1, rejected=0), partition=0, first_offset=0, last_offset=0
    )
    board.batch_finished(
        batch_result("b-2", accepted=1, rejected=0), partition=0, first_offset=1, last_offset=1
    )
    board.batch_finished(
        batch_result("b-3", accepted=1, rejected=0), partition=0, first_offset=2, last_offset=2
    )

    assert {row["batch_id"]: row["webhook"] for row in board.snapshot()["batches"]} == {
        "b-1": "delivered",
        "b-2": "dead_lettered",
        "b-3": "pending",
    }
    assert board.snapshot()["totals"]["webhook_deliveries"] == 1


def test_board_keeps_latest_batches_newest_first() -> None:
    board = StatusBoard(
        app_id="stream-app",
        webhook_enabled=False,
        requests_per_minute=300,
        rate_limit=270,
        clock=FakeClock(),
        max_batches=3,
    )

    for number in range(5):
        board.batch_finished(
            batch_result(f"b-{number}", accepted=1, rejected=0),
            partition=0,
            first_offset=number,
            last_offset=number,
        )

    rows = board.snapshot()["batches"]
    assert [row["batch_id"] for row in rows] == ["b-4", "b-3", "b-2"]
    assert {row["webhook"] for row in rows} == {"off"}
    assert board.snapshot()["totals"]["batches"] == 5


def test_board_samples_rate_lag_and_headroom() -> None:
    clock = FakeClock()
    board = make_board(clock)

    board.add_sample(WorkerSample(records_in_total=100, lag=None, rate_limit_available=None))
    clock.now += 2
    board.add_sample(WorkerSample(records_in_total=1100, lag=400, rate_limit_available=250))
    clock.now += 2
    board.add_sample(WorkerSample(records_in_total=50, lag=0, rate_limit_available=135))

    snapshot = board.snapshot()
    assert [point["records_per_second"] for point in snapshot["series"]] == [0.0, 500.0, 0.0]
    assert [point["lag"] for point in snapshot["series"]] == [None, 400, 0]
    assert snapshot["lag"] == 0
    assert snapshot["genesys"]["available"] == 135
    assert snapshot["genesys"]["headroom"] == 0.5


def test_first_sample_counts_records_since_start() -> None:
    clock = FakeClock()
    board = make_board(clock)

    clock.now += 2
    board.add_sample(WorkerSample(records_in_total=100, lag=None, rate_limit_available=None))

    assert [point["records_per_second"] for point in board.snapshot()["series"]] == [50.0]


def test_consumer_lag_of_topic_partitions() -> None:
    events_0 = TopicPartition("contact-events", 0)
    events_1 = TopicPartition("contact-events", 1)
    events_2 = TopicPartition("contact-events", 2)
    results_0 = TopicPartition("contact-import-results", 0)

    lag = consumer_lag(
        "contact-events",
        end_offsets={events_0: 1000, events_1: 500, events_2: 300, results_0: 9},
        committed_offsets={events_0: 900, results_0: 1},
        read_offsets={events_1: 449},
    )

    assert lag == 100 + 50
    assert consumer_lag("contact-events", {}, {}, {}) is None


def test_page_has_element_for_every_total() -> None:
    html = status_page_html()
    ids = set(re.findall(r'id="([a-z_]+)"', html))

    assert set(make_board().snapshot()["totals"]) <= ids
    assert {"lag", "updated", "batch_rows", "rule_rows", "chart_throughput", "chart_lag"} <= ids
