"""`python -m bench.scale`: one worker with N dedupe entries: memory, disk, look-ups, kill -9.

It starts its own local stack on free loopback ports and then:

1. Creates the topics and the contact list, and produces `--lookups` contact events whose
   contacts will already be in the dedupe table with the same content (so each one is a
   duplicate and costs one table look-up and no Genesys write).
2. Loads `--entries` entries straight into the worker's dedupe table folders before the worker
   starts: faust's own RocksDB store (`StreamWorker(settings).dedupe_table.data`) gives the
   folder, key and value encoding and the RocksDB options, and each entry goes to the partition
   the Kafka producer's partitioner assigns to its contact id. The look-up contacts get their
   real content fingerprints; the other entries get random ones. Nothing is written to the
   changelog topic, so faust finds no changelog records to recover on start.
3. Starts the worker, which reads the look-up events through its real code path. Look-ups per
   second are the events divided by the time from the worker's first record to its last batch
   (both from its log).
4. Kills the worker with SIGKILL, starts it again on the same data folder, produces one new
   contact event and measures the time from the kill until the emulator accepts that contact.
5. Stops the worker with SIGTERM and measures the table's files and entries.

It prints one JSON object with `--json`, a table otherwise, and writes it to
bench/results/scale.json. The exit code is 0 whatever the targets show, 1 when the run could not
finish, and 2 when the stack could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import multiprocessing
import random
import signal
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from aiokafka.partitioner import DefaultPartitioner
from faust.stores.rocksdb import RocksDBOptions, Store
from rocksdict import WriteBatch

from bench.fault_run import FAUST_CONSUMER_ENV, FaultRun
from bench.intake_steps import Verdict, classify
from bench.perf_figures import (
    BATCH_DONE_MARKER,
    WORKER_READY_MARKER,
    check_targets,
    end_offsets,
    first_consumed_time,
    last_log_time,
    scale_targets,
    throughput_rps,
)
from bench.perf_kafka import CommittedOffsets
from bench.probes import (
    PeakMemory,
    count_entries,
    directory_bytes,
    machine,
    open_read_only,
    table_paths,
)
from bench.report import add_output_arguments, configure_logging, run_measurement
from bench.run import (
    EMULATOR_REQUESTS_PER_MINUTE,
    WORKER,
    RunFailedError,
    contact_list_schema,
    start_stack,
    wait_for_offsets,
)
from bench.workload import PlannedEvent, Workload, WorkloadShares, build_workload, produce_workload
from local_stack.stack import PROJECT_ROOT, LocalStack, StackPorts
from stream_app.mapping import load_mapping
from stream_app.pipeline import dedupe
from stream_app.settings import Settings
from stream_app.validation.contact_list import ContactListSchema
from stream_app.worker.app import StreamWorker

logger = logging.getLogger(__name__)

RESULTS_FILE = PROJECT_ROOT / "bench" / "results" / "scale.json"
NEW_CONTACTS_ONLY = WorkloadShares(invalid=0.0, duplicate=0.0, update=0.0, delete=0.0, poison=False)
# Batches close after this many seconds here, as in the fault runs, so the record produced after
# the restart waits at most this long for its batch.
BATCH_MAX_SECONDS = 1.0
WRITE_BATCH_ENTRIES = 50_000
STORE_LOOKUPS = 100_000
RESTART_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class LoadReport:
    entries: int
    seconds: float
    disk_bytes: int


def contact_id(number: int) -> str:
    return f"scale-{number:09d}"


def lookup_events(entries: int, lookups: int, seed: int) -> list[PlannedEvent]:
    """Plan `lookups` new-contact events whose contact ids are spread over the loaded entries."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not security
    numbers = rng.sample(range(entries), lookups)
    planned = build_workload(max(lookups, 100), seed, NEW_CONTACTS_ONLY).events[:lookups]
    events = []
    for number, event in zip(numbers, planned, strict=True):
        identity = contact_id(number)
        body = json.loads(event.value)
        body["contact_id"] = identity
        body["fields"]["id"] = identity
        body["fields"]["name"] = f"{body['fields']['name']} as {identity}"
        events.append(
            replace(
                event, key=identity.encode(), value=json.dumps(body).encode(), contact_id=identity
            )
        )
    return events


