"""The `stream-app` command: worker, produce, create-list, dead-letters, webhook-resend and demo.

Errors that a user can fix (a mapping file, a setting, an input file) end the command with one
line naming the problem and exit code 2; set STREAM_APP_LOG_LEVEL=DEBUG to see the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from stream_app.errors import ConfigurationError
from stream_app.settings import Settings, describe_settings_errors

logger = logging.getLogger(__name__)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )
    # httpx logs every request at INFO; the Genesys client logs what matters itself.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


def _setup_observability(settings: Settings, *, with_metrics: bool = False) -> None:
    """Install the OpenTelemetry SDK for this process: tracing, and metrics for the worker."""
    from stream_app.observability.tracing import (  # noqa: PLC0415
        build_resource,
        plan_tracing,
        setup_tracing,
    )

    provider = setup_tracing(settings.tracing.span_file)
    # OTEL_SDK_DISABLED turns off the whole SDK, metrics included.
    if with_metrics and plan_tracing(os.environ, settings.tracing.span_file).enabled:
        from stream_app.observability.metrics import setup_metrics  # noqa: PLC0415

        setup_metrics(provider.resource if provider else build_resource(os.environ))


def _check_web_port_free(host: str, port: int) -> None:
    """Raise OSError with the fix when the worker's web server could not listen on host:port.

    faust would otherwise fail later with a long traceback.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # The same option aiohttp sets, so a port left in TIME_WAIT does not count as busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(
                f"the worker's web server cannot listen on {host}:{port} ({exc.strerror}); stop "
                "the process that uses the port or set STREAM_APP_WEB_PORT to a free port"
            ) from exc


