"""Command line for the local Jaeger server: build it, serve it, or check the demo's traces in it.

    python -m local_stack.jaeger_cli build   # build .cache/jaeger/<version>/jaeger unless it is there
    python -m local_stack.jaeger_cli serve   # run Jaeger on 127.0.0.1 until Ctrl-C
    python -m local_stack.jaeger_cli check   # run `stream-app demo` against a fresh Jaeger

`check` runs the demo with OTEL_* variables that point at the server, then queries the traces of
service stream-app. It reports whether one record's traces contain the produce, batch and webhook
delivery spans that EXPECTED_SPAN_KINDS names. Those are the record's own trace and the trace of
the batch span that links to it, or one trace that has all three. scripts/jaeger-check.sh calls it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

from local_stack.jaeger import JaegerQueryError, JaegerServer, Trace
from local_stack.kafka import find_project_root
from local_stack.process import LocalStackError

logger = logging.getLogger(__name__)

# Span names of `stream-app demo` that `check` expects for one record. A span matches a kind when
# its name contains one of the kind's substrings, compared case-insensitively. Align these with
# the names that the stream_app instrumentation gives its spans.
EXPECTED_SPAN_KINDS: dict[str, tuple[str, ...]] = {
    "produce": ("produce", "publish"),
    "batch": ("batch",),
    "webhook delivery": ("webhook",),
}
BATCH_KIND = "batch"
DEFAULT_SERVICE = "stream-app"


# The check follows the links of at most this many batch traces per query, and at most this many
# links of each, because each followed link costs one request to the query API.
MAX_BATCH_TRACES = 10
MAX_LINKS_PER_BATCH = 3
MAX_REPORTED_SPANS = 40


def name_kinds(name: str, expected: Mapping[str, Sequence[str]] = EXPECTED_SPAN_KINDS) -> list[str]:
    """Return the expected kinds that a span named `name` matches, in the order of `expected`."""
    lowered = name.lower()
    return [
        kind
        for kind, substrings in expected.items()
        if any(substring.lower() in lowered for substring in substrings)
    ]


def missing_span_kinds(
    traces: Sequence[Trace], expected: Mapping[str, Sequence[str]] = EXPECTED_SPAN_KINDS
) -> list[str]:
    """Return the expected kinds that no span of `traces` matches, in the order of `expected`."""
    found = {
        kind for trace in traces for span in trace.spans for kind in name_kinds(span.name, expected)
    }
    return [kind for kind in expected if kind not in found]


def select_journey(journeys: Iterable[list[Trace]]) -> list[Trace]:
    """Return the first journey that has every expected kind, else the first with the fewest missing.

    A journey is the traces of one record. `journeys` is read lazily and only up to the first
    complete one. Returns an empty list when `journeys` is empty.
    """
    best: list[Trace] = []
    best_missing = len(EXPECTED_SPAN_KINDS) + 1
    for journey in journeys:
        missing = len(missing_span_kinds(journey))
        if missing == 0:
            return journey
        if missing < best_missing:
            best, best_missing = journey, missing
    return best


def candidate_journeys(
    server: JaegerServer, service: str, traces: Sequence[Trace], lookback: float
) -> Iterator[list[Trace]]:
    """Yield the traces of one record each: a record's trace with the batch trace that links to it first.

    A batch span may start a trace of its own that links to the traces of its records, so one
    record's spans can be split over two traces. After those pairs, each of `traces` comes alone.
    """
    batch_operations = [
        name for name in server.operations(service) if BATCH_KIND in name_kinds(name)
    ]
    for operation in batch_operations:
        batch_traces = server.traces(
            service, operation=operation, lookback_seconds=lookback, limit=MAX_BATCH_TRACES
        )
        for batch_trace in batch_traces:
            linked = dict.fromkeys(
                trace_id for span in batch_trace.spans for trace_id in span.linked_trace_ids
            )
            for trace_id in list(linked)[:MAX_LINKS_PER_BATCH]:
                record_trace = server.trace(trace_id)
                if record_trace is not None:
                    yield [record_trace, batch_trace]

    for trace in traces:
        yield [trace]


# -- command line ----------------------------------------------------------------------------------

PROJECT_ROOT = find_project_root() or Path.cwd()


class _Terminated(Exception):
    """SIGTERM arrived; raised in the main thread so that `finally` blocks stop Jaeger."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


# scripts/jaeger-check.sh sets this to its own path, so that usage and errors name the script.
CHECK_PROG_VARIABLE = "JAEGER_CHECK_PROG"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, os.environ.get(CHECK_PROG_VARIABLE) or None)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every request at INFO, and `check` polls the query API once a second.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _raise_terminated)
    if args.command == "build":
        return _cmd_build()
    if args.command == "serve":
        return _cmd_serve(args.work_dir)
    return _cmd_check(args)


