"""`python -m bench.steps CONFIG`: what the worker's own steps cost per record, with no I/O.

It reads the records of CONFIG (a `bench.intake_steps.ReferenceConfig` file) into memory with a
plain aiokafka consumer, untimed. Then it runs the worker's steps on them in this process, in
chunks of the size the intake agent takes, the way the agent does, and times each step:

- `intake`: `stream_app.worker.prepare.prepare` over the chunk (decode, route, map, validate,
  each over the whole chunk), which is the work the ceiling does record by record;
- `dedupe`: for each record in turn, the identity key, the content fingerprint, the RocksDB
  look-up, `dedupe.decide`, the new entry, the RocksDB write and the changelog message appended
  to a Kafka record batch (never sent), in the order of `StreamWorker._dedupe`;
- `batching`: the `BatchRecord` and `BatchBuffer.add`;
- `flush`: `BatchFlusher.flush` for each closed batch, with the real `GenesysClient` on an
  in-memory HTTP transport that responds at once, the real `BatchArchive` on an S3 client that
  stores nothing, and the result and dead letters serialised as the worker publishes them.

Left out, because they are I/O or faust's: the fetch, faust's delivery of each event, the Kafka
produce requests and their acknowledgements, the HTTP and S3 round trips, the webhook relay and
the offset commits. So the sum is a lower bound of the worker's time per record. `bench.run`
adds the steps after the intake to the ceiling's time per record, to show the most the worker
could reach with these steps if all of that cost nothing.

Each figure is the best of `--rounds` rounds, each on a fresh RocksDB database. It prints one
JSON object. The worker's STREAM_APP_* settings come from the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.producer.message_accumulator import BatchBuilder
from rocksdict import Rdict

from bench.intake_steps import ReferenceConfig, debezium_options
from schemas.import_result import ImportResult
from schemas.rejected_record import RejectedRecord
from stream_app.archive import BatchArchive
from stream_app.genesys.client import GenesysClient
from stream_app.mapping import FieldMapping, load_mapping
from stream_app.pipeline import dedupe
from stream_app.pipeline.batching import Batch, BatchBuffer, BatchRecord, Outcome
from stream_app.pipeline.flush import BatchFlusher
from stream_app.pipeline.progress import BatchProgress
from stream_app.settings import Settings
from stream_app.validation.contact_list import ContactListSchema
from stream_app.webhook_resend import kafka_client_options
from stream_app.worker.app import TAKE_MAX_EVENTS
from stream_app.worker.prepare import Prepared, prepare

logger = logging.getLogger(__name__)

STEPS = ("intake", "dedupe", "batching", "flush")

# A Kafka record batch of the changelog is closed and a new one started at this size.
CHANGELOG_BATCH_BYTES = 1024 * 1024

# Stop reading after this long without a new record.
IDLE_TIMEOUT_SECONDS = 60.0


async def read_values(config: ReferenceConfig, settings: Settings) -> list[tuple[int, int, bytes]]:
    """Return (partition, offset, value) of every configured record, partition by partition."""
    consumer = AIOKafkaConsumer(
        **kafka_client_options(settings.kafka),
        enable_auto_commit=False,
        max_partition_fetch_bytes=settings.topics.contact_events_max_message_bytes,
    )
    await consumer.start()
    values: list[tuple[int, int, bytes]] = []
    try:
        partitions = [
            TopicPartition(config.topic, p) for p, end in config.end_offsets.items() if end > 0
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = {tp.partition: config.end_offsets[tp.partition] for tp in partitions}
        idle_since = time.monotonic()
        while remaining:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            if not batches and time.monotonic() - idle_since > IDLE_TIMEOUT_SECONDS:
                raise TimeoutError(f"no records for {IDLE_TIMEOUT_SECONDS:.0f} s: {remaining}")
            for tp, messages in batches.items():
                idle_since = time.monotonic()
                end = remaining.get(tp.partition)
                for message in messages:
                    if end is None or message.offset >= end:
                        break
                    values.append((tp.partition, message.offset, message.value or b""))
                    if message.offset + 1 >= end:
                        del remaining[tp.partition]
                        consumer.pause(tp)
                        break
    finally:
        await consumer.stop()
    return values


class _NullS3:
    """An S3 client whose `put_object` stores nothing and returns at once."""

    async def put_object(self, **_: Any) -> dict[str, Any]:
        return {}


class _Round:
    """One timed pass of the worker's steps over every record."""

    def __init__(
        self,
        settings: Settings,
        mapping: FieldMapping,
        schema: ContactListSchema,
        db_path: Path,
        config: ReferenceConfig,
    ) -> None:
        self.settings = settings
        self.mapping = mapping
        self.schema = schema
        self.debezium = debezium_options(settings)
        list_mapping = mapping.for_list(mapping.default_contact_list or "")
        self.id_column = list_mapping.id_column if list_mapping else "id"
        self.db = Rdict(str(db_path))
        self.changelog = BatchBuilder(CHANGELOG_BATCH_BYTES, 0)
        self.buffer = BatchBuffer(config.topic, settings.batch, time.monotonic)
        self.seconds: dict[str, float] = dict.fromkeys(STEPS, 0.0)
        self.outcomes: Counter[str] = Counter()
        self.transport_seconds = 0.0
        self.published = 0

    def _answer(self, request: httpx.Request) -> httpx.Response:
        """Return a token, or echo the written contacts, and add the time spent to the transport time."""
        started = time.perf_counter()
        if request.url.path.endswith("/oauth/token"):
            body = b'{"access_token": "bench", "token_type": "bearer", "expires_in": 86400}'
            response = httpx.Response(200, content=body)
        elif request.method == "POST" and request.url.path.endswith("/contacts"):
            response = httpx.Response(200, content=request.content)
        else:
            response = httpx.Response(404, content=b'{"message": "not in bench.steps"}')
        response.headers["content-type"] = "application/json"
        self.transport_seconds += time.perf_counter() - started
        return response

    async def _publish_rejected(self, record: BatchRecord, rejected: RejectedRecord) -> None:
        self.published += len(rejected.model_dump_json().encode())

    async def _publish_result(self, result: ImportResult) -> None:
        self.published += len(result.model_dump_json().encode())

    async def run(self, values: list[tuple[int, int, bytes]]) -> None:
        genesys = GenesysClient(self.settings.genesys, transport=httpx.MockTransport(self._answer))
        archive = BatchArchive(self.settings.s3)
        archive._client = _NullS3()
        flusher = BatchFlusher(
            self.settings, genesys, archive, self._publish_rejected, self._publish_result
        )
        try:
            for start in range(0, len(values), TAKE_MAX_EVENTS):
                chunk = values[start : start + TAKE_MAX_EVENTS]
                started = time.perf_counter()
                prepared = await prepare(
                    [value for _, _, value in chunk],
                    mapping=self.mapping,
                    validation=self.settings.validation,
                    debezium=self.debezium,
                    lookup=self._lookup,
                    validate=True,
                )
                self.seconds["intake"] += time.perf_counter() - started
                for (partition, offset, value), ready in zip(chunk, prepared, strict=True):
                    closed = self._intake(partition, offset, value, ready)
                    if closed:
                        await self._flush(flusher, closed)
            await self._flush(flusher, self.buffer.pop_all())
        finally:
            await genesys.aclose()
            self.db.close()

    async def _lookup(self, reference: str) -> ContactListSchema:
        return self.schema

    def _intake(self, partition: int, offset: int, value: bytes, ready: Prepared) -> list[Batch]:
        if ready.decoded is None or ready.schema is None:
            # The worker dead-letters these at once (or drops a tombstone); the workload has none.
            self.outcomes["not_batched"] += 1
            return []
        clock = time.perf_counter
        started = clock()
        record = BatchRecord(
            partition=partition, offset=offset, outcome=Outcome.SUBMIT, raw_value=value
        )
        decoded = ready.decoded
        checked = ready.checked
        if decoded.operation == "delete":
            record.contact_id = decoded.contact_id
            record.operation = decoded.operation
            record.data = {}
            self._dedupe(record)
        elif checked is not None and checked.data is not None:
            record.contact_id = decoded.contact_id
            record.data = checked.data
            self._dedupe(record)
        else:
            record.outcome = Outcome.REJECTED
            record.reasons = checked.reasons if checked is not None else ()
        deduped_at = clock()
        self.seconds["dedupe"] += deduped_at - started

        record.size = len(value)
        closed = self.buffer.add(record, self.schema.list_id, self.schema.name)
        self.seconds["batching"] += clock() - deduped_at
        self.outcomes[record.outcome.value] += 1
        return closed

    def _dedupe(self, record: BatchRecord) -> None:
        key = dedupe.identity_key(self.schema.list_id, record.contact_id or "")
        content = dedupe.fingerprint(record.operation, record.data or {})
        key_bytes = key.encode()
        previous_bytes = self.db.get(key_bytes)
        previous = dedupe.DedupeEntry.decode(json.loads(previous_bytes)) if previous_bytes else None
        now = time.time()
        decision = dedupe.decide(
            previous,
            content,
            partition=record.partition,
            offset=record.offset,
            now=now,
            expire_seconds=self.settings.dedupe.expire_seconds,
        )
        if decision is dedupe.Decision.DUPLICATE:
            record.outcome = Outcome.DUPLICATE
            return
        entry = dedupe.DedupeEntry(content, record.partition, record.offset, now).encode()
        record.dedupe_key = key
        record.dedupe_entry = entry
        # faust's json serializer of the table's str values.
        value_bytes = json.dumps(entry).encode()
        self.db.put(key_bytes, value_bytes)
        if self.changelog.append(key=key_bytes, value=value_bytes, timestamp=None) is None:
            self.changelog = BatchBuilder(CHANGELOG_BATCH_BYTES, 0)
            self.changelog.append(key=key_bytes, value=value_bytes, timestamp=None)

    async def _flush(self, flusher: BatchFlusher, batches: list[Batch]) -> None:
        started = time.perf_counter()
        in_transport = self.transport_seconds

        async def save(entry: BatchProgress, durable: bool) -> None:
            return None

        for batch in batches:
            plan = BatchProgress(batch.first_offset, batch.last_offset)
            await flusher.flush(batch, self.schema, self.id_column, plan, save)
        spent = time.perf_counter() - started - (self.transport_seconds - in_transport)
        self.seconds["flush"] += spent


