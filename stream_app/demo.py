"""`stream-app demo`: the main job end to end on the embedded local stack.

It starts the local stack (Kafka, S3, the Genesys Cloud emulator, the CRM receiver), creates the
target contact list in the emulator and starts a worker as a child process. Then it publishes the
input file, by default the CMS hospital file shipped with the package, and waits until every
published record is accounted for: imported, rejected with a reason, or counted as a duplicate.
Last, it prints a summary and stops everything it started.

The worker writes its log to `<work dir>/logs/worker.log` and its audit log to
`<work dir>/logs/audit.jsonl`. Its status page is at http://127.0.0.1:<web port>/status while the
demo runs; `keep_running_seconds` keeps the stack and the worker up after the summary to look at it.

Accounting reads the results topic (one import result per batch, deduplicated by batch id, since
a replayed batch publishes its result again) and the dead-letter topic for records rejected before
they joined a batch (decode and routing failures).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from tqdm import tqdm

from local_stack.process import choose_port
from local_stack.stack import PROJECT_ROOT, LocalStack, StackPorts
from stream_app.contact_lists import ensure_contact_list
from stream_app.errors import ConfigurationError
from stream_app.genesys.client import GenesysClient
from stream_app.mapping import load_mapping
from stream_app.produce import produce_file
from stream_app.settings import Settings
from stream_app.topics import ensure_topics

logger = logging.getLogger(__name__)

DEMO_DATA = resources.files("stream_app") / "demo_data"
DEFAULT_INPUT = Path(str(DEMO_DATA / "cms-hospital-general-information-2017.csv"))
DEFAULT_MAPPING = Path(str(DEMO_DATA / "cms-hospitals.mapping.toml"))


@dataclass
class DemoSummary:
    records_read: int = 0
    records_valid: int = 0
    records_rejected: int = 0
    duplicates: int = 0
    contacts_imported: int = 0
    contacts_in_genesys: int = 0
    batches: int = 0
    webhook_deliveries: int = 0
    dead_letter_records: int = 0
    rejections_by_rule: dict[str, int] = field(default_factory=dict)
    unaccounted: int = 0
    seconds: float = 0.0
    # True when the timeout passed before every record, webhook delivery and dead-letter record
    # was counted. The counts are then those of the last poll.
    timed_out: bool = False

    def accounted(self) -> int:
        return self.contacts_imported + self.records_rejected + self.duplicates


def describe_timeout(summary: DemoSummary, timeout_seconds: float) -> str:
    """Return the message for a demo that timed out, naming what was still missing."""
    if summary.unaccounted > 0:
        missing = f"{summary.unaccounted} of {summary.records_read} records unaccounted"
    else:
        # The webhook deliveries and dead-letter records are only counted once every record is
        # accounted for, so they are missing only in this branch.
        parts = []
        if summary.webhook_deliveries < summary.batches:
            parts.append(
                f"{summary.batches - summary.webhook_deliveries} of {summary.batches} "
                "webhook deliveries missing"
            )
        if summary.dead_letter_records < summary.records_rejected:
            parts.append(
                f"{summary.records_rejected - summary.dead_letter_records} of "
                f"{summary.records_rejected} rejected records missing from the dead-letter topic"
            )
        missing = " and ".join(parts) or "every record accounted for"
    return (
        f"timed out after {timeout_seconds:g} s with {missing}; run again with a longer --timeout"
    )


class ResultTally:
    """Reads the results and dead-letter topics and adds up what happened to the records."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.results: dict[str, dict[str, Any]] = {}
        self.early_rejections: dict[tuple[int, int], dict[str, Any]] = {}
        self.dead_letters: set[tuple[int, int]] = set()
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        topics = self.settings.topics
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka.bootstrap_servers, enable_auto_commit=False
        )
        await self._consumer.start()
        partitions = [
            TopicPartition(topic, partition)
            for topic in (topics.import_results, topics.dead_letter)
            for partition in range(topics.partitions)
        ]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def poll(self) -> None:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=500, max_records=5000)
        for tp, messages in batches.items():
            for message in messages:
                body = json.loads(message.value)
                if tp.topic == self.settings.topics.import_results:
                    self.results[body["batch_id"]] = body
                    continue
                position = (body["partition"], body["offset"])
                self.dead_letters.add(position)
                if body.get("stage") in {"decode", "routing"}:
                    self.early_rejections[position] = body

    def summary(self, records_read: int) -> DemoSummary:
        summary = DemoSummary(records_read=records_read, batches=len(self.results))
        by_rule: dict[str, int] = {}
        for result in self.results.values():
            counts = result["counts"]
            summary.records_valid += counts["valid"] - counts["failed"]
            summary.records_rejected += counts["rejected"] + counts["failed"]
            summary.duplicates += counts["duplicates"]
            summary.contacts_imported += counts["imported"]
            for record in result["records"]:
                for reason in record.get("reasons", []) if record["outcome"] == "rejected" else []:
                    by_rule[reason["rule"]] = by_rule.get(reason["rule"], 0) + 1
        for rejected in self.early_rejections.values():
            summary.records_rejected += 1
            for reason in rejected["reasons"]:
                by_rule[reason["rule"]] = by_rule.get(reason["rule"], 0) + 1
        summary.dead_letter_records = len(self.dead_letters)
        summary.rejections_by_rule = dict(sorted(by_rule.items()))
        summary.unaccounted = records_read - summary.accounted()
        return summary


