"""The benchmark commands' report output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.report import write_report


def test_report_written_and_printed_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "results" / "run.json"
    report = {"records": 10, "logs": "/tmp/bench-run-x"}

    write_report(report, output, as_json=True, keep_logs=False, format_table=str)

    saved = json.loads(output.read_text())
    printed = json.loads(capsys.readouterr().out)
    assert saved == {"records": 10, "logs": None}
    assert printed == saved


def test_report_table_keeps_log_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "scale.json"
    report = {"records": 10, "logs": "/tmp/bench-scale-x"}

    write_report(
        report,
        output,
        as_json=False,
        keep_logs=True,
        format_table=lambda r: f"records {r['records']}",
    )

    captured = capsys.readouterr()
    assert captured.out == "records 10\n"
    assert f"written to {output}" in captured.err
    assert json.loads(output.read_text())["logs"] == "/tmp/bench-scale-x"
