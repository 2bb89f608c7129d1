"""The worker's status page, loaded in headless Chromium during `stream-app demo`.

The demo runs on the CMS hospital file with `--keep-running`, so the worker stays up after the
summary. Chromium loads http://127.0.0.1:PORT/status, runs its JavaScript (which fetches
status.json) and dumps the DOM. The test reads the numbers from the elements' data-value
attributes and compares them with the demo's summary.

Set STATUS_PAGE_SCREENSHOT=docs/status-page.png to save the page's screenshot there as well:
`STATUS_PAGE_SCREENSHOT=docs/status-page.png ./dev test tests/observability/test_status_page.py`.
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_stack.process import choose_port
from stream_app.observability.status import MAX_BATCHES
from stream_app.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_COMMAND = "apt-get install -y chromium"
# Without the background-networking flags Chromium tries to reach Google hosts at start.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Virtual time runs the page's timers and fetches: two to three refreshes of status.json.
    "--virtual-time-budget=5000",
]
SUMMARY_FIELDS = [
    "records_read",
    "records_valid",
    "records_rejected",
    "duplicates",
    "contacts_imported",
    "batches",
    "webhook_deliveries",
    "dead_letter_records",
]
# Upper bounds for waiting on processes, not expectations of speed.
DEMO_SUMMARY_WAIT_SECONDS = 500
BOARD_WAIT_SECONDS = 60
CHROMIUM_WAIT_SECONDS = 120


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Return Debian's Chromium, installed with apt-get when it is missing and this is root."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} is missing; install it with: sudo {INSTALL_COMMAND}")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=environment, check=False)
    installed = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "chromium"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.returncode != 0 or not CHROMIUM.exists():
        pytest.skip(f"{INSTALL_COMMAND} failed: {installed.stderr[-2000:]}")
    return CHROMIUM


class PageElements(HTMLParser):
    """Collects data-value by element id, rejection rows and batch rows of the status page."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.rules: dict[str, int] = {}
        self.batches: list[dict[str, str]] = []
        self.chart_points: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        element_id = attributes.get("id")
        if element_id and "data-value" in attributes:
            self.values[element_id] = attributes["data-value"]
        if element_id and "data-points" in attributes:
            self.chart_points[element_id] = int(attributes["data-points"])
        if "data-rule" in attributes:
            self.rules[attributes["data-rule"]] = int(attributes["data-count"])
        if "data-batch-id" in attributes:
            self.batches.append(attributes)


@dataclass
class RunningDemo:
    process: subprocess.Popen[str]
    web_port: int
    summary: dict[str, Any]
    stderr_lines: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"


def _read_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _wait_for_summary(stdout_lines: queue.Queue[str | None]) -> dict[str, Any]:
    deadline = time.monotonic() + DEMO_SUMMARY_WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            line = stdout_lines.get(timeout=5)
        except queue.Empty:
            continue
        if line is None:
            break
        if line.startswith("{"):
            summary: dict[str, Any] = json.loads(line)
            return summary
    raise AssertionError("the demo printed no summary")