async def run_demo(
    input_path: Path = DEFAULT_INPUT,
    mapping_path: Path = DEFAULT_MAPPING,
    *,
    work_dir: Path | None = None,
    timeout_seconds: float = 600.0,
    show_progress: bool = True,
    produce_twice: bool = False,
    web_port: int | None = None,
    free_ports: bool = False,
    keep_running_seconds: float = 0.0,
    on_summary: Callable[[DemoSummary], None] | None = None,
) -> DemoSummary:
    """Run the whole demo and return its summary; every process it starts is stopped on return.

    `web_port` is the worker's web server port (default 6066, or a free one when that is
    taken). `free_ports` starts the stack and the web server on ports the kernel picks, in
    place of 9092, 9000, 8089, 8090 and 6066, so the demo can run next to another stack that is
    starting at the same time. `on_summary` receives the summary once every record is
    accounted for or `timeout_seconds` passed. Then `keep_running_seconds` keeps the stack and the worker running that
    long, or until the demo is cancelled (Ctrl-C, SIGTERM or SIGHUP), before they are stopped and the
    summary is returned.
    """
    started = time.monotonic()
    # SIGTERM and SIGHUP (a closed terminal) cancel the demo like Ctrl-C does, so the finally
    # below stops what it started. The services run in sessions of their own, so a hangup
    # reaches only this process.
    main_task = asyncio.current_task()
    if main_task is not None:
        for signal_number in (signal.SIGTERM, signal.SIGHUP):
            asyncio.get_running_loop().add_signal_handler(signal_number, main_task.cancel)
    work_dir = work_dir or PROJECT_ROOT / ".cache" / "demo" / time.strftime("%Y%m%d-%H%M%S")
    mapping = load_mapping(mapping_path)
    reference = mapping.default_contact_list
    if reference is None:
        raise ConfigurationError(
            f"{mapping_path} has no [defaults] contact_list for the demo to create; add one"
        )

    ports = StackPorts.any_free() if free_ports else StackPorts()
    stack = LocalStack(work_dir=work_dir, ports=ports)
    await asyncio.to_thread(stack.start)
    worker = None
    try:
        env = _worker_env(stack, work_dir, mapping_path, web_port or (0 if free_ports else 6066))
        settings = Settings.from_environ(env)

        await ensure_topics(settings)
        async with GenesysClient(settings.genesys) as genesys:
            contact_list, _ = await ensure_contact_list(genesys, mapping, reference)

            worker = await _start_worker(env, work_dir)
            tally = ResultTally(settings)
            await tally.start()
            try:
                produced = await produce_file(
                    settings, input_path, mapping, reference, show_progress=show_progress
                )
                total = produced.produced
                if produce_twice:
                    second = await produce_file(
                        settings, input_path, mapping, reference, show_progress=show_progress
                    )
                    total += second.produced
                summary = await _wait_until_accounted(
                    tally,
                    total,
                    stack,
                    worker,
                    timeout_seconds=timeout_seconds,
                    show_progress=show_progress,
                )
            finally:
                await tally.stop()
            summary.contacts_in_genesys = await genesys.count_contacts(contact_list.id)
        summary.seconds = round(time.monotonic() - started, 1)
        if on_summary is not None:
            on_summary(summary)
        if keep_running_seconds > 0:
            await _keep_running(keep_running_seconds, int(env["STREAM_APP_WEB_PORT"]))
        return summary
    finally:
        if worker is not None:
            worker.terminate()
            try:
                await asyncio.wait_for(worker.wait(), 30)
            except TimeoutError:
                worker.kill()
        await asyncio.to_thread(stack.stop)


