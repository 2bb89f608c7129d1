"""Logging, the run and exit handling, and the report output shared by the benchmark commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from local_stack.process import LocalStackError


def configure_logging(quiet: bool) -> None:
    """Log to standard error: warnings only when `quiet` (with --json), otherwise progress too."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def add_output_arguments(
    parser: argparse.ArgumentParser, results_file: Path, project_root: Path, keep_help: str
) -> None:
    """Add --json, --keep and --output, the options that `run_measurement` and `write_report` read."""
    parser.add_argument("--json", action="store_true", help="print the figures as one line of JSON")
    parser.add_argument("--keep", action="store_true", help=keep_help)
    parser.add_argument(
        "--output",
        type=Path,
        default=results_file,
        help=f"file for the figures (default {results_file.relative_to(project_root)})",
    )


def write_report(
    report: dict[str, Any],
    output: Path,
    *,
    as_json: bool,
    keep_logs: bool,
    format_table: Callable[[dict[str, Any]], str],
) -> None:
    """Write `report` to `output` as indented JSON and print it: one JSON line, or a table.

    Without `keep_logs` the report's `logs` folder is deleted by the caller, so it is set to None.
    """
    if not keep_logs:
        report["logs"] = None
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    if as_json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(format_table(report))
        print(f"written to {output}", file=sys.stderr)


def run_measurement(
    command: str,
    args: argparse.Namespace,
    measure: Callable[[argparse.Namespace, Path], Coroutine[Any, Any, dict[str, Any]]],
    format_table: Callable[[dict[str, Any]], str],
    unfinished: type[Exception],
) -> int:
    """Run `measure` in a temporary folder, write its report, and return the exit code.

    0 when the report was written, 1 when `measure` raised `unfinished` (the folder is kept),
    2 when the stack could not start, 130 on Ctrl-C or SIGTERM. `args` needs `keep`, `json` and
    `output`.
    """
    work_dir = Path(tempfile.mkdtemp(prefix=f"{command.replace('.', '-')}-"))
    keep = args.keep
    try:
        report = asyncio.run(measure(args, work_dir))
    except (LocalStackError, OSError) as exc:
        print(f"{command}: setting up the run failed: {exc}", file=sys.stderr)
        return 2
    except unfinished as exc:
        keep = True
        print(f"{command}: the run did not finish: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        # Ctrl-C, or SIGTERM, which cancels the run's main task.
        print(f"{command}: interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    finally:
        if keep:
            print(f"{command}: logs kept in {work_dir}", file=sys.stderr)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)

    write_report(
        report, args.output, as_json=args.json, keep_logs=args.keep, format_table=format_table
    )
    return 0
