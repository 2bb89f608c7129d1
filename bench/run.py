"""`python -m bench.run`: throughput, latency, memory, state size and API calls of one worker.

It starts its own local stack on free loopback ports, with the Genesys emulator's rate limit and
the worker's client-side limit raised to EMULATOR_REQUESTS_PER_MINUTE so that neither is the
bottleneck. Then, in one run:

1. It produces the workload (`--records` contact events from the CMS hospital file, about 2 %
   invalid and 5 % exact duplicates) to a 4-partition topic, before any worker starts.
2. Unpaced phase: one `python -m stream_app.cli worker` child process with the default batch
   settings consumes the topic until its consumer group has committed every offset. The window
   runs from the worker's first record (its log) to the emulator's last contact write.
3. Paced phase: the same worker stays up while `--paced-seconds` of new events are produced at
   half the unpaced throughput (or `--rate`). p50 and p99 latency come from this phase.
4. The worker stops with SIGTERM; its dedupe table folders are measured and counted.
5. Reference runs over the unpaced phase's records, each in a new consumer group:
   `bench.ceiling` (decode and validate only), `bench.floor_faust` (a faust agent that only
   acknowledges, the most a faust-based worker can reach) and `bench.peer_quix` (the pipeline
   in Quix Streams, without Genesys).

It prints the figures as one JSON object with `--json`, a table otherwise, and writes them to
bench/results/run.json. The exit code is 0 whatever the targets show, 1 when the run could not
finish (the worker exited or stalled), and 2 when the stack could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.fault_run import FAUST_CONSUMER_ENV, FaultRun
from bench.intake_steps import ReferenceConfig
from bench.perf_figures import (
    ProducedEvent,
    check_targets,
    contact_writes,
    end_offsets,
    first_consumed_time,
    last_write_time,
    latency_summary,
    offsets_reached,
    per_thousand,
    ratio,
    run_targets,
    steady_state_requests,
    throughput_rps,
    write_latencies,
)
from bench.perf_kafka import CommittedOffsets, produce_paced
from bench.probes import PeakMemory, count_entries, directory_bytes, machine, table_paths
from bench.report import add_output_arguments, configure_logging, run_measurement
from bench.workload import EventKind, PlannedEvent, WorkloadShares, build_workload
from local_stack.stack import PROJECT_ROOT, LocalStack, StackPorts
from stream_app.genesys.client import GenesysClient
from stream_app.settings import BatchSettings
from stream_app.worker.app import StreamWorker
from stream_app.worker.lists import ContactListCache

logger = logging.getLogger(__name__)

RESULTS_FILE = PROJECT_ROOT / "bench" / "results" / "run.json"
WORKER = "worker-1"

# Requests per minute for the emulator's limit and the worker's client-side limiter. Genesys
# Cloud's default is 300, but this benchmark measures the worker, not the org's rate limit.
EMULATOR_REQUESTS_PER_MINUTE = 100_000

# The workload of this benchmark: invalid records and exact duplicates, no updates, deletes or
# poison messages.
PERF_SHARES = WorkloadShares(invalid=0.02, duplicate=0.05, update=0.0, delete=0.0, poison=False)

# A phase fails when the consumer group's committed offsets do not move for this long.
STALL_SECONDS = 120.0
REFERENCE_TIMEOUT_SECONDS = 1800.0


class RunFailedError(RuntimeError):
    """The worker exited or stopped making progress, so the figures cannot be computed."""


def worker_extra_env() -> dict[str, str]:
    """Return the worker settings of a benchmark run on top of the fault-run environment.

    The fault runs shorten the batch time to 1 s, and the benchmark uses the worker's defaults.
    """
    defaults = BatchSettings()
    return {
        "STREAM_APP_BATCH__MAX_SECONDS": str(defaults.max_seconds),
        "STREAM_APP_BATCH__MAX_RECORDS": str(defaults.max_records),
        "STREAM_APP_BATCH__MAX_CONTACTS": str(defaults.max_contacts),
        "STREAM_APP_GENESYS__REQUESTS_PER_MINUTE": str(EMULATOR_REQUESTS_PER_MINUTE),
    }


def written_events(events: Sequence[PlannedEvent]) -> list[ProducedEvent]:
    """Return the events that must lead to an emulator write, with their Kafka timestamps."""
    return [
        ProducedEvent(event.contact_id or "", event.timestamp_ms)
        for event in events
        if event.kind in (EventKind.NEW, EventKind.UPDATE)
    ]


async def start_stack(stack: LocalStack) -> None:
    """Start the stack in a thread. On cancellation, let the start finish so stop finds it all."""
    starting = asyncio.ensure_future(asyncio.to_thread(stack.start))
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        await asyncio.gather(starting, return_exceptions=True)
        raise


async def wait_for_offsets(
    run: FaultRun,
    offsets: CommittedOffsets,
    ends: Mapping[int, int],
    memory: PeakMemory,
    phase: str,
) -> None:
    """Wait until the worker's group has committed `ends`, and sample its memory meanwhile.

    Raises RunFailedError when the worker exits or the offsets do not move for STALL_SECONDS.
    """
    worker = run.workers[WORKER]
    last: dict[int, int] = {}
    last_progress = time.monotonic()
    while True:
        memory.sample(worker.pid)
        committed = await offsets.read()
        if offsets_reached(committed, ends):
            return
        if not worker.is_running():
            raise RunFailedError(
                f"the worker exited with code {worker.exit_code()} during {phase}; "
                f"see {run.log_path(WORKER)}"
            )
        now = time.monotonic()
        if committed != last:
            last, last_progress = committed, now
        elif now - last_progress > STALL_SECONDS:
            raise RunFailedError(
                f"the worker committed nothing for {STALL_SECONDS:.0f} s during {phase} "
                f"(committed {committed}, expected {dict(ends)}); see {run.log_path(WORKER)}"
            )
        await asyncio.sleep(0.5)


async def run_unpaced(
    run: FaultRun, offsets: CommittedOffsets, memory: PeakMemory
) -> dict[str, Any]:
    """Start the worker on the pre-produced topic and measure it until every offset is committed."""
    genesys = run.stack.genesys
    assert run.contact_list_id is not None
    requests_before = len(await asyncio.to_thread(genesys.requests_log))
    events = run.workload.events
    run.start_worker(WORKER)
    await wait_for_offsets(
        run, offsets, end_offsets(e.position for e in events), memory, "the unpaced phase"
    )

    writes = await asyncio.to_thread(genesys.writes, run.contact_list_id)
    requests = await asyncio.to_thread(genesys.requests_log, requests_before)
    log_lines = run.log_path(WORKER).read_text(errors="replace").splitlines()
    expected = written_events(events)
    start = first_consumed_time(log_lines)
    end = last_write_time(writes, {event.contact_id for event in expected})
    throughput = throughput_rps(len(events), start[0], end) if start and end else None
    latencies = write_latencies(expected, writes)
    imported = len(contact_writes(writes))
    return {
        "records": len(events),
        "throughput_rps": _round(throughput),
        "window_s": _round(end - start[0]) if start and end else None,
        "window_start": start[1] if start else "not found in the worker log",
        "latency": latency_summary(latencies.latencies_ms),
        "unmatched_events": latencies.unmatched,
        "contacts_imported": imported,
        "api_calls": len(requests),
        "api_calls_per_1000": _round(per_thousand(len(requests), imported), 3),
        "api_calls_per_1000_steady": _round(
            per_thousand(steady_state_requests(requests), imported), 3
        ),
        "api_calls_by_path": _count_paths(requests),
        "writes_seen": max((int(write["seq"]) for write in writes), default=0),
    }


async def run_paced(
    run: FaultRun,
    offsets: CommittedOffsets,
    memory: PeakMemory,
    *,
    rate: float,
    seconds: float,
    seed: int,
    writes_seen: int,
) -> dict[str, Any]:
    """Produce new events at `rate` per second for `seconds` while the worker runs, and measure."""
    assert run.contact_list_id is not None
    workload = build_workload(max(100, round(rate * seconds)), seed, PERF_SHARES)
    settings = run.settings
    achieved = await produce_paced(
        settings.kafka.bootstrap_servers, settings.topics.contact_events, workload.events, rate
    )
    positions = [e.position for e in run.workload.events + workload.events]
    await wait_for_offsets(run, offsets, end_offsets(positions), memory, "the paced phase")
    writes = await asyncio.to_thread(run.stack.genesys.writes, run.contact_list_id, writes_seen)
    latencies = write_latencies(written_events(workload.events), writes)
    return {
        "records": len(workload.events),
        "rate_target_rps": _round(rate),
        "rate_achieved_rps": _round(achieved),
        "latency": latency_summary(latencies.latencies_ms),
        "unmatched_events": latencies.unmatched,
    }


async def measure_state(run: FaultRun) -> dict[str, Any]:
    """Measure the stopped worker's dedupe table: bytes on disk and entries."""
    paths = table_paths(Path(run.worker_env(WORKER)["STREAM_APP_DATA_DIR"]))
    options = StreamWorker(run.settings).dedupe_table.options or {}
    size = directory_bytes(paths)
    entries = await asyncio.to_thread(count_entries, paths, options)
    return {
        "state_bytes": size,
        "state_entries": entries,
        "state_bytes_per_entry": _round(size / entries) if entries else None,
        "state_partitions": len(paths),
    }