def _worker_env(
    stack: LocalStack, work_dir: Path, mapping_path: Path, web_port: int
) -> dict[str, str]:
    """Return the worker's environment: the stack's addresses and the demo's files and port.

    A busy `web_port`, or 0, is replaced by a free port.
    """
    env = {**os.environ, **stack.env()}
    env["STREAM_APP_MAPPING_FILE"] = str(mapping_path)
    env["STREAM_APP_DATA_DIR"] = str(work_dir / "worker-data")
    env["STREAM_APP_WEB_PORT"] = str(choose_port(web_port))
    env["STREAM_APP_AUDIT__DESTINATION"] = "file"
    env["STREAM_APP_AUDIT__PATH"] = str(work_dir / "logs" / "audit.jsonl")
    return env


async def _keep_running(seconds: float, web_port: int) -> None:
    """Wait `seconds`, or until the demo is cancelled, which then ends normally."""
    logger.info(
        "Keeping the stack and the worker running for %.0f s; status page: "
        "http://127.0.0.1:%d/status (Ctrl-C stops)",
        seconds,
        web_port,
    )
    task = asyncio.current_task()
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        # The summary is out already, so a stop request here ends the demo normally.
        if task is not None:
            task.uncancel()


async def _start_worker(env: dict[str, str], work_dir: Path) -> asyncio.subprocess.Process:
    log_path = work_dir / "logs" / "worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stream_app.cli", "worker", env=env, stdout=log, stderr=log
    )
    logger.info(
        "Started worker (pid %d), log %s, audit log %s, status page http://127.0.0.1:%s/status",
        process.pid,
        log_path,
        env["STREAM_APP_AUDIT__PATH"],
        env["STREAM_APP_WEB_PORT"],
    )
    return process


async def _wait_until_accounted(
    tally: ResultTally,
    records: int,
    stack: LocalStack,
    worker: asyncio.subprocess.Process,
    *,
    timeout_seconds: float,
    show_progress: bool,
) -> DemoSummary:
    deadline = time.monotonic() + timeout_seconds
    progress = tqdm(
        total=records, unit=" records", desc="Accounted", disable=not show_progress, file=sys.stderr
    )
    summary = tally.summary(records)
    timed_out = True
    while time.monotonic() < deadline:
        if worker.returncode is not None:
            raise RuntimeError(
                f"the worker exited with code {worker.returncode}; see its log under {stack.work_dir / 'logs'}"
            )
        await tally.poll()
        summary = tally.summary(records)
        progress.n = summary.accounted()
        progress.refresh()
        if summary.unaccounted <= 0:
            deliveries = await asyncio.to_thread(stack.crm.deliveries)
            summary.webhook_deliveries = len(
                {d["webhook_id"] for d in deliveries if d["signature_valid"]}
            )
            # Each rejected record is dead-lettered before its batch's result is published,
            # but the two topics are read independently, so wait for both.
            all_dead_lettered = summary.dead_letter_records >= summary.records_rejected
            if summary.webhook_deliveries >= summary.batches and all_dead_lettered:
                timed_out = False
                break
        await asyncio.sleep(0.5)
    progress.close()
    summary.timed_out = timed_out
    return summary


def format_table(summary: DemoSummary) -> str:
    rows = [
        (name, value)
        for name, value in asdict(summary).items()
        if name not in {"rejections_by_rule", "timed_out"}
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    if summary.rejections_by_rule:
        lines.append("rejections by rule:")
        lines.extend(
            f"  {rule:<{width - 2}}  {count}" for rule, count in summary.rejections_by_rule.items()
        )
    return "\n".join(lines)
