"""`python -m bench.reliability`: one long run with repeated SIGKILLs of the worker, and its figures.

It starts its own local stack (Kafka, S3, Genesys emulator, CRM receiver) on free loopback ports in
a temporary folder, produces the fault workload of `bench.workload` (default 50,000 messages), and
starts one worker. It then kills the worker with SIGKILL at seeded random moments (default 8 times),
restarting it right after each kill, waits until every message has an outcome, and prints the
figures of `bench.figures` as one JSON object. The figures are also written to
bench/results/reliability.json. Every process it started is stopped on exit, also after Ctrl-C or
SIGTERM.

The exit code is 0 when no message was lost, counted twice or written twice, no offset is in two
S3 manifests, every batch reached the CRM and the rate limit held. It is 1 when a figure shows
otherwise, and 2 when the stack or the run could not be set up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.fault_run import FaultRun
from bench.report import add_output_arguments, configure_logging, write_report
from local_stack.process import LocalStackError
from local_stack.stack import PROJECT_ROOT, LocalStack, StackPorts

logger = logging.getLogger(__name__)

RESULTS_FILE = PROJECT_ROOT / "bench" / "results" / "reliability.json"
# Figures that must be 0 for the exit code to be 0.
ZERO_FIGURES = (
    "lost",
    "counted_twice",
    "written_twice",
    "archive_overlaps",
    "webhook_batches_missing",
    "uncommitted_records",
)


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


async def run_benchmark(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    """Start the stack, run the kills, and return the report; stop everything on the way out."""
    main_task = asyncio.current_task()
    if main_task is not None:
        # SIGTERM cancels the run like Ctrl-C does, so the finally blocks stop every process.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)

    started = time.monotonic()
    stack = LocalStack(work_dir=work_dir / "stack", ports=StackPorts.any_free())
    try:
        await _start_stack(stack)
        async with FaultRun(stack, work_dir / "run", records=args.records, seed=args.seed) as run:
            await run.prepare()
            run.start_worker()
            await run.kill_at_random(
                "worker-1",
                args.kills,
                max_delay=args.max_delay,
                deadline=time.monotonic() + args.timeout / 2,
            )
            figures = await run.finish(within=args.timeout / 2, webhook_within=30.0)
            report = await run.report(
                figures,
                kills_requested=args.kills,
                duration_s=round(time.monotonic() - started, 1),
                machine=machine(),
            )
    finally:
        await asyncio.to_thread(stack.stop)
    return report


async def _start_stack(stack: LocalStack) -> None:
    """Start the stack in a thread; on cancellation, let the start finish so stop finds it all."""
    starting = asyncio.ensure_future(asyncio.to_thread(stack.start))
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        await asyncio.gather(starting, return_exceptions=True)
        raise


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reliability",
        description=(
            "Kill the worker with SIGKILL at random moments during a long run on a private "
            "local stack, and report what was lost or repeated."
        ),
    )

    parser.add_argument(
        "--records", type=int, default=50_000, help="messages to produce (default 50000)"
    )
    parser.add_argument(
        "--kills", type=int, default=8, help="SIGKILLs of the worker, each followed by a restart"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of the workload and the kill moments"
    )
    parser.add_argument(
        "--max-delay",
        type=float,
        default=4.0,
        help=(
            "longest wait, in seconds, from a worker incarnation's first new outcome to its kill "
            "(default 4)"
        ),
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1200.0,
        help="seconds for the whole run, half for the kills and half to finish (default 1200)",
    )

    add_output_arguments(
        parser,
        RESULTS_FILE,
        PROJECT_ROOT,
        keep_help="keep the temporary folder with the stack's and the worker's logs",
    )

    args = parser.parse_args(argv)
    if args.records < 100:
        parser.error(f"--records must be at least 100, got {args.records}")
    if args.kills < 0:
        parser.error(f"--kills must not be negative, got {args.kills}")
    if args.max_delay < 0.2:
        parser.error(f"--max-delay must be at least 0.2 seconds, got {args.max_delay}")
    if args.timeout <= 0:
        parser.error(f"--timeout must be more than 0 seconds, got {args.timeout}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.json)

    work_dir = Path(tempfile.mkdtemp(prefix="bench-reliability-"))
    try:
        report = asyncio.run(run_benchmark(args, work_dir))
    except (LocalStackError, OSError) as exc:
        print(f"bench.reliability: setting up the run failed: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        # Ctrl-C, or SIGTERM, which cancels the run's main task.
        print(
            "bench.reliability: interrupted; every process it started is stopped", file=sys.stderr
        )
        return 130
    finally:
        if args.keep:
            print(f"bench.reliability: logs kept in {work_dir}", file=sys.stderr)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)

    write_report(
        report,
        args.output,
        as_json=args.json,
        keep_logs=args.keep,
        format_table=lambda report: json.dumps(report, indent=2, sort_keys=True),
    )

    failed = [name for name in ZERO_FIGURES if report[name]]
    if report["max_requests_per_minute"] > report["limit_per_minute"]:
        failed.append("max_requests_per_minute")
    if failed:
        print(f"bench.reliability: failed figures: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