def parse_args(argv: Sequence[str] | None, check_prog: str | None = None) -> argparse.Namespace:
    """Parse the command line, exiting with 2 and the usage of the command on an error.

    `check_prog` replaces "python -m local_stack.jaeger_cli check" in the usage of `check`.
    """
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.jaeger_cli",
        description=(
            "Build Jaeger v2 from its Go module and run it on 127.0.0.1 with in-memory storage. "
            "Settings come from LOCAL_JAEGER_* variables (version, go, binary, cache_dir, ports)."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser(
        "build", help="build the binary into .cache/jaeger/<version>/ unless it is there"
    )

    serve = sub.add_parser("serve", help="run Jaeger in the foreground until Ctrl-C")
    serve.add_argument("--work-dir", type=Path, default=PROJECT_ROOT / ".cache" / "jaeger-run")

    check = sub.add_parser(
        "check",
        prog=check_prog,
        help="run `stream-app demo` against a fresh Jaeger and check its traces",
        description=(
            "Start Jaeger, run `stream-app demo` with OTEL_* variables that point at it, then "
            "query the traces of SERVICE. Exit 0 when one record's traces have a produce, a batch "
            "and a webhook delivery span, 1 when none have or the demo failed, 2 when Jaeger could "
            "not be built or started."
        ),
    )
    check.add_argument(
        "--service",
        default=os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE,
        help="service name to query (default: $OTEL_SERVICE_NAME, else stream-app)",
    )
    check.add_argument(
        "--stream-app",
        type=Path,
        default=Path(sys.executable).parent / "stream-app",
        help="the stream-app executable (default: the one beside this Python)",
    )
    check.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="folder for the Jaeger config and log (default: .cache/jaeger-check/<time>)",
    )
    check.add_argument(
        "--settle-timeout",
        type=float,
        default=30.0,
        help="seconds to keep querying after the demo exits, while spans are still arriving",
    )
    check.add_argument(
        "--limit", type=int, default=10000, help="maximum number of traces to fetch (default 10000)"
    )
    check.add_argument(
        "demo_args",
        nargs=argparse.REMAINDER,
        help="options after -- are passed to `stream-app demo`, e.g. -- --timeout 600",
    )

    args, unrecognized = parser.parse_known_args(argv)
    if unrecognized:
        # parse_args would report these with the usage of the top-level parser, which lists only
        # the commands. The usage of the command shows the options it takes.
        commands = {"build": build, "serve": serve, "check": check}
        commands[args.command].error(f"unrecognized arguments: {' '.join(unrecognized)}")
    return args


def _cmd_build() -> int:
    server = JaegerServer(PROJECT_ROOT / ".cache" / "jaeger-run")
    try:
        binary = server.prepare()
    except LocalStackError as exc:
        logger.error("Jaeger build failed: %s", exc)
        return 2
    print(binary)
    return 0


def _cmd_serve(work_dir: Path) -> int:
    server = JaegerServer(work_dir)
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        server.start()
    except LocalStackError as exc:
        logger.error("Jaeger failed to start: %s", exc)
        return 2

    try:
        print(f"Jaeger {server.settings.version} is up; traces are kept in memory until it stops.")
        print(f"  query API  {server.query_url}/api/traces?service=NAME")
        print(f"  OTLP gRPC  {server.otlp_grpc_endpoint}")
        print("\nPoint an OpenTelemetry SDK at it with:")
        for name, value in otel_env(server).items():
            print(f"  export {name}={value}")
        print("\nPress Ctrl-C to stop.", flush=True)
        stopping.wait()
    finally:
        server.stop()
    return 0


def otel_env(server: JaegerServer) -> dict[str, str]:
    """Return the OTEL_* variables that make an OpenTelemetry SDK export traces to `server`."""
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": server.otlp_http_endpoint,
    }


def _cmd_check(args: argparse.Namespace) -> int:
    work_dir = args.work_dir or (
        PROJECT_ROOT / ".cache" / "jaeger-check" / time.strftime("%Y%m%d-%H%M%S")
    )
    demo_args = list(args.demo_args)
    if demo_args[:1] == ["--"]:
        demo_args = demo_args[1:]
    server = JaegerServer(work_dir)
    started = time.monotonic()
    try:
        server.start()
        demo_code = _run_demo(args.stream_app, demo_args, server)
        failure = describe_demo_failure(demo_code)
        if failure is not None:
            print(f"jaeger-check: FAILED: {failure}", file=sys.stderr)
            return 1
        lookback = time.monotonic() - started + 300.0
        traces, journey = _wait_for_journey(
            server, args.service, lookback, args.limit, args.settle_timeout
        )
    except JaegerQueryError as exc:
        logger.error("Querying Jaeger failed: %s", exc)
        return 1
    except LocalStackError as exc:
        logger.error("Jaeger check could not run: %s", exc)
        return 2
    except (KeyboardInterrupt, _Terminated):
        print("jaeger-check: stopped before the check finished", file=sys.stderr)
        return 130
    finally:
        server.stop()

    found = print_report(traces, journey, args.service, server.query_url, args.limit)
    return 0 if found else 1