def lookup_fingerprints(
    events: Sequence[PlannedEvent], settings: Settings, schema: ContactListSchema
) -> dict[str, str]:
    """Return contact id -> the fingerprint the worker computes for each event's content."""
    if settings.mapping_file is None:
        raise ValueError("STREAM_APP_MAPPING_FILE is not set")
    mapping = load_mapping(settings.mapping_file)
    fingerprints = {}
    for event in events:
        classified = classify(event.value, settings, mapping, schema, None)
        if classified.verdict is not Verdict.VALID:
            raise ValueError(f"look-up event {event.event_id} is not valid: {classified.verdict}")
        fingerprints[event.contact_id or ""] = dedupe.fingerprint("upsert", classified.data)
    return fingerprints


def partition_map(entries: int, partitions: int) -> bytes:
    """Return, for every entry number, the partition the Kafka producer assigns its contact id."""
    if partitions > 256:
        raise ValueError(f"at most 256 partitions fit one byte each, got {partitions}")
    partitioner = DefaultPartitioner()
    numbers = list(range(partitions))
    return bytes(partitioner(contact_id(n).encode(), numbers, numbers) for n in range(entries))


@dataclass(frozen=True)
class PartitionLoad:
    """The input of one loader process: one partition of the dedupe table."""

    worker_env: dict[str, str]
    list_id: str
    partition: int
    map_path: str
    fingerprints: dict[str, str]
    accepted_at: float


def load_partition(load: PartitionLoad) -> int:
    """Write one partition's entries with faust's store and the worker's options; return how many.

    Runs in a process of its own. NOTE: with rocksdict 0.3.29, a TTL database that is opened after
    another one in the same process drops every worker-shaped value at compaction (see
    BENCHMARKS.md), so each partition gets a fresh process here.
    """
    settings = Settings.from_environ(load.worker_env)
    table = StreamWorker(settings).dedupe_table
    store = cast(Store, table.data)
    path = store.partition_path(load.partition)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = RocksDBOptions(**(table.options or {})).open(path)
    assignment = Path(load.map_path).read_bytes()
    written = 0
    batch = WriteBatch(raw_mode=True)
    try:
        for number, partition in enumerate(assignment):
            if partition != load.partition:
                continue
            identity = contact_id(number)
            fingerprint = load.fingerprints.get(identity) or _filler_fingerprint(identity)
            # Offset -1: set before the partition's first record, so no record replays it.
            entry = dedupe.DedupeEntry(fingerprint, partition, -1, load.accepted_at)
            batch.put(
                store._encode_key(dedupe.identity_key(load.list_id, identity)),
                store._encode_value(entry.encode()),
            )
            written += 1
            if len(batch) >= WRITE_BATCH_ENTRIES:
                db.write(batch)
                batch = WriteBatch(raw_mode=True)
        if len(batch):
            db.write(batch)
    finally:
        db.close()
    return written


def _filler_fingerprint(identity: str) -> str:
    return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()


def load_entries(
    worker_env: dict[str, str],
    list_id: str,
    entries: int,
    fingerprints: dict[str, str],
    work_dir: Path,
) -> LoadReport:
    """Write `entries` entries into the worker's dedupe table folders, one process per partition.

    Each entry looks as if a record before the partition's first offset had set it now, so a
    later record with the same content is a duplicate. The worker must not be running.
    """
    started = time.monotonic()
    settings = Settings.from_environ(worker_env)
    partitions = settings.topics.partitions
    map_path = work_dir / "partitions.bin"
    map_path.write_bytes(partition_map(entries, partitions))
    accepted_at = time.time()
    loads = [
        PartitionLoad(worker_env, list_id, partition, str(map_path), fingerprints, accepted_at)
        for partition in range(partitions)
    ]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context, max_tasks_per_child=1) as pool:
        written = sum(pool.map(load_partition, loads))
    disk_bytes = directory_bytes(table_paths(settings.data_dir))
    return LoadReport(written, time.monotonic() - started, disk_bytes)


def store_lookups_per_second(
    worker_settings: Settings, list_id: str, entries: int, count: int, seed: int
) -> float:
    """Time random gets straight on the table folders, without faust, Kafka or the worker.

    The folders are opened read-only with the worker's options, so no compaction runs.
    """
    table = StreamWorker(worker_settings).dedupe_table
    store = cast(Store, table.data)
    options = table.options or {}
    partitions = list(range(worker_settings.topics.partitions))
    rng = random.Random(seed)  # noqa: S311 - reproducible keys, not security
    partitioner = DefaultPartitioner()
    keys = []
    for number in (rng.randrange(entries) for _ in range(count)):
        identity = contact_id(number)
        keys.append(
            (
                partitioner(identity.encode(), partitions, partitions),
                store._encode_key(dedupe.identity_key(list_id, identity)),
            )
        )
    dbs = {p: open_read_only(store.partition_path(p), options) for p in partitions}
    try:
        started = time.monotonic()
        found = sum(1 for partition, key in keys if dbs[partition].get(key) is not None)
        elapsed = time.monotonic() - started
    finally:
        for db in dbs.values():
            db.close()
    if found != count:
        logger.warning("Store look-ups found %d of %d keys", found, count)
    return count / elapsed if elapsed > 0 else 0.0


