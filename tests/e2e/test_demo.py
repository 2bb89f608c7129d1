"""`stream-app demo --json` on the real CMS file, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CMS_ROWS = 4807


def test_demo_twice_accounts_for_every_record(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "stream_app.cli", "demo", "--json", "--twice", "--timeout", "400"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    summary = json.loads(completed.stdout.strip().splitlines()[-1])

    assert summary["records_read"] == 2 * CMS_ROWS
    assert summary["unaccounted"] == 0
    assert summary["contacts_in_genesys"] == summary["records_valid"]
    assert summary["contacts_imported"] == summary["records_valid"]
    # The second pass of the same file is all duplicates, except rows rejected again.
    assert summary["duplicates"] == summary["records_valid"]
    assert summary["records_rejected"] == 2 * (CMS_ROWS - summary["records_valid"])
    assert summary["records_valid"] > 4800
    assert summary["webhook_deliveries"] == summary["batches"]
    assert summary["dead_letter_records"] == summary["records_rejected"]
    assert summary["rejections_by_rule"] == {"phone.invalid": summary["records_rejected"]}
