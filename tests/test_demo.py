"""The demo's summary and its timeout: the numbers it prints and the line that explains a timeout."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any, cast

from local_stack.stack import LocalStack
from stream_app.demo import (
    DemoSummary,
    ResultTally,
    _wait_until_accounted,
    describe_timeout,
    format_table,
)

CMS_ROWS = 4807


def test_timeout_names_unaccounted_records() -> None:
    summary = DemoSummary(records_read=CMS_ROWS, unaccounted=CMS_ROWS, timed_out=True)

    assert describe_timeout(summary, 5.0) == (
        "timed out after 5 s with 4807 of 4807 records unaccounted; "
        "run again with a longer --timeout"
    )


def test_timeout_names_missing_deliveries() -> None:
    summary = DemoSummary(
        records_read=10,
        contacts_imported=8,
        records_rejected=2,
        batches=3,
        webhook_deliveries=1,
        dead_letter_records=1,
        timed_out=True,
    )

    assert describe_timeout(summary, 2.5) == (
        "timed out after 2.5 s with 2 of 3 webhook deliveries missing and 1 of 2 rejected "
        "records missing from the dead-letter topic; run again with a longer --timeout"
    )


def test_table_omits_timed_out() -> None:
    table = format_table(DemoSummary(records_read=1, unaccounted=1, timed_out=True))

    assert "timed_out" not in table
    assert "unaccounted" in table


@dataclass
class _FakeTally:
    """Stands in for ResultTally: returns a fixed summary and counts the polls."""

    summary_to_return: DemoSummary
    polls: int = 0

    async def poll(self) -> None:
        self.polls += 1

    def summary(self, records_read: int) -> DemoSummary:
        summary = replace(self.summary_to_return, records_read=records_read)
        summary.unaccounted = records_read - summary.accounted()
        return summary


@dataclass
class _FakeCrm:
    delivered_batches: list[str] = field(default_factory=list)

    def deliveries(self) -> list[dict[str, Any]]:
        return [{"webhook_id": batch, "signature_valid": True} for batch in self.delivered_batches]


@dataclass
class _FakeStack:
    crm: _FakeCrm


@dataclass
class _FakeWorker:
    returncode: int | None = None


def _wait(tally: _FakeTally, records: int, crm: _FakeCrm, timeout_seconds: float) -> DemoSummary:
    return asyncio.run(
        _wait_until_accounted(
            cast(ResultTally, tally),
            records,
            cast(LocalStack, _FakeStack(crm)),
            cast(asyncio.subprocess.Process, _FakeWorker()),
            timeout_seconds=timeout_seconds,
            show_progress=False,
        )
    )


def test_wait_sets_timed_out() -> None:
    tally = _FakeTally(DemoSummary())

    summary = _wait(tally, CMS_ROWS, _FakeCrm(), timeout_seconds=0)

    assert summary.timed_out
    assert summary.unaccounted == CMS_ROWS
    assert tally.polls == 0


def test_wait_complete_not_timed_out() -> None:
    everything_in = DemoSummary(contacts_imported=2, batches=1)
    tally = _FakeTally(everything_in)

    summary = _wait(tally, 2, _FakeCrm(["batch-1"]), timeout_seconds=600)

    assert not summary.timed_out
    assert summary.webhook_deliveries == 1
    assert tally.polls == 1