async def wait_for_contact(run: FaultRun, contact: str, since: int, within: float) -> float | None:
    """Poll the emulator until it has a write of `contact`, and return when (monotonic) or None."""
    assert run.contact_list_id is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        writes = await asyncio.to_thread(run.stack.genesys.writes, run.contact_list_id, since)
        if any(write["contact_id"] == contact for write in writes):
            return time.monotonic()
        await asyncio.sleep(0.1)
    return None


async def restart_after_kill(
    run: FaultRun, probe: PlannedEvent, memory: PeakMemory
) -> dict[str, Any]:
    """Kill the worker with SIGKILL, restart it, produce `probe`, and time its acceptance."""
    assert run.contact_list_id is not None
    settings = run.settings
    writes_seen = len(await asyncio.to_thread(run.stack.genesys.writes))
    log_path = run.log_path(WORKER)
    log_offset = log_path.stat().st_size
    killed_wall = time.time()
    run.kill_worker(WORKER)
    killed_at = time.monotonic()
    run.start_worker(WORKER)
    await produce_workload(
        settings.kafka.bootstrap_servers,
        settings.topics.contact_events,
        Workload(events=[probe], final_names={}),
    )
    accepted_at = await wait_for_contact(
        run, probe.contact_id or "", writes_seen, RESTART_TIMEOUT_SECONDS
    )
    memory.sample(run.workers[WORKER].pid)
    with log_path.open("rb") as log:
        log.seek(log_offset)
        lines = log.read().decode(errors="replace").splitlines()
    ready = last_log_time(lines, WORKER_READY_MARKER)
    return {
        "kill_to_processing_s": _round(accepted_at - killed_at) if accepted_at else None,
        "kill_to_worker_ready_s": _round(ready - killed_wall) if ready else None,
    }


async def run_scale(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    """Start the stack, load the table, run the look-ups and the restart, and return the report."""
    main_task = asyncio.current_task()
    if main_task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)

    started = time.monotonic()
    stack = LocalStack(
        work_dir=work_dir / "stack",
        ports=StackPorts.any_free(),
        emulator_overrides={"rate_limit_per_minute": EMULATOR_REQUESTS_PER_MINUTE},
    )
    events = lookup_events(args.entries, args.lookups, args.seed)
    probe = build_workload(100, args.seed + 1, NEW_CONTACTS_ONLY).events[0]
    try:
        await start_stack(stack)
        async with FaultRun(
            stack,
            work_dir / "run",
            records=len(events),
            seed=args.seed,
            extra_env={
                "STREAM_APP_BATCH__MAX_SECONDS": str(BATCH_MAX_SECONDS),
                "STREAM_APP_GENESYS__REQUESTS_PER_MINUTE": str(EMULATOR_REQUESTS_PER_MINUTE),
            },
            workload=Workload(events=events, final_names={}),
        ) as run:
            await run.prepare()
            await run.collector.stop()
            report = await _measure(run, args, probe)
    finally:
        await asyncio.to_thread(stack.stop)
    report["duration_s"] = round(time.monotonic() - started, 1)
    return report