async def run_steps(config: ReferenceConfig, settings: Settings, rounds: int) -> dict[str, Any]:
    """Read the configured records, time `rounds` passes of the steps, and return the figures."""
    if settings.mapping_file is None:
        raise ValueError(
            "STREAM_APP_MAPPING_FILE is not set; run bench.steps through bench.run, which sets it"
        )
    mapping = load_mapping(settings.mapping_file)
    schema = config.contact_list()
    values = await read_values(config, settings)
    if not values:
        raise ValueError(f"topic {config.topic} has no records up to {config.end_offsets}")

    # The values come partition by partition, where the worker reads the partitions side by
    # side. The order does not change what each step costs.
    best: dict[str, float] = {}
    outcomes: Counter[str] = Counter()
    for _ in range(rounds):
        db_path = _fresh_directory(Path(config.work_dir))
        try:
            timed = _Round(settings, mapping, schema, db_path, config)
            await timed.run(values)
        finally:
            shutil.rmtree(db_path, ignore_errors=True)
        for step in STEPS:
            best[step] = min(best.get(step, float("inf")), timed.seconds[step])
        outcomes = timed.outcomes

    per_record = {step: round(best[step] / len(values) * 1e6, 2) for step in STEPS}
    beyond_intake = sum(per_record[step] for step in STEPS if step != "intake")
    return {
        "records": len(values),
        "rounds": rounds,
        "us_per_record": per_record,
        "us_per_record_beyond_intake": round(beyond_intake, 2),
        "us_per_record_total": round(beyond_intake + per_record["intake"], 2),
        "outcomes": dict(outcomes),
    }


def _fresh_directory(parent: Path) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="steps-", dir=parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.steps",
        description="Time the worker's own steps on the benchmark's records, with no I/O.",
    )
    parser.add_argument(
        "config", type=Path, help="reference-run configuration written by bench.run"
    )
    parser.add_argument("--rounds", type=int, default=2, help="timed passes (default 2)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    result = asyncio.run(run_steps(ReferenceConfig.read(args.config), Settings(), args.rounds))
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