async def contact_list_schema(run: FaultRun) -> dict[str, Any]:
    """Read the run's contact list the way the worker does, and return its schema as JSON."""
    assert run.contact_list_id is not None
    async with GenesysClient(run.settings.genesys) as genesys:
        schema = await ContactListCache(genesys).get(run.contact_list_id)
    return schema.model_dump(mode="json")


async def run_reference(
    module: str, config_path: Path, env: Mapping[str, str], log_path: Path
) -> dict[str, Any]:
    """Run `python -m module CONFIG` and return the JSON object it prints, or an error."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            str(config_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env=dict(env),
            cwd=PROJECT_ROOT,
        )
        try:
            stdout, _ = await asyncio.wait_for(
                process.communicate(), timeout=REFERENCE_TIMEOUT_SECONDS
            )
        except (TimeoutError, asyncio.CancelledError):
            process.kill()
            await process.wait()
            raise
    lines = stdout.decode(errors="replace").strip().splitlines()
    if process.returncode != 0 or not lines:
        return {"error": f"{module} exited with code {process.returncode}; see {log_path}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


async def run_benchmark(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    """Start the stack, run both phases and the reference runs, and return the report."""
    main_task = asyncio.current_task()
    if main_task is not None:
        # SIGTERM cancels the run like Ctrl-C does, so the finally blocks stop every process.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)

    started = time.monotonic()
    stack = LocalStack(
        work_dir=work_dir / "stack",
        ports=StackPorts.any_free(),
        emulator_overrides={"rate_limit_per_minute": EMULATOR_REQUESTS_PER_MINUTE},
    )
    try:
        await start_stack(stack)
        workload = build_workload(args.records, args.seed, PERF_SHARES)
        async with FaultRun(
            stack,
            work_dir / "run",
            records=args.records,
            seed=args.seed,
            extra_env=worker_extra_env(),
            workload=workload,
        ) as run:
            await run.prepare()
            # The reliability collector is not needed here, and it would compete for the CPU.
            await run.collector.stop()
            report = await _measure(run, args)
    finally:
        await asyncio.to_thread(stack.stop)
    report["duration_s"] = round(time.monotonic() - started, 1)
    return report


async def _measure(run: FaultRun, args: argparse.Namespace) -> dict[str, Any]:
    settings = run.settings
    memory = PeakMemory()
    async with CommittedOffsets(
        settings.kafka.bootstrap_servers, settings.app_id, settings.topics.contact_events
    ) as offsets:
        unpaced = await run_unpaced(run, offsets, memory)
        rate = args.rate or (unpaced["throughput_rps"] or 0) / 2
        if rate <= 0:
            raise RunFailedError("the unpaced throughput is unknown, so pass --rate")
        paced = await run_paced(
            run,
            offsets,
            memory,
            rate=rate,
            seconds=args.paced_seconds,
            seed=args.seed + 1,
            writes_seen=unpaced.pop("writes_seen"),
        )
        memory.sample(run.workers[WORKER].pid)
    await run.stop_worker(WORKER)
    state = await measure_state(run)

    config_path = run.work_dir / "reference.json"
    ReferenceConfig(
        topic=settings.topics.contact_events,
        end_offsets=end_offsets(e.position for e in run.workload.events),
        schema=await contact_list_schema(run),
        work_dir=str(run.work_dir / "reference"),
    ).write(config_path)
    logs = run.work_dir / "logs"
    ceiling = await run_reference("bench.ceiling", config_path, run.base_env, logs / "ceiling.log")
    floor = await run_reference("bench.floor_faust", config_path, run.base_env, logs / "floor.log")
    peer = await run_reference("bench.peer_quix", config_path, run.base_env, logs / "peer.log")
    steps = await run_reference("bench.steps", config_path, run.base_env, logs / "steps.log")
    return build_report(
        args,
        run,
        unpaced=unpaced,
        paced=paced,
        state=state,
        memory=memory,
        ceiling=ceiling,
        floor=floor,
        peer=peer,
        steps=steps,
    )


def build_report(
    args: argparse.Namespace,
    run: FaultRun,
    *,
    unpaced: dict[str, Any],
    paced: dict[str, Any],
    state: dict[str, Any],
    memory: PeakMemory,
    ceiling: dict[str, Any],
    floor: dict[str, Any],
    peer: dict[str, Any],
    steps: dict[str, Any],
) -> dict[str, Any]:
    """Combine the phases' figures with the reference runs, the targets, settings and machine."""
    throughput = unpaced["throughput_rps"]
    settings = run.settings
    bound = steps_bound_rps(ceiling.get("ceiling_rps"), steps.get("us_per_record_beyond_intake"))
    figures: dict[str, Any] = {
        "records": unpaced["records"],
        "throughput_rps": throughput,
        "ceiling_rps": ceiling.get("ceiling_rps"),
        "peer_rps": peer.get("peer_rps"),
        "ratio_to_ceiling": _round(ratio(throughput, ceiling.get("ceiling_rps")), 3),
        "ratio_to_peer": _round(ratio(throughput, peer.get("peer_rps")), 3),
        "faust_floor_rps": floor.get("floor_rps"),
        "faust_floor_to_ceiling": _round(
            ratio(floor.get("floor_rps"), ceiling.get("ceiling_rps")), 3
        ),
        "steps_us_per_record_beyond_intake": steps.get("us_per_record_beyond_intake"),
        "steps_bound_rps": _round(bound),
        "steps_bound_to_ceiling": _round(ratio(bound, ceiling.get("ceiling_rps")), 3),
        "p50_ms": paced["latency"]["p50_ms"],
        "p99_ms": paced["latency"]["p99_ms"],
        "p50_ms_at_max": unpaced["latency"]["p50_ms"],
        "p99_ms_at_max": unpaced["latency"]["p99_ms"],
        "peak_rss_mb": memory.peak_mb,
        "state_bytes_per_entry": state["state_bytes_per_entry"],
        "api_calls_per_1000": unpaced["api_calls_per_1000"],
        "api_calls_per_1000_steady": unpaced["api_calls_per_1000_steady"],
    }
    return {
        **figures,
        "targets": check_targets(run_targets(settings.batch.max_seconds), figures),
        "unpaced": unpaced,
        "paced": paced,
        "state": state,
        "ceiling": ceiling,
        "faust_floor": floor,
        "peer": peer,
        "steps": steps,
        "settings": {
            "records": args.records,
            "seed": args.seed,
            "workload_shares": {
                "invalid": PERF_SHARES.invalid,
                "duplicate": PERF_SHARES.duplicate,
                "update": PERF_SHARES.update,
                "delete": PERF_SHARES.delete,
                "poison": PERF_SHARES.poison,
            },
            "partitions": settings.topics.partitions,
            "paced_seconds": args.paced_seconds,
            "batch": settings.batch.model_dump(mode="json"),
            "genesys_requests_per_minute": settings.genesys.requests_per_minute,
            "genesys_contacts_per_request": settings.genesys.contacts_per_request,
            "genesys_upload_threshold": settings.genesys.upload_threshold,
            "emulator_requests_per_minute": EMULATOR_REQUESTS_PER_MINUTE,
            "dedupe": settings.dedupe.model_dump(mode="json"),
            "faust_consumer_env": FAUST_CONSUMER_ENV,
        },
        "machine": machine(),
        "logs": str(run.work_dir / "logs"),
    }


