"""The demo's logs, audit log and spans hold no phone number or e-mail address of its input.

The test runs `stream-app demo` as a user runs it, with `--free-ports` so that it does not meet
another stack that starts at the same time. The input is the CMS hospital file with two changes
that make the scan meaningful. Phone numbers are written in six formats, and an e-mail column is
added, with a few invalid addresses so that reasons carry masked e-mail values. Then it scans
every line the demo and its worker wrote (the demo's standard output and error, the worker's
log, the audit log and the span file) for each input phone number and e-mail address.

Phone numbers are compared as digits. Every phone-like run in the text (digits joined by
spaces, dots, dashes, brackets or "+") is reduced to its digits. No run may contain an input
number's 10 national digits or its E.164 digits. E-mail addresses are compared case-insensitively.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stream_app.demo import DEFAULT_INPUT, DEFAULT_MAPPING
from stream_app.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PHONE_FORMATS: list[Callable[[str], str]] = [
    lambda digits: digits,
    lambda digits: f"({digits[:3]}) {digits[3:6]}-{digits[6:]}",
    lambda digits: f"{digits[:3]}-{digits[3:6]}-{digits[6:]}",
    lambda digits: f"{digits[:3]}.{digits[3:6]}.{digits[6:]}",
    lambda digits: f"+1 {digits[:3]} {digits[3:6]} {digits[6:]}",
    lambda digits: f"+1{digits}",
]
# Every INVALID_EMAIL_EVERY-th row gets one of these invalid forms of its address.
INVALID_EMAIL_EVERY = 1200
INVALID_EMAILS: list[Callable[[str], str]] = [
    lambda local: f"{local}@@example-hospital.org",
    lambda local: f"{local}@example-hospital",
    lambda local: f"{local} @example-hospital.org",
]
# A phone-like run of text: digits joined by the characters phone numbers are written with.
PHONE_RUN = re.compile(r"\+?\(?\d(?:[\s().+-]{0,3}\d)*")
TRACE_ID = re.compile(r"^([0-9a-f]{32})?$")


@dataclass
class DemoInput:
    csv_path: Path
    mapping_path: Path
    phones: list[str]  # the values as written in the file
    emails: list[str]
    invalid_emails: int


def write_demo_input(folder: Path) -> DemoInput:
    """Write the CMS file with formatted phone numbers and an e-mail column, and its mapping."""
    raw = DEFAULT_INPUT.read_bytes().decode("cp1252")
    rows = list(csv.reader(io.StringIO(raw)))
    header, body = rows[0], rows[1:]
    phone_column = header.index("Phone Number")
    id_column = header.index("Provider ID")

    phones: list[str] = []
    emails: list[str] = []
    invalid = 0
    for number, row in enumerate(body):
        digits = row[phone_column]
        if len(digits) == 10 and digits.isdigit():
            row[phone_column] = PHONE_FORMATS[number % len(PHONE_FORMATS)](digits)
        phones.append(row[phone_column])
        local = f"Front.Desk.{row[id_column]}" if number % 2 else f"info.{row[id_column]}"
        email = f"{local}@Example-Hospital.org"
        if number % INVALID_EMAIL_EVERY == INVALID_EMAIL_EVERY // 2:
            email = INVALID_EMAILS[invalid % len(INVALID_EMAILS)](local)
            invalid += 1
        emails.append(email)
        row.append(email)
    header.append("Email")

    csv_path = folder / "cms-hospitals-with-email.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file, quoting=csv.QUOTE_ALL).writerows([header, *body])
    mapping_path = folder / "cms-hospitals-with-email.mapping.toml"
    mapping_path.write_text(
        DEFAULT_MAPPING.read_text(encoding="utf-8") + 'email = "Email"\n', encoding="utf-8"
    )
    return DemoInput(csv_path, mapping_path, phones, emails, invalid)


def phone_digit_strings(phone: str) -> set[str]:
    """Return the 10 national digits and the E.164 digits of a US number as written."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return {digits, "1" + digits}


def phone_runs(text: str) -> Iterable[str]:
    """Return the digits of each phone-like run in `text`."""
    for match in PHONE_RUN.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if len(digits) >= 10:
            yield digits


def find_leaks(
    lines: Iterable[tuple[str, str]], phones: Iterable[str], emails: Iterable[str]
) -> list[str]:
    """Return "source: value in line" for each input phone or e-mail found in `lines`."""
    phone_digits = {digits for phone in phones for digits in phone_digit_strings(phone)}
    lengths = sorted({len(digits) for digits in phone_digits})
    email_values = {email.lower() for email in emails}
    leaks: list[str] = []
    for source, line in lines:
        lowered = line.lower()
        if "@" in lowered:
            leaks.extend(
                f"{source}: e-mail {email!r} in {line[:300]!r}"
                for email in email_values
                if email in lowered
            )
        leaks.extend(
            f"{source}: phone digits {run!r} in {line[:300]!r}"
            for run in phone_runs(line)
            if any(
                run[start : start + length] in phone_digits
                for length in lengths
                for start in range(len(run) - length + 1)
            )
        )
    return leaks


def text_lines(source: str, text: str) -> list[tuple[str, str]]:
    return [(source, line) for line in text.splitlines()]


def file_lines(path: Path) -> list[tuple[str, str]]:
    return text_lines(path.name, path.read_text(encoding="utf-8", errors="replace"))