def describe_demo_failure(exit_code: int) -> str | None:
    """Return why the check stops after `stream-app demo` exited with `exit_code`, or None.

    None means the demo succeeded and the check goes on to query Jaeger. A failed demo is the
    cause to report, and the traces of a demo that failed cannot tell whether tracing works.
    """
    if exit_code == 0:
        return None
    if exit_code < 0:
        cause = f"stream-app demo was killed by signal {-exit_code}"
    else:
        cause = f"stream-app demo failed with exit code {exit_code}"
    return f"{cause}, so Jaeger was not queried; fix the demo's error shown above and run again"


def _run_demo(stream_app: Path, demo_args: list[str], server: JaegerServer) -> int:
    if not os.access(stream_app, os.X_OK):
        raise LocalStackError(
            f"{stream_app} is not an executable. Run ./dev test once to create .venv, "
            "or pass --stream-app PATH."
        )

    env = {**os.environ, **otel_env(server)}
    # The config has a traces pipeline only, so metric and log exporters that read these variables
    # stay off unless the caller set them.
    env.setdefault("OTEL_METRICS_EXPORTER", "none")
    env.setdefault("OTEL_LOGS_EXPORTER", "none")
    argv = [str(stream_app), "demo", *demo_args]
    logger.info(
        "Running %s with OTEL_EXPORTER_OTLP_ENDPOINT=%s", " ".join(argv), server.otlp_http_endpoint
    )
    # The demo inherits the terminal, so its progress and summary table show as they run.
    process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)  # noqa: S603
    try:
        return process.wait()
    except BaseException:
        _stop_demo(process)
        raise


def _stop_demo(process: subprocess.Popen[bytes]) -> None:
    """Stop the demo with SIGTERM, which makes it stop the local stack it started; SIGKILL after 120 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        logger.warning(
            "stream-app demo (pid %d) did not stop within 120 s; sending SIGKILL", process.pid
        )
        process.kill()
        process.wait()


def _wait_for_journey(
    server: JaegerServer, service: str, lookback: float, limit: int, settle_timeout: float
) -> tuple[list[Trace], list[Trace]]:
    """Query until one record's journey has every expected kind or `settle_timeout` passes.

    Returns the traces of `service` (at most `limit`) and the selected journey of the last query.
    The demo's span processor and Jaeger's batch processor may still hold spans when the demo
    exits, so an early query can miss the last ones.
    """
    deadline = time.monotonic() + settle_timeout
    while True:
        try:
            traces = server.traces(service, lookback_seconds=lookback, limit=limit)
            journey = select_journey(candidate_journeys(server, service, traces, lookback))
        except JaegerQueryError as exc:
            if not exc.retriable or time.monotonic() >= deadline:
                raise
            logger.warning("Jaeger query failed, retrying: %s", exc)
            time.sleep(1.0)
            continue

        if journey and not missing_span_kinds(journey):
            return traces, journey
        if time.monotonic() >= deadline:
            return traces, journey
        time.sleep(1.0)


def print_report(
    traces: Sequence[Trace], journey: Sequence[Trace], service: str, query_url: str, limit: int
) -> bool:
    """Print the number of traces and the spans of one record; return whether they have every expected kind."""
    if not traces and not journey:
        print(f"jaeger-check: no trace of service {service} found in Jaeger at {query_url}")
        print(
            "jaeger-check: is OpenTelemetry tracing enabled in stream_app, and does it read "
            "OTEL_EXPORTER_OTLP_ENDPOINT?"
        )
        return False

    more = " (the query limit; there may be more)" if len(traces) >= limit else ""
    print(f"jaeger-check: {len(traces)} traces of service {service}{more}")
    if len(journey) > 1:
        print(
            f"jaeger-check: one record's spans, in {len(journey)} traces "
            "(the record's trace, then the batch trace that links to it):"
        )
    else:
        print("jaeger-check: the spans of one trace:")
    for trace in journey:
        _print_trace(trace)

    missing = missing_span_kinds(journey)
    if missing:
        expected = "; ".join(
            f"{kind}: {' or '.join(substrings)}" for kind, substrings in EXPECTED_SPAN_KINDS.items()
        )
        print(
            f"jaeger-check: FAILED: no record's traces have every expected span. These lack "
            f"{', '.join(missing)} (expected span names containing {expected})."
        )
        return False

    print("jaeger-check: OK: one record has a produce, a batch and a webhook delivery span")
    return True


def _print_trace(trace: Trace) -> None:
    print(f"  trace {trace.trace_id}, {len(trace.spans)} spans:")
    for span in trace.spans[:MAX_REPORTED_SPANS]:
        kinds = name_kinds(span.name)
        label = f"  [{', '.join(kinds)}]" if kinds else ""
        print(f"    {span.service:20} {span.name}{label}")
    if len(trace.spans) > MAX_REPORTED_SPANS:
        print(f"    ... and {len(trace.spans) - MAX_REPORTED_SPANS} more spans")


if __name__ == "__main__":
    sys.exit(main())