def steps_bound_rps(ceiling_rps: float | None, beyond_intake_us: float | None) -> float | None:
    """Return the ceiling slowed down by the worker's steps beyond the intake (`bench.steps`).

    That is the most the worker could reach with its current steps if faust's delivery, the
    Kafka writes and the HTTP and S3 round trips cost nothing.
    """
    if not ceiling_rps or beyond_intake_us is None:
        return None
    return 1 / (1 / ceiling_rps + beyond_intake_us / 1e6)


def format_table(report: Mapping[str, Any]) -> str:
    """Return the main figures and the targets as a plain-text table."""
    rows = [
        ("records", report["records"]),
        ("throughput_rps", report["throughput_rps"]),
        ("ceiling_rps", report["ceiling_rps"]),
        ("peer_rps (no Genesys)", report["peer_rps"]),
        ("ratio_to_ceiling", report["ratio_to_ceiling"]),
        ("ratio_to_peer", report["ratio_to_peer"]),
        ("faust_floor_rps", report["faust_floor_rps"]),
        ("faust_floor_to_ceiling", report["faust_floor_to_ceiling"]),
        ("steps_us_per_record_beyond_intake", report["steps_us_per_record_beyond_intake"]),
        ("steps_bound_rps", report["steps_bound_rps"]),
        ("steps_bound_to_ceiling", report["steps_bound_to_ceiling"]),
        ("p50_ms (paced)", report["p50_ms"]),
        ("p99_ms (paced)", report["p99_ms"]),
        ("p50_ms_at_max", report["p50_ms_at_max"]),
        ("p99_ms_at_max", report["p99_ms_at_max"]),
        ("peak_rss_mb", report["peak_rss_mb"]),
        ("state_bytes_per_entry", report["state_bytes_per_entry"]),
        ("api_calls_per_1000", report["api_calls_per_1000"]),
        ("api_calls_per_1000_steady", report["api_calls_per_1000_steady"]),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}} {value}" for name, value in rows]
    lines.append("")
    for name, outcome in report["targets"].items():
        verdict = {True: "holds", False: "MISSED", None: "not measured"}[outcome["holds"]]
        lines.append(f"{name:<26} {verdict:<13} {outcome['target']} (value {outcome['value']})")
    return "\n".join(lines)