def run_demo(
    demo_input: DemoInput, work_dir: Path, span_file: Path
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STREAM_APP_TRACING__SPAN_FILE": str(span_file)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "stream_app.cli",
            "demo",
            "--json",
            "--input",
            str(demo_input.csv_path),
            "--mapping",
            str(demo_input.mapping_path),
            "--work-dir",
            str(work_dir),
            "--free-ports",
            "--timeout",
            "400",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=work_dir.parent,
        env=env,
    )


def audit_entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@dataclass
class DemoRun:
    demo_input: DemoInput
    work_dir: Path
    span_file: Path
    completed: subprocess.CompletedProcess[str]
    summary: dict[str, Any]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    folder = tmp_path_factory.mktemp("audit-scan")
    demo_input = write_demo_input(folder)
    work_dir = folder / "demo"
    span_file = folder / "spans.jsonl"

    completed = run_demo(demo_input, work_dir, span_file)

    assert completed.returncode == 0, completed.stderr[-4000:]
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    return DemoRun(demo_input, work_dir, span_file, completed, summary)


def test_demo_accounts_for_input(demo_run: DemoRun) -> None:
    summary = demo_run.summary

    assert summary["unaccounted"] == 0
    assert summary["records_read"] == len(demo_run.demo_input.phones)
    # The invalid e-mails are rejected, so their masked values are in the audit log.
    assert summary["rejections_by_rule"].get("email.invalid") == demo_run.demo_input.invalid_emails


def test_demo_logs_hold_no_contact_data(demo_run: DemoRun) -> None:
    logs = demo_run.work_dir / "logs"
    worker_log = logs / "worker.log"
    audit_log = logs / "audit.jsonl"
    assert worker_log.stat().st_size > 0
    assert audit_log.stat().st_size > 0
    lines = [
        *text_lines("demo stdout", demo_run.completed.stdout),
        *text_lines("demo stderr", demo_run.completed.stderr),
        *file_lines(worker_log),
        *file_lines(audit_log),
    ]
    # Spans are scanned whole: name, attributes, events and resource.
    if "tracing" in Settings.model_fields:
        assert demo_run.span_file.stat().st_size > 0, "the demo wrote no spans to the span file"
    if demo_run.span_file.exists():
        lines.extend(file_lines(demo_run.span_file))

    leaks = find_leaks(lines, demo_run.demo_input.phones, demo_run.demo_input.emails)

    assert leaks == [], "\n".join(leaks[:20])


def test_scan_finds_planted_contact_data() -> None:
    phones = ["(334) 793-8701", "+1 256 593 8310"]
    emails = ["Info.010001@Example-Hospital.org"]
    lines = [
        ("log", "offset 17 phone 3347938701 in batch"),
        ("log", "phone +1-256-593-8310"),
        ("log", "to INFO.010001@example-hospital.org"),
        ("log", "masked +1********01 and I***@e***.org"),
    ]

    leaks = find_leaks(lines, phones, emails)

    assert len(leaks) == 3
    assert "3347938701" in leaks[0]
    assert "12565938310" in leaks[1]
    assert "info.010001@example-hospital.org" in leaks[2]


def test_demo_audit_log_matches_summary(demo_run: DemoRun) -> None:
    summary = demo_run.summary
    entries = audit_entries(demo_run.work_dir / "logs" / "audit.jsonl")
    by_type = Counter(entry["type"] for entry in entries)
    batches = [entry for entry in entries if entry["type"] == "batch"]
    rejections = [entry for entry in entries if entry["type"] == "rejected_record"]
    webhooks = [entry for entry in entries if entry["type"] == "webhook"]

    assert set(by_type) <= {"batch", "rejected_record", "webhook"}
    assert len(batches) == summary["batches"]
    assert len({entry["batch_id"] for entry in batches}) == summary["batches"]
    assert sum(entry["counts"]["total"] for entry in batches) == summary["records_read"]
    assert sum(entry["counts"]["imported"] for entry in batches) == summary["contacts_imported"]
    assert sum(entry["counts"]["duplicates"] for entry in batches) == summary["duplicates"]
    for entry in batches:
        expected = "partial" if entry["counts"]["rejected"] else "imported"
        assert entry["outcome"] == expected, f"batch {entry['batch_id']}: {entry['counts']}"

    assert all(entry["s3_key"] for entry in batches)
    assert all(entry["genesys"]["request_ids"] for entry in batches)
    assert all(entry["webhook_id"] == entry["batch_id"] for entry in batches)

    assert len(rejections) == summary["records_rejected"]
    assert len({(entry["partition"], entry["offset"]) for entry in rejections}) == len(rejections)
    rules = Counter(reason["rule"] for entry in rejections for reason in entry["reasons"])
    assert dict(rules) == summary["rejections_by_rule"]
    for entry in rejections:
        assert entry["event_id"]
        assert entry["contact_id"]
        for reason in entry["reasons"]:
            assert reason["field"] in {"phone", "email"}
            assert reason["value_masked"]
            assert reason["message"]

    assert len(webhooks) == summary["batches"]
    assert all(entry["delivered"] for entry in webhooks)
    assert {entry["batch_id"] for entry in webhooks} == {entry["batch_id"] for entry in batches}


def test_demo_audit_lines_carry_trace_ids(demo_run: DemoRun) -> None:
    entries = audit_entries(demo_run.work_dir / "logs" / "audit.jsonl")

    for entry in entries:
        assert TRACE_ID.match(entry["trace_id"]), entry
    if "tracing" in Settings.model_fields:
        # Tracing is set up, so each batch's outcome is known inside a span or has a traceparent.
        assert all(entry["trace_id"] for entry in entries if entry["type"] == "batch")
