"""The benchmark commands' report output and exit codes."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench.report import run_measurement, write_report


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


class Unfinished(Exception):
    pass


def _args(output: Path) -> argparse.Namespace:
    return argparse.Namespace(keep=False, json=True, output=output)


def test_measurement_writes_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "run.json"

    folders: list[Path] = []

    async def measure(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
        folders.append(work_dir)
        return {"records": 5, "logs": str(work_dir)}

    exit_code = run_measurement("bench.test", _args(output), measure, str, Unfinished)

    assert exit_code == 0
    assert not folders[0].exists(), "the temporary folder is removed without --keep"
    assert json.loads(output.read_text()) == {"records": 5, "logs": None}
    assert json.loads(capsys.readouterr().out)["records"] == 5


def test_unfinished_measurement_keeps_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folders: list[Path] = []

    async def measure(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
        folders.append(work_dir)
        raise Unfinished("the worker exited")

    exit_code = run_measurement("bench.test", _args(tmp_path / "x.json"), measure, str, Unfinished)

    err = capsys.readouterr().err
    assert exit_code == 1
    assert "bench.test: the run did not finish: the worker exited" in err
    assert folders[0].is_dir(), "the logs of an unfinished run are kept"
    assert not (tmp_path / "x.json").exists()
    shutil.rmtree(folders[0])


def test_cancelled_measurement_exits_130(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folders: list[Path] = []

    async def measure(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
        folders.append(work_dir)
        raise asyncio.CancelledError

    exit_code = run_measurement("bench.test", _args(tmp_path / "x.json"), measure, str, Unfinished)

    assert exit_code == 130
    assert "bench.test: interrupted" in capsys.readouterr().err
    assert not folders[0].exists(), "the temporary folder is removed"