def _count_paths(requests: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for request in requests:
        key = f"{request.get('method')} {request.get('path')}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1])[:10])


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=(
            "Measure one worker's throughput, latency, memory, state size and Genesys API calls "
            "on a private local stack, next to a ceiling and a Quix Streams peer."
        ),
    )
    parser.add_argument(
        "--records", type=int, default=200_000, help="contact events to produce (default 200000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the workload (default 1)")
    parser.add_argument(
        "--paced-seconds",
        type=float,
        default=60.0,
        help="length of the paced phase in seconds (default 60)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="records per second of the paced phase (default: half the unpaced throughput)",
    )

    add_output_arguments(
        parser,
        RESULTS_FILE,
        PROJECT_ROOT,
        keep_help="keep the temporary folder with the stack's, the worker's and the reference logs",
    )

    args = parser.parse_args(argv)
    if args.records < 100:
        parser.error(f"--records must be at least 100, got {args.records}")
    if args.paced_seconds <= 0:
        parser.error(f"--paced-seconds must be positive, got {args.paced_seconds}")
    if args.rate is not None and args.rate <= 0:
        parser.error(f"--rate must be positive, got {args.rate}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.json)
    return run_measurement("bench.run", args, run_benchmark, format_table, RunFailedError)


if __name__ == "__main__":
    sys.exit(main())