@pytest.fixture(scope="module")
def running_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    """Run the demo until its summary, keep it running for the test, then stop it."""
    folder = tmp_path_factory.mktemp("status-page")
    web_port = choose_port(0)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stream_app.cli",
            "demo",
            "--json",
            "--work-dir",
            str(folder / "demo"),
            "--web-port",
            str(web_port),
            "--free-ports",
            "--keep-running",
            "900",
            "--timeout",
            "400",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=folder,
    )
    stdout_lines: queue.Queue[str | None] = queue.Queue()
    stderr_lines: list[str] = []
    readers = [
        threading.Thread(target=_read_lines, args=(process.stdout, stdout_lines), daemon=True),
        threading.Thread(target=lambda: stderr_lines.extend(process.stderr or []), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        summary = _wait_for_summary(stdout_lines)
        yield RunningDemo(process, web_port, summary, stderr_lines)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for reader in readers:
            reader.join(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert process.returncode == 0, "".join(stderr_lines)[-4000:]


def wait_for_board(demo: RunningDemo) -> None:
    """Wait until the worker has counted every webhook delivery and committed every offset.

    The demo stops waiting when the CRM has the deliveries, and the worker counts each one when
    the CRM's response arrives. It commits offsets every second and samples the lag every two,
    so the board can be a moment behind the summary. The wait ends after BOARD_WAIT_SECONDS
    regardless, and then the test's assertions show what differs.
    """
    deadline = time.monotonic() + BOARD_WAIT_SECONDS
    while time.monotonic() < deadline:
        status = httpx.get(f"{demo.url}/status.json", timeout=10).json()
        delivered = status["totals"]["webhook_deliveries"] >= demo.summary["webhook_deliveries"]
        if delivered and status["lag"] == 0:
            return
        time.sleep(1)


def render_page(chromium: Path, url: str, profile: Path, *extra: str) -> str:
    completed = subprocess.run(
        [str(chromium), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_WAIT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed.stdout


def test_status_page_shows_demo_summary(
    chromium: Path, running_demo: RunningDemo, tmp_path: Path
) -> None:
    summary = running_demo.summary
    wait_for_board(running_demo)

    dom = render_page(chromium, f"{running_demo.url}/status", tmp_path / "profile", "--dump-dom")
    page = PageElements()
    page.feed(dom)

    assert page.values.get("updated"), "the page's script did not render status.json"
    for name in SUMMARY_FIELDS:
        assert page.values.get(name) == str(summary[name]), name
    assert page.rules == summary["rejections_by_rule"]
    assert page.values["webhook_delivered"] == str(summary["webhook_deliveries"])
    assert page.values["webhook_dead_lettered"] == "0"
    assert page.values["lag"] == "0"


def test_status_page_lists_latest_batches(
    chromium: Path, running_demo: RunningDemo, tmp_path: Path
) -> None:
    summary = running_demo.summary
    wait_for_board(running_demo)

    dom = render_page(chromium, f"{running_demo.url}/status", tmp_path / "profile", "--dump-dom")
    page = PageElements()
    page.feed(dom)

    assert len(page.batches) == min(summary["batches"], MAX_BATCHES)
    for row in page.batches:
        # The demo's two invalid phone numbers make their batches partial.
        expected = "partial" if int(row["data-rejected"]) else "imported"
        assert row["data-outcome"] == expected, f"batch row {row}"

    assert {row["data-webhook"] for row in page.batches} == {"delivered"}
    if summary["batches"] <= MAX_BATCHES:
        assert sum(int(row["data-total"]) for row in page.batches) == summary["records_read"]
        assert (
            sum(int(row["data-imported"]) for row in page.batches) == summary["contacts_imported"]
        )
        assert sum(int(row["data-rejected"]) for row in page.batches) == summary["records_rejected"]
    assert page.chart_points["chart_throughput"] > 0
    assert page.chart_points["chart_lag"] > 0


def test_status_page_shows_rate_limit_headroom(
    chromium: Path, running_demo: RunningDemo, tmp_path: Path
) -> None:
    genesys = Settings().genesys
    limit = max(1, math.floor(genesys.requests_per_minute * genesys.rate_limit_headroom))

    dom = render_page(chromium, f"{running_demo.url}/status", tmp_path / "profile", "--dump-dom")
    page = PageElements()
    page.feed(dom)

    assert page.values["genesys_rate_limit"] == str(limit)
    assert page.values["genesys_requests_per_minute"] == str(genesys.requests_per_minute)
    available = int(page.values["genesys_available"])
    assert 0 <= available <= limit
    assert float(page.values["genesys_headroom"]) == pytest.approx(available / limit, abs=0.001)


def test_status_page_is_self_contained(running_demo: RunningDemo) -> None:
    response = httpx.get(f"{running_demo.url}/status", timeout=10)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    html = response.text
    assert re.findall(r"\b(?:src|href)\s*=", html) == []
    assert "<link" not in html
    assert "url(" not in html
    assert "@import" not in html
    # The only absolute URL is the SVG namespace, which is a name and never fetched.
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}


def test_status_page_screenshot(chromium: Path, running_demo: RunningDemo, tmp_path: Path) -> None:
    wait_for_board(running_demo)
    screenshot = tmp_path / "status-page.png"

    render_page(
        chromium,
        f"{running_demo.url}/status",
        tmp_path / "profile",
        f"--screenshot={screenshot}",
        "--window-size=1280,900",
        "--hide-scrollbars",
    )

    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    target = os.environ.get("STATUS_PAGE_SCREENSHOT")
    if target:
        shutil.copyfile(screenshot, target)
