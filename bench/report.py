"""Logging set-up and report output shared by the benchmark commands."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def configure_logging(quiet: bool) -> None:
    """Log to standard error: warnings only when `quiet` (with --json), otherwise progress too."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


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
