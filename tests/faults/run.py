"""Shared parts of the fault tests: a private local stack per test and the common checks.

The workload builder, the checker and the worker supervisor live in `bench` (workload.py,
figures.py, fault_run.py), so that `python -m bench.reliability` runs exactly what these tests run.
Each test starts its own stack, because it stops, kills or slows one of its services.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.fault_run import FaultRun
from bench.figures import RunFigures
from local_stack.stack import LocalStack

# Seconds a test waits for every outcome after its last fault. The wait also ends after 60 s
# without a new outcome. Each test that passed took 45 to 130 s on a 2-core machine, the start of
# its stack included.
ACCOUNTING_SECONDS = 150.0
# Seconds to wait for the CRM deliveries once every outcome is in. A delivery normally follows
# its result within a second, but a worker that took over partitions after a crash needs a
# rebalance first (about 10 s with the session timeout that bench.fault_run sets).
WEBHOOK_SECONDS = 45.0


@asynccontextmanager
async def fault_run(
    stack: LocalStack,
    work_dir: Path,
    *,
    records: int,
    seed: int,
    extra_env: Mapping[str, str] | None = None,
) -> AsyncIterator[FaultRun]:
    """Yield a prepared run: topics, list and workload in place, and no worker yet.

    Every worker the test starts is stopped when the block ends.
    """
    async with FaultRun(stack, work_dir, records=records, seed=seed, extra_env=extra_env) as run:
        await run.prepare()
        yield run


async def save_report(
    run: FaultRun, figures: RunFigures, work_dir: Path, **extra: Any
) -> dict[str, Any]:
    """Write the run's report to figures.json in `work_dir`, print it and return it."""
    report = await run.report(figures, **extra)
    text = json.dumps(report, indent=2, sort_keys=True)
    (work_dir / "figures.json").write_text(text + "\n")
    print(text)
    return report


def check_reliability(figures: RunFigures, report: Mapping[str, Any]) -> None:
    """Assert the figures every fault test requires, one assert per figure."""
    details = json.dumps(report, indent=2, sort_keys=True)
    assert figures.lost == 0, f"{figures.lost} messages have no outcome\n{details}"
    assert figures.counted_twice == 0, f"{figures.counted_twice} events counted twice\n{details}"
    assert figures.written_twice == 0, (
        f"{figures.written_twice} Genesys writes repeated unchanged content\n{details}"
    )
    assert figures.archive_overlaps == 0, (
        f"{figures.archive_overlaps} offsets are in two S3 manifests\n{details}"
    )
    assert figures.webhook_batches_missing == 0, (
        f"{figures.webhook_batches_missing} batches never reached the CRM\n{details}"
    )
    assert figures.max_requests_per_minute <= figures.limit_per_minute, (
        f"{figures.max_requests_per_minute} requests in one minute, over the limit of "
        f"{figures.limit_per_minute}\n{details}"
    )

    # Further checks of the same run: the webhook headers, repeated results, the planned
    # outcome of every event, and the contact list's final content.
    assert figures.webhook_id_mismatch == 0, (
        f"{figures.webhook_id_mismatch} deliveries with a webhook-id other than the batch id\n"
        f"{details}"
    )
    assert figures.result_conflicts == 0, (
        f"{figures.result_conflicts} batch ids with differing results\n{details}"
    )
    assert figures.unexpected_outcomes == 0, (
        f"{figures.unexpected_outcomes} events with another outcome than planned\n{details}"
    )
    assert report["uncommitted_records"] == 0, (
        f"{report['uncommitted_records']} contact events stay uncommitted after the run\n{details}"
    )
    assert figures.genesys_mismatches == 0, (
        f"{figures.genesys_mismatches} contacts differ from the expected list\n{details}"
    )


def deadline_in(seconds: float) -> float:
    return time.monotonic() + seconds