def _port_number(text: str) -> int:
    """Parse a TCP port argument: a whole number from 0 to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: use a number from 0 to 65535")
    return port


def cmd_worker(args: argparse.Namespace) -> int:
    from aiokafka.errors import KafkaError  # noqa: PLC0415

    from stream_app.topics import ensure_topics  # noqa: PLC0415 - faust is slow to import
    from stream_app.worker.app import StreamWorker  # noqa: PLC0415

    settings = Settings()
    _configure_logging(settings.log_level)
    logger.info("Settings: %s", json.dumps(settings.masked_dump(), sort_keys=True))
    _setup_observability(settings, with_metrics=True)
    worker = StreamWorker(settings)
    _check_web_port_free(settings.web_host, settings.web_port)
    try:
        asyncio.run(ensure_topics(settings))
    except KafkaError as exc:
        raise ConnectionError(
            f"could not reach Kafka at {settings.kafka.bootstrap_servers} ({exc}); start the "
            "broker or correct STREAM_APP_KAFKA__BOOTSTRAP_SERVERS"
        ) from exc
    import faust  # noqa: PLC0415

    faust.Worker(
        worker.app, loglevel=settings.log_level.lower(), quiet=True
    ).execute_from_commandline()
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from stream_app.mapping import load_mapping  # noqa: PLC0415
    from stream_app.produce import produce_file  # noqa: PLC0415
    from stream_app.topics import ensure_topics  # noqa: PLC0415

    settings = Settings()
    _configure_logging(settings.log_level)
    _setup_observability(settings)
    mapping_path = args.mapping or settings.mapping_file
    if mapping_path is None:
        print(
            "stream-app produce: --mapping FILE is required (or set STREAM_APP_MAPPING_FILE)",
            file=sys.stderr,
        )
        return 2
    mapping = load_mapping(mapping_path)
    if not args.file.is_file():
        raise FileNotFoundError(f"input file {args.file} not found")

    async def run() -> None:
        await ensure_topics(settings)
        summary = await produce_file(
            settings,
            args.file,
            mapping,
            args.contact_list,
            encoding=args.encoding,
            source=args.source,
        )
        print(f"Published {summary.produced} contact events to {summary.topic}", end="")
        print(
            f"; {summary.skipped_without_id} rows without a contact id were skipped"
            if summary.skipped_without_id
            else ""
        )

    asyncio.run(run())
    return 0


def cmd_create_list(args: argparse.Namespace) -> int:
    from stream_app.contact_lists import ensure_contact_list  # noqa: PLC0415
    from stream_app.genesys.client import GenesysClient  # noqa: PLC0415
    from stream_app.mapping import load_mapping  # noqa: PLC0415

    settings = Settings()
    _configure_logging(settings.log_level)
    mapping_path = args.mapping or settings.mapping_file
    if mapping_path is None:
        raise ConfigurationError("--mapping FILE is required (or set STREAM_APP_MAPPING_FILE)")
    mapping = load_mapping(mapping_path)
    reference = args.contact_list or mapping.default_contact_list
    if reference is None:
        raise ConfigurationError("pass --contact-list NAME; the mapping file names no default list")

    async def run() -> None:
        async with GenesysClient(settings.genesys) as genesys:
            contact_list, created = await ensure_contact_list(genesys, mapping, reference)
        state = "Created" if created else "Found existing"
        print(f"{state} contact list {contact_list.name!r}: {contact_list.id}")
        print(f"  columns: {', '.join(contact_list.column_names)}")

    asyncio.run(run())
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from stream_app.topics import read_topic  # noqa: PLC0415

    settings = Settings()
    _configure_logging(settings.log_level)
    topic = settings.topics.webhook_dead_letter if args.webhook else settings.topics.dead_letter

    async def run() -> int:
        count = 0
        async for value in read_topic(settings, topic, idle_seconds=args.idle):
            record = json.loads(value)
            if not args.payload:
                for name in ("value_base64", "event", "result"):
                    record.pop(name, None)
            print(json.dumps(record, sort_keys=True))
            count += 1
        print(f"{count} records in {topic}", file=sys.stderr)
        return count

    asyncio.run(run())
    return 0


def cmd_webhook_resend(args: argparse.Namespace) -> int:
    from stream_app.webhook_resend import (  # noqa: PLC0415
        MessageReport,
        ResendFilter,
        ResendOptions,
        resend_dead_letters,
    )

    settings = Settings()
    _configure_logging(settings.log_level)
    _setup_observability(settings)
    options = ResendOptions(
        group=args.group or f"{settings.app_id}-webhook-resend",
        resend_filter=ResendFilter(since=args.since, batch_ids=frozenset(args.batch_id or ())),
        retry_seconds=args.retry_seconds,
        keep_going=args.keep_going,
    )
    # With --json, stdout contains only the summary object.
    report_stream = sys.stderr if args.json else sys.stdout

    def print_report(report: MessageReport) -> None:
        print(report.format(), file=report_stream, flush=True)

    try:
        summary = asyncio.run(resend_dead_letters(settings, options, print_report))
    except KeyboardInterrupt:
        print(
            "stream-app webhook-resend: stopped; results delivered so far are committed",
            file=sys.stderr,
        )
        return 130
    if args.json:
        print(json.dumps(summary.as_dict(), sort_keys=True))
    else:
        print(summary.format())
    return 0 if summary.complete else 1


def _iso_time(text: str) -> datetime:
    from stream_app.webhook_resend import parse_time  # noqa: PLC0415

    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}. Use ISO 8601, for example 2025-03-01T09:30:00Z"
        ) from None


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"invalid seconds {text!r}. Use a number above 0")
    return seconds


def cmd_demo(args: argparse.Namespace) -> int:
    from stream_app.demo import (  # noqa: PLC0415
        DEFAULT_INPUT,
        DEFAULT_MAPPING,
        DemoSummary,
        describe_timeout,
        format_table,
        run_demo,
    )

    _configure_logging("WARNING" if args.json else "INFO")
    _setup_observability(Settings())

    def print_summary(summary: DemoSummary) -> None:
        text = json.dumps(asdict(summary), sort_keys=True) if args.json else format_table(summary)
        print(text, flush=True)

    try:
        summary = asyncio.run(
            run_demo(
                args.input or DEFAULT_INPUT,
                args.mapping or DEFAULT_MAPPING,
                work_dir=args.work_dir,
                timeout_seconds=args.timeout,
                show_progress=not args.json,
                produce_twice=args.twice,
                web_port=args.web_port,
                free_ports=args.free_ports,
                keep_running_seconds=args.keep_running,
                on_summary=print_summary,
            )
        )
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("stream-app demo: stopped before every record was accounted for", file=sys.stderr)
        return 130
    if summary.timed_out:
        print(f"stream-app demo: {describe_timeout(summary, args.timeout)}", file=sys.stderr)
        return 1
    return 0 if summary.unaccounted == 0 else 1


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """Return the CLI's parser and its subcommand parsers by name."""
    parser = argparse.ArgumentParser(prog="stream-app", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    worker = sub.add_parser(
        "worker", help="run the faust worker (settings from STREAM_APP_* variables)"
    )
    worker.set_defaults(handler=cmd_worker)

    produce = sub.add_parser("produce", help="publish a CSV or JSONL file as contact events")
    produce.add_argument(
        "file", type=Path, help="CSV or JSONL file (.jsonl: one JSON object per line)"
    )
    produce.add_argument(
        "--mapping", type=Path, help="TOML mapping file; default STREAM_APP_MAPPING_FILE"
    )
    produce.add_argument(
        "--contact-list", help="target contact list; default: the mapping's default"
    )
    produce.add_argument(
        "--encoding", default="auto", help="file encoding, or auto to detect it (default)"
    )
    produce.add_argument(
        "--source", default="file", help="source system name written into each event"
    )
    produce.set_defaults(handler=cmd_produce)

    create_list = sub.add_parser(
        "create-list",
        help="create the Genesys Cloud contact list a mapping file describes, unless it exists",
    )
    create_list.add_argument(
        "--mapping", type=Path, help="TOML mapping file; default STREAM_APP_MAPPING_FILE"
    )
    create_list.add_argument("--contact-list", help="[lists] key; default: the mapping's default")
    create_list.set_defaults(handler=cmd_create_list)

    dead_letters = sub.add_parser(
        "dead-letters", help="print the dead-letter topic as JSON lines, from the beginning"
    )
    dead_letters.add_argument(
        "--payload",
        action="store_true",
        help="include the original message (unmasked personal data); default: reasons only",
    )
    dead_letters.add_argument(
        "--webhook", action="store_true", help="read the webhook dead-letter topic instead"
    )
    dead_letters.add_argument(
        "--idle", type=float, default=3.0, help="stop after this many seconds without a record"
    )
    dead_letters.set_defaults(handler=cmd_dead_letters)

    webhook_resend = sub.add_parser(
        "webhook-resend",
        help="re-send results from the webhook dead-letter topic to the CRM webhook",
        description=(
            "Post each result in the webhook dead-letter topic to the CRM webhook again, with its "
            "batch id as webhook-id, and commit the consumer group's offset after each delivery. "
            "Exit code 1 when a delivery failed, a message was invalid or the run stopped early."
        ),
    )
    webhook_resend.add_argument(
        "--group",
        help=(
            "consumer group that stores the progress (default: <app_id>-webhook-resend). "
            "A new name re-sends from the beginning of the topic"
        ),
    )
    webhook_resend.add_argument(
        "--since",
        type=_iso_time,
        metavar="TIME",
        help="only results that failed at or after this ISO 8601 time (UTC unless it has an offset)",
    )
    webhook_resend.add_argument(
        "--batch-id",
        action="append",
        metavar="ID",
        help="only this batch (repeat the option for several batches)",
    )
    webhook_resend.add_argument(
        "--retry-seconds",
        type=_positive_seconds,
        metavar="SECONDS",
        help="seconds to retry each delivery (default: STREAM_APP_WEBHOOK__RETRY_SECONDS, 600)",
    )
    webhook_resend.add_argument(
        "--keep-going",
        action="store_true",
        help="try every batch after a failed delivery instead of stopping",
    )
    webhook_resend.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object"
    )
    webhook_resend.set_defaults(handler=cmd_webhook_resend)

    demo = sub.add_parser("demo", help="run the main job end to end on the embedded local stack")
    demo.add_argument("--input", type=Path, help="input file (default: the CMS hospital file)")
    demo.add_argument("--mapping", type=Path, help="mapping file for --input")
    demo.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )
    demo.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for accounting")
    demo.add_argument(
        "--twice",
        action="store_true",
        help="publish the input twice; the second run must be all duplicates",
    )
    demo.add_argument(
        "--work-dir",
        type=Path,
        help="folder for the logs (worker.log, audit.jsonl) and broker data "
        "(default: .cache/demo/<time> in the project)",
    )
    demo.add_argument(
        "--web-port",
        type=_port_number,
        help="port of the worker's web server and status page (default 6066, or a free one)",
    )
    demo.add_argument(
        "--free-ports",
        action="store_true",
        help="start the local stack and the web server on free ports chosen by the kernel",
    )
    demo.add_argument(
        "--keep-running",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after the summary, keep the stack and the worker running this many seconds, to "
        "look at the status page; Ctrl-C stops earlier",
    )
    demo.set_defaults(handler=cmd_demo)

    return parser, sub.choices


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Reported by the subcommand's parser, so the usage shown is the subcommand's.
        commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.handler(args))
    except (ConfigurationError, OSError, ValueError) as exc:
        # pydantic's ValidationError is a ValueError: invalid STREAM_APP_* settings land here too.
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            logger.exception("stream-app %s failed", args.command)
        if isinstance(exc, ValidationError) and exc.title == Settings.__name__:
            problems = describe_settings_errors(exc, os.environ)
        else:
            problems = [str(exc)]
        for problem in problems:
            print(f"stream-app {args.command}: error: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
