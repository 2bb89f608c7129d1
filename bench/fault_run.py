"""One fault run: a workload in Kafka, worker processes to kill and restart, and the figures.

`FaultRun` wires a started `LocalStack` to one contact list, one set of uuid-named topics and one
S3 prefix. It produces the workload before any worker starts. Workers run as `python -m
stream_app.cli worker` child processes, each with its own data folder and web port and all with the
same app id. The run kills them with SIGKILL on a seeded random schedule and finally collects the
figures of `bench.figures`. The tests under tests/faults and `python -m bench.reliability` both
use it.

Every process a run starts is stopped by `close` (or leaving `async with`), also on errors and
cancellation. This module never stops the stack itself; its owner does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError

from bench.figures import Collected, ManifestStore, RunFigures, TopicCollector, compute_figures
from bench.workload import LIST_KEY, Workload, build_workload, mapping_text, produce_workload
from local_stack.process import ManagedProcess, choose_port
from local_stack.stack import LocalStack
from stream_app.contact_lists import ensure_contact_list
from stream_app.genesys.client import GenesysClient
from stream_app.mapping import load_mapping
from stream_app.settings import Settings
from stream_app.topics import ensure_topics

logger = logging.getLogger(__name__)

# faust reads these settings from the environment (faust-streaming 0.15.3). With the defaults
# (session timeout 60 s), a worker restarted after SIGKILL waits up to a minute until the broker
# drops the killed member from the group. Ten seconds keeps a run with several kills short.
# NOTE: production workers keep faust's defaults, because the stream-app settings do not expose
# these values.
FAUST_CONSUMER_ENV = {
    "BROKER_SESSION_TIMEOUT": "10",
    "BROKER_HEARTBEAT_INTERVAL": "1",
}


class FaultRun:
    """A workload, its workers and its checker on one local stack."""

    def __init__(
        self,
        stack: LocalStack,
        work_dir: Path,
        *,
        records: int,
        seed: int,
        extra_env: Mapping[str, str] | None = None,
        workload: Workload | None = None,
    ) -> None:
        self.stack = stack
        self.work_dir = work_dir
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 - a reproducible schedule, not security
        self.workload: Workload = (
            workload if workload is not None else build_workload(records, seed)
        )

        suffix = uuid.uuid4().hex[:10]
        self.contact_list_name = f"faults-{suffix}"
        self.mapping_file = work_dir / "mapping.toml"
        self.base_env = {
            **os.environ,
            **stack.env(),
            **FAUST_CONSUMER_ENV,
            "STREAM_APP_APP_ID": f"faults-{suffix}",
            "STREAM_APP_MAPPING_FILE": str(self.mapping_file),
            "STREAM_APP_TOPICS__CONTACT_EVENTS": f"contact-events-{suffix}",
            "STREAM_APP_TOPICS__DEAD_LETTER": f"contact-events-{suffix}.dead-letter",
            "STREAM_APP_TOPICS__IMPORT_RESULTS": f"contact-import-results-{suffix}",
            "STREAM_APP_TOPICS__WEBHOOK_DEAD_LETTER": (
                f"contact-import-results-{suffix}.webhook-dead-letter"
            ),
            "STREAM_APP_TOPICS__PARTITIONS": "4",
            "STREAM_APP_BATCH__MAX_SECONDS": "1.0",
            "STREAM_APP_S3__PREFIX": f"faults-{suffix}",
            **(extra_env or {}),
        }
        self.settings = Settings.from_environ(self.base_env)
        self.contact_list_id: str | None = None

        self.workers: dict[str, ManagedProcess] = {}
        self.kills = 0
        self.restarts = 0
        # Workers that exited although the run neither stopped nor killed them.
        self.unexpected_exits: list[str] = []
        # Workers that ignored SIGTERM until `stop_worker` sent SIGKILL.
        self.stop_timeouts: list[str] = []
        self._expected_down: set[str] = set()
        self._web_ports: dict[str, int] = {}
        # Size of each worker's log when it was last started, so log checks see one incarnation.
        self._log_starts: dict[str, int] = {}
        self.started_at = time.monotonic()

        self.collector = TopicCollector(
            self.settings.kafka.bootstrap_servers,
            self.settings.topics.import_results,
            self.settings.topics.dead_letter,
            self.settings.topics.partitions,
            self.workload,
        )
        self.manifests = ManifestStore(stack.s3.client(), stack.bucket, self.settings.s3.prefix)

    # Set-up and tear-down

    async def __aenter__(self) -> FaultRun:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def prepare(self) -> None:
        """Create the topics and the contact list, then produce the whole workload."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.mapping_file.write_text(mapping_text(self.contact_list_name))
        await ensure_topics(self.settings)
        mapping = load_mapping(self.mapping_file)
        async with GenesysClient(self.settings.genesys) as genesys:
            contact_list, _ = await ensure_contact_list(genesys, mapping, LIST_KEY)
        self.contact_list_id = contact_list.id

        started = time.monotonic()
        await produce_workload(
            self.settings.kafka.bootstrap_servers,
            self.settings.topics.contact_events,
            self.workload,
        )
        logger.info(
            "Produced %d messages to %s in %.1f s: %s",
            len(self.workload.events),
            self.settings.topics.contact_events,
            time.monotonic() - started,
            self.workload.counts,
        )
        await self.collector.start()
        self.started_at = time.monotonic()

    async def close(self) -> None:
        """Stop every worker this run started and the topic reader; safe to call twice."""
        for name, worker in self.workers.items():
            self._expected_down.add(name)
            # The figures are collected by now, so a worker that hangs on SIGTERM only costs time.
            await asyncio.to_thread(worker.stop, 10.0)
        await self.collector.stop()

    # Workers

    def worker_env(self, name: str) -> dict[str, str]:
        if name not in self._web_ports:
            self._web_ports[name] = choose_port(0)
        # faust creates the data folder itself, but not its parents.
        (self.work_dir / name).mkdir(parents=True, exist_ok=True)
        return {
            **self.base_env,
            "STREAM_APP_DATA_DIR": str(self.work_dir / name / "data"),
            "STREAM_APP_WEB_PORT": str(self._web_ports[name]),
            # faust's Kafka client id; the consumer group lists members under it.
            "BROKER_CLIENT_ID": name,
        }

    def log_path(self, name: str) -> Path:
        return self.work_dir / "logs" / f"{name}.log"

    def start_worker(self, name: str = "worker-1") -> ManagedProcess:
        """Start a worker, or start an existing one again with the same data folder and port."""
        worker = self.workers.get(name)
        if worker is None:
            worker = ManagedProcess(
                name,
                [sys.executable, "-m", "stream_app.cli", "worker"],
                self.log_path(name),
                env=self.worker_env(name),
            )
            self.workers[name] = worker
        else:
            self.restarts += 1
        self._expected_down.discard(name)
        log_path = self.log_path(name)
        self._log_starts[name] = log_path.stat().st_size if log_path.exists() else 0
        worker.start()
        self._mark(name, f"started (pid {worker.pid})")
        return worker

    def kill_worker(self, name: str) -> None:
        """Send SIGKILL to a worker, as a crash would."""
        worker = self.workers[name]
        self._expected_down.add(name)
        self._mark(name, f"killed with SIGKILL (pid {worker.pid})")
        worker.kill()
        self.kills += 1

    async def stop_worker(self, name: str, grace_seconds: float = 30.0) -> bool:
        """Stop a worker with SIGTERM, so it leaves the consumer group cleanly.

        Sends SIGKILL when it has not exited after `grace_seconds`, counts that in
        `stop_timeouts` and returns False.
        """
        worker = self.workers[name]
        self._expected_down.add(name)
        self._mark(name, "stopping with SIGTERM")
        started = time.monotonic()
        await asyncio.to_thread(worker.stop, grace_seconds)
        if worker.exit_code() == -signal.SIGKILL:
            self.stop_timeouts.append(name)
            self._mark(
                name, f"did not stop within {grace_seconds:.0f} s of SIGTERM; killed with SIGKILL"
            )
            return False
        self._mark(name, f"stopped in {time.monotonic() - started:.1f} s")
        return True

    async def contact_event_owners(self) -> dict[str, set[int]]:
        """Return the contact-events partitions each worker owns, as the consumer group shows.

        Workers are named by their Kafka client id, which `worker_env` sets to the worker's name.
        """
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka.bootstrap_servers)
        await admin.start()
        try:
            responses = await admin.describe_consumer_groups([self.settings.app_id])
        finally:
            await admin.close()

        owners: dict[str, set[int]] = {}
        topic = self.settings.topics.contact_events
        for response in responses:
            for group in response.to_object()["groups"]:
                for member in group["members"]:
                    if not member["member_assignment"]:
                        continue
                    assignment = ConsumerProtocolMemberAssignment.decode(
                        member["member_assignment"]
                    )
                    partitions = owners.setdefault(member["client_id"], set())
                    for assigned_topic, assigned in assignment.assignment:
                        if assigned_topic == topic:
                            partitions.update(assigned)
        return owners

    async def committed_offsets(self, topic: str) -> dict[int, int]:
        """Return the consumer group's committed offset per partition of `topic`."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka.bootstrap_servers)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(self.settings.app_id)
        finally:
            await admin.close()
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """Return the log end offset per partition of `topic`."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka.bootstrap_servers)
        await consumer.start()
        try:
            await consumer.topics()  # fetches the cluster metadata that partitions_for_topic reads
            partitions = [
                TopicPartition(topic, number)
                for number in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            ends = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()
        return {tp.partition: offset for tp, offset in ends.items()}

    async def uncommitted_records(self, topic: str, within: float) -> int:
        """Wait up to `within` seconds for the group to commit `topic` to its end; return the rest.

        Every record has its outcome when this is called, so the workers should commit up to the
        log end within a few commit intervals. What is still uncommitted after `within` would
        be read again after a restart. Nothing is produced to `topic` any more, so its end
        offsets are read once.
        """
        deadline = time.monotonic() + within
        ends = await self.end_offsets(topic)
        while True:
            committed = await self.committed_offsets(topic)
            behind = sum(max(0, end - committed.get(p, 0)) for p, end in ends.items())
            if behind == 0 or time.monotonic() >= deadline:
                return behind
            await self.pause(2.0)

    def running_workers(self) -> list[str]:
        return [name for name, worker in self.workers.items() if worker.is_running()]

    def note(self, event: str) -> None:
        """Log a fault-run event and append it to the run's log and every worker log."""
        line = f"[fault-run +{time.monotonic() - self.started_at:.1f} s] {event}"
        logger.info(line)
        paths = [self.work_dir / "logs" / "fault-run.log"]
        paths += [self.log_path(name) for name in self.workers]
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as log:
                log.write(line + "\n")

    def _mark(self, name: str, event: str) -> None:
        self.note(f"{name} {event}")

    def _check_exits(self) -> None:
        for name, worker in self.workers.items():
            if name in self._expected_down or worker.is_running():
                continue
            self._expected_down.add(name)
            self.unexpected_exits.append(name)
            self._mark(name, f"exited by itself with code {worker.exit_code()}")

    # Waiting

    def all_accounted(self) -> bool:
        return self.collector.accounted >= len(self.workload.events)

    async def wait_until(
        self, condition: Callable[[], bool], within: float, *, what: str, poll_ms: int = 300
    ) -> bool:
        """Poll the topics until `condition` holds; return False after `within` seconds.

        Also returns False early when no worker runs and none was stopped on purpose, because
        nothing can make progress then.
        """
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            await self.collector.poll(timeout_ms=poll_ms)
            if condition():
                return True
            self._check_exits()
            if self.workers and not self.running_workers() and self.unexpected_exits:
                logger.warning("No worker runs while waiting for %s", what)
                return False
        logger.warning(
            "Timed out after %.0f s waiting for %s (%d of %d messages accounted for)",
            within,
            what,
            self.collector.accounted,
            len(self.workload.events),
        )
        return False

    async def wait_for_progress(self, messages: int, within: float) -> bool:
        """Wait until at least `messages` more input messages have an outcome."""
        target = min(self.collector.accounted + messages, len(self.workload.events))
        return await self.wait_until(
            lambda: self.collector.accounted >= target, within, what=f"{messages} more outcomes"
        )

    async def pause(self, seconds: float) -> None:
        """Keep reading the topics for `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self.collector.poll(
                timeout_ms=int(min(300, (deadline - time.monotonic()) * 1000))
            )
            self._check_exits()

    async def wait_for_owners(self, names: set[str], within: float) -> bool:
        """Wait until every named worker owns at least one contact-events partition."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            owners = await self.contact_event_owners()
            if all(owners.get(name) for name in names):
                self.note(
                    f"partition owners: {json.dumps({n: sorted(p) for n, p in owners.items()})}"
                )
                return True
            await self.pause(1.0)
        logger.warning("Timed out after %.0f s waiting for %s to own partitions", within, names)
        return False

    def log_count(self, name: str, text: str) -> int:
        """Count the lines of the worker's current incarnation that contain `text`."""
        with self.log_path(name).open("rb") as log:
            log.seek(self._log_starts.get(name, 0))
            return sum(1 for line in log if text.encode() in line)

    async def wait_for_log(self, name: str, text: str, count: int, within: float) -> bool:
        """Wait until the worker's current incarnation has logged `count` lines containing `text`."""
        return await self.wait_until(
            lambda: self.log_count(name, text) >= count,
            within,
            what=f"{text!r} in {name}'s log",
            poll_ms=50,
        )

    async def kill_at_random(
        self,
        name: str,
        kills: int,
        *,
        max_delay: float,
        progress_within: float = 90.0,
        deadline: float,
    ) -> None:
        """Kill `name` with SIGKILL `kills` times and start it again right after each kill.

        Each kill comes a seeded random 0.2 to `max_delay` seconds after the worker's current
        incarnation has published a new outcome, so kills land while it processes records. Stops
        early once every message is accounted for or `deadline` (time.monotonic) has passed.
        """
        for _ in range(kills):
            if self.all_accounted() or time.monotonic() >= deadline:
                return
            within = min(progress_within, deadline - time.monotonic())
            if not await self.wait_for_progress(1, within):
                return
            await self.pause(self.rng.uniform(0.2, max_delay))
            if self.all_accounted():
                return
            self.kill_worker(name)
            self.start_worker(name)

    # Figures

    async def finish(
        self,
        within: float,
        webhook_within: float = 60.0,
        stall_seconds: float = 60.0,
        settle_seconds: float = 5.0,
    ) -> RunFigures:
        """Wait until every message is accounted for and every result reached the CRM; collect.

        The wait for outcomes ends early when none has arrived for `stall_seconds`. Then the run
        keeps reading for `settle_seconds`, so a batch that a worker publishes again after the
        last outcome still shows in the figures. Time-outs do not raise: the figures then show
        what is lost or missing.
        """
        await self._wait_for_all_outcomes(within, stall_seconds)
        await self.wait_until(
            self._all_results_delivered, webhook_within, what="the CRM webhook deliveries"
        )
        await self.pause(settle_seconds)
        if not await self.collector.drain():
            logger.warning("Could not read the results and dead-letter topics to their end")
        figures = compute_figures(self.workload, await self.collect())
        logger.info("Fault run figures: %s", json.dumps(figures.counts(), sort_keys=True))
        return figures

    async def _wait_for_all_outcomes(self, within: float, stall_seconds: float) -> None:
        started = time.monotonic()
        last_count = self.collector.accounted
        last_progress = started
        while not self.all_accounted():
            await self.collector.poll()
            self._check_exits()
            now = time.monotonic()
            if self.collector.accounted > last_count:
                last_count, last_progress = self.collector.accounted, now
            elif now - last_progress >= stall_seconds:
                self.note(f"no new outcome for {stall_seconds:.0f} s; {self._accounted_text()}")
                return
            if now - started >= within:
                self.note(f"timed out after {within:.0f} s; {self._accounted_text()}")
                return
            if self.workers and not self.running_workers() and self.unexpected_exits:
                self.note(f"no worker runs; {self._accounted_text()}")
                return

    def _accounted_text(self) -> str:
        return f"{self.collector.accounted} of {len(self.workload.events)} messages accounted for"

    def _all_results_delivered(self) -> bool:
        batch_ids = {result["batch_id"] for result in self.collector.results}
        deliveries = self.stack.crm.deliveries()
        delivered = {
            d["webhook_id"]
            for d in deliveries
            if d.get("signature_valid") and 200 <= int(d.get("status") or 0) < 300
        }
        return batch_ids <= delivered

    async def collect(self) -> Collected:
        assert self.contact_list_id is not None
        await self.manifests.snapshot()
        genesys = self.stack.genesys
        return Collected(
            results=list(self.collector.results),
            dead_letters=list(self.collector.dead_letters),
            manifests=dict(self.manifests.manifests),
            writes=await asyncio.to_thread(genesys.writes, self.contact_list_id),
            contacts=await asyncio.to_thread(genesys.contacts, self.contact_list_id),
            requests=await asyncio.to_thread(genesys.requests_log),
            rate_limit=await asyncio.to_thread(genesys.rate_limit),
            deliveries=await asyncio.to_thread(self.stack.crm.deliveries),
        )

    async def report(self, figures: RunFigures, **extra: Any) -> dict[str, Any]:
        """Return the figures with the run's kills, restarts, time, log folder and group offsets.

        The committed offsets of the worker's consumer group show where the webhook relay
        (results topic) and the intake (contact-events topic) would resume.
        `uncommitted_records` counts the contact events the group has not committed 30 s after
        the last outcome (-1 when the offsets could not be read).
        """
        topics = self.settings.topics
        uncommitted = -1
        try:
            uncommitted = await self.uncommitted_records(topics.contact_events, within=30.0)
            relay_offsets = await self.committed_offsets(topics.import_results)
            intake_offsets = await self.committed_offsets(topics.contact_events)
        except KafkaError as exc:
            logger.warning("Could not read the consumer group's committed offsets: %s", exc)
            relay_offsets = intake_offsets = {}
        return {
            **figures.counts(),
            "kills": self.kills,
            "restarts": self.restarts,
            "unexpected_exits": len(self.unexpected_exits),
            "stop_timeouts": len(self.stop_timeouts),
            "duration_s": round(time.monotonic() - self.started_at, 1),
            "seed": self.seed,
            "logs": str(self.work_dir / "logs"),
            "uncommitted_records": uncommitted,
            "committed_offsets": {
                "results_topic": relay_offsets,
                "contact_events": intake_offsets,
            },
            **extra,
            "examples": figures.examples,
        }
