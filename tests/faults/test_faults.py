"""Fault runs: crashes, rebalances and outages while a worker imports a produced workload.

Each test starts a private local stack. It produces its whole workload (valid contacts, updates,
deletes, invalid phones, exact duplicates and poison messages) to a 4-partition topic before any
worker starts, and then injects one kind of fault. Last, it checks the figures of `bench.figures`:
nothing lost, nothing counted or written twice, no offset archived twice, every batch delivered to
the CRM, and the Genesys rate limit kept. Every figure is printed and saved as figures.json in the
test's tmp_path, next to the worker logs under logs/.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from local_stack.stack import LocalStack
from tests.faults.run import (
    ACCOUNTING_SECONDS,
    WEBHOOK_SECONDS,
    check_reliability,
    deadline_in,
    fault_run,
    save_report,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(420)]


async def test_worker_killed_five_times(private_stack: LocalStack, tmp_path: Path) -> None:
    # Enough records that five kills, each followed by a restart, come before the last outcome.
    async with fault_run(private_stack, tmp_path, records=50_000, seed=101) as run:
        run.start_worker()
        await run.kill_at_random("worker-1", 5, max_delay=4.0, deadline=deadline_in(150))
        figures = await run.finish(within=ACCOUNTING_SECONDS, webhook_within=WEBHOOK_SECONDS)
        report = await save_report(run, figures, tmp_path)

    assert run.kills >= 5, f"only {run.kills} kills before every message was accounted for"
    assert run.restarts == run.kills
    check_reliability(figures, report)


async def test_broker_restart_mid_run(private_stack: LocalStack, tmp_path: Path) -> None:
    async with fault_run(private_stack, tmp_path, records=10_000, seed=102) as run:
        run.start_worker()
        assert await run.wait_for_progress(2_000, within=90)

        run.note("stopping the Kafka broker")
        await asyncio.to_thread(private_stack.kafka.stop)
        await run.pause(10)
        run.note("starting the Kafka broker again")
        await asyncio.to_thread(private_stack.kafka.start)
        run.note("Kafka broker ready")

        figures = await run.finish(within=ACCOUNTING_SECONDS, webhook_within=WEBHOOK_SECONDS)
        report = await save_report(run, figures, tmp_path)

    assert not run.unexpected_exits, f"workers exited by themselves: {run.unexpected_exits}"
    check_reliability(figures, report)


async def test_workers_rebalance_and_crash(private_stack: LocalStack, tmp_path: Path) -> None:
    # Enough records that the first worker still has some when it is killed: the crash must hit
    # a worker in the middle of its partitions, so that the other one has to take them over.
    async with fault_run(private_stack, tmp_path, records=40_000, seed=103) as run:
        run.start_worker("worker-a")
        assert await run.wait_for_progress(1_500, within=90)

        # Rebalance 1: a second worker joins.
        run.start_worker("worker-b")
        assert await run.wait_for_owners({"worker-a", "worker-b"}, within=60)
        assert await run.wait_for_progress(1_000, within=60)

        # Rebalance 2: it leaves cleanly.
        stopped_cleanly = await run.stop_worker("worker-b")
        assert await run.wait_for_progress(1_000, within=60)

        # It joins again, and the first worker crashes while it owns partitions.
        run.start_worker("worker-b")
        assert await run.wait_for_owners({"worker-a", "worker-b"}, within=60)
        assert await run.wait_for_progress(500, within=60)
        remaining = len(run.workload.events) - run.collector.accounted
        assert remaining > 0, "every record had an outcome before the crash; raise records"
        run.kill_worker("worker-a")

        figures = await run.finish(within=ACCOUNTING_SECONDS, webhook_within=WEBHOOK_SECONDS)
        report = await save_report(run, figures, tmp_path)
        owners = await run.contact_event_owners()

    assert owners.get("worker-b") == {0, 1, 2, 3}, f"partition owners at the end: {owners}"
    check_reliability(figures, report)
    assert stopped_cleanly, "worker-b did not exit within 30 s of SIGTERM; see its log"


async def test_genesys_429_and_503_for_a_minute(private_stack: LocalStack, tmp_path: Path) -> None:
    genesys = private_stack.genesys
    async with fault_run(private_stack, tmp_path, records=10_000, seed=104) as run:
        run.start_worker()
        assert await run.wait_for_progress(1_000, within=90)

        run.note("emulator answers 50 % of calls with 429 and 10 % with 503")
        previous = await asyncio.to_thread(
            genesys.patch_settings, fault_429_share=0.5, fault_5xx_share=0.1, fault_seed=104
        )
        try:
            await run.pause(60)
        finally:
            await asyncio.to_thread(genesys.patch_settings, **previous)
        run.note("emulator answers normally again")

        figures = await run.finish(within=ACCOUNTING_SECONDS, webhook_within=WEBHOOK_SECONDS)
        injected = [
            request
            for request in await asyncio.to_thread(genesys.requests_log)
            if request["status"] in {429, 503} and request["token_hash"] is None
        ]
        report = await save_report(run, figures, tmp_path, injected_faults=len(injected))

    assert injected, "the emulator injected no 429 or 503 answer"
    check_reliability(figures, report)


async def test_s3_down_for_30_seconds(private_stack: LocalStack, tmp_path: Path) -> None:
    async with fault_run(private_stack, tmp_path, records=10_000, seed=105) as run:
        run.start_worker()
        assert await run.wait_for_progress(2_000, within=90)

        # moto keeps objects in memory only, so the manifests written so far are read before the
        # outage. The checker merges them with the listing taken at the end.
        before = await run.manifests.snapshot()
        run.note(f"stopping S3 after reading {before} manifests")
        await asyncio.to_thread(private_stack.s3.stop)
        await run.pause(30)
        await asyncio.to_thread(private_stack.s3.start)
        run.note("S3 running again, with an empty bucket")

        figures = await run.finish(within=ACCOUNTING_SECONDS, webhook_within=WEBHOOK_SECONDS)
        report = await save_report(run, figures, tmp_path, manifests_before_outage=before)

    assert not run.unexpected_exits, f"workers exited by themselves: {run.unexpected_exits}"
    check_reliability(figures, report)


async def test_crm_down_for_60_seconds(private_stack: LocalStack, tmp_path: Path) -> None:
    crm = private_stack.crm
    extra_env = {"STREAM_APP_WEBHOOK__RETRY_SECONDS": "120"}
    async with fault_run(
        private_stack, tmp_path, records=6_000, seed=106, extra_env=extra_env
    ) as run:
        run.start_worker()
        assert await run.wait_for_progress(1_000, within=90)

        run.note("CRM receiver answers every webhook with 503")
        await asyncio.to_thread(crm.fail_with, 503)
        try:
            await run.pause(60)
        finally:
            await asyncio.to_thread(crm.recover)
        run.note("CRM receiver answers normally again")

        figures = await run.finish(within=ACCOUNTING_SECONDS, webhook_within=150)
        failed = [d for d in await asyncio.to_thread(crm.deliveries) if d.get("status") == 503]
        report = await save_report(run, figures, tmp_path, deliveries_answered_503=len(failed))

    assert failed, "no webhook was attempted while the CRM was down"
    check_reliability(figures, report)


async def test_kill_during_upload_import(private_stack: LocalStack, tmp_path: Path) -> None:
    genesys = private_stack.genesys
    extra_env = {
        "STREAM_APP_GENESYS__UPLOAD_THRESHOLD": "50",
        "STREAM_APP_GENESYS__IMPORT_POLL_INTERVAL_SECONDS": "0.5",
    }
    rng = random.Random(107)
    await asyncio.to_thread(genesys.patch_settings, import_records_per_second=100)
    async with fault_run(
        private_stack, tmp_path, records=4_000, seed=107, extra_env=extra_env
    ) as run:
        assert run.contact_list_id is not None
        run.start_worker()
        writes_after_kill: list[int] = []
        for _ in range(2):
            assert await run.wait_for_log("worker-1", "bytes for import into contact list", 1, 90)
            await run.pause(rng.uniform(0.05, 0.3))
            run.kill_worker("worker-1")
            at_kill = len(await asyncio.to_thread(genesys.writes, run.contact_list_id))
            run.start_worker("worker-1")
            await run.pause(2.0)
            later = len(await asyncio.to_thread(genesys.writes, run.contact_list_id))
            writes_after_kill.append(later - at_kill)
            run.note(f"the emulator wrote {later - at_kill} contacts in the 2 s after the kill")

        figures = await run.finish(within=ACCOUNTING_SECONDS, webhook_within=WEBHOOK_SECONDS)
        report = await save_report(run, figures, tmp_path, writes_after_kill=writes_after_kill)

    assert all(writes_after_kill), f"an import had ended before a kill: {writes_after_kill}"
    check_reliability(figures, report)