async def _measure(run: FaultRun, args: argparse.Namespace, probe: PlannedEvent) -> dict[str, Any]:
    assert run.contact_list_id is not None
    worker_settings = Settings.from_environ(run.worker_env(WORKER))
    schema = ContactListSchema.model_validate(await contact_list_schema(run))
    fingerprints = lookup_fingerprints(run.workload.events, worker_settings, schema)
    loaded = await asyncio.to_thread(
        load_entries,
        run.worker_env(WORKER),
        run.contact_list_id,
        args.entries,
        fingerprints,
        run.work_dir,
    )
    logger.info("Loaded %d dedupe entries in %.1f s", loaded.entries, loaded.seconds)

    memory = PeakMemory()
    settings = run.settings
    async with CommittedOffsets(
        settings.kafka.bootstrap_servers, settings.app_id, settings.topics.contact_events
    ) as offsets:
        run.start_worker(WORKER)
        ends = end_offsets(event.position for event in run.workload.events)
        await wait_for_offsets(run, offsets, ends, memory, "the look-ups")
        memory.sample(run.workers[WORKER].pid)
        rss_after_lookups = memory.last_rss_kb
        lines = run.log_path(WORKER).read_text(errors="replace").splitlines()
        start = first_consumed_time(lines)
        end = last_log_time(lines, BATCH_DONE_MARKER)
        lookups_rate = (
            throughput_rps(len(run.workload.events), start[0], end) if start and end else None
        )
        writes = await asyncio.to_thread(run.stack.genesys.writes, run.contact_list_id)
        lookup_ids = {event.contact_id for event in run.workload.events}
        misses = sum(1 for write in writes if write["contact_id"] in lookup_ids)

        restart = await restart_after_kill(run, probe, memory)
        await wait_for_offsets(run, offsets, _with(ends, probe), memory, "the restart")
    await run.stop_worker(WORKER)

    paths = table_paths(worker_settings.data_dir)
    disk_bytes = directory_bytes(paths)
    options = StreamWorker(worker_settings).dedupe_table.options or {}
    counted = await asyncio.to_thread(count_entries, paths, options)
    store_rate = await asyncio.to_thread(
        store_lookups_per_second,
        worker_settings,
        run.contact_list_id,
        args.entries,
        min(STORE_LOOKUPS, args.entries),
        args.seed,
    )
    figures: dict[str, Any] = {
        "entries": args.entries,
        "entries_counted": counted,
        "peak_rss_mb": memory.peak_mb,
        "rss_mb_after_lookups": round(rss_after_lookups / 1024, 1),
        "disk_bytes": disk_bytes,
        "disk_bytes_per_entry": _round(disk_bytes / counted) if counted else None,
        "disk_bytes_after_load": loaded.disk_bytes,
        "load_seconds": _round(loaded.seconds),
        "lookups": len(run.workload.events),
        "lookups_per_s": _round(lookups_rate),
        "lookup_misses": misses,
        "store_lookups_per_s": _round(store_rate),
        **restart,
    }
    return {
        **figures,
        "targets": check_targets(scale_targets(), figures),
        "settings": {
            "seed": args.seed,
            "partitions": worker_settings.topics.partitions,
            "batch_max_seconds": BATCH_MAX_SECONDS,
            "dedupe": worker_settings.dedupe.model_dump(mode="json"),
            "faust_consumer_env": FAUST_CONSUMER_ENV,
        },
        "machine": machine(),
        "logs": str(run.work_dir / "logs"),
    }


def _with(ends: dict[int, int], event: PlannedEvent) -> dict[int, int]:
    return {**ends, event.partition: max(ends.get(event.partition, 0), event.offset + 1)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def format_table(report: dict[str, Any]) -> str:
    names = (
        "entries",
        "entries_counted",
        "peak_rss_mb",
        "rss_mb_after_lookups",
        "disk_bytes_per_entry",
        "load_seconds",
        "lookups",
        "lookups_per_s",
        "lookup_misses",
        "store_lookups_per_s",
        "kill_to_worker_ready_s",
        "kill_to_processing_s",
    )
    lines = [f"{name:<24} {report[name]}" for name in names]
    lines.append("")
    for name, outcome in report["targets"].items():
        verdict = {True: "holds", False: "MISSED", None: "not measured"}[outcome["holds"]]
        lines.append(f"{name:<24} {verdict:<13} {outcome['target']} (value {outcome['value']})")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description=(
            "Load N dedupe entries into one worker's table and measure its memory, disk use, "
            "look-ups and restart after kill -9, on a private local stack."
        ),
    )
    parser.add_argument(
        "--entries",
        type=int,
        default=10_000_000,
        help="dedupe entries to load (default 10000000)",
    )
    parser.add_argument(
        "--lookups",
        type=int,
        default=20_000,
        help="duplicate events the worker looks up (default 20000, at most half of --entries)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the keys (default 1)")

    add_output_arguments(
        parser,
        RESULTS_FILE,
        PROJECT_ROOT,
        keep_help="keep the temporary folder with the logs and tables",
    )

    args = parser.parse_args(argv)
    if args.entries < 1000:
        parser.error(f"--entries must be at least 1000, got {args.entries}")
    if not 1 <= args.lookups <= args.entries // 2:
        parser.error(f"--lookups must be between 1 and half of --entries, got {args.lookups}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.json)
    return run_measurement("bench.scale", args, run_scale, format_table, RunFailedError)


if __name__ == "__main__":
    sys.exit(main())
