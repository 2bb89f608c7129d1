"""`python -m bench.peer_quix CONFIG`: the worker's pipeline without Genesys, built on Quix Streams.

The peer reads the same records as the worker (up to the end offsets in CONFIG, a
`bench.intake_steps.ReferenceConfig` file) in a new consumer group and runs:

1. `bench.intake_steps.classify`: decode, route, map and validate, as the worker does;
2. the dedupe decision of `stream_app.pipeline.dedupe` on Quix's RocksDB state, keyed like the
   worker's table (contact list id and contact id), with a changelog topic;
3. a batching sink that writes each partition's accepted contacts as CSV with a JSON manifest to
   the same S3 server and bucket, at most `batch.max_contacts` rows per object.

Quix Streams has no Genesys Cloud sink, so the peer imports nothing into Genesys, publishes no
import results and dead-letters nothing. Its batches follow the worker's default limits: Quix
flushes sinks at each checkpoint, so the checkpoint comes every `batch.max_seconds` or every
`batch.max_contacts` records per partition, whichever is first. The worker's STREAM_APP_*
settings come from the environment.

It prints one JSON object: `peer_rps` is the records divided by the time from the first
processed record to the end of the last checkpoint (the last S3 write).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import uuid
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
from quixstreams import Application, State, message_context
from quixstreams.sinks import BatchingSink, SinkBatch
from quixstreams.state.rocksdb import RocksDBOptions

from bench.intake_steps import ReferenceConfig, Verdict, classify, debezium_options
from stream_app.csv_codec import encode_csv
from stream_app.mapping import load_mapping
from stream_app.pipeline import dedupe
from stream_app.settings import Settings
from stream_app.validation.contact_list import ContactListSchema

logger = logging.getLogger(__name__)

# Verdicts whose records the worker would submit to Genesys Cloud, after the dedupe decision.
SUBMITTED_VERDICTS = frozenset({Verdict.VALID.value, Verdict.DELETE.value})


class S3CsvSink(BatchingSink):
    """A batching sink that writes each checkpoint's accepted contacts to S3 as CSV and manifest."""

    def __init__(self, settings: Settings, schema: ContactListSchema, prefix: str) -> None:
        super().__init__()
        self.settings = settings
        self.schema = schema
        self.prefix = prefix.strip("/")
        self.objects = 0
        self.rows = 0
        self._client: Any = None

    def setup(self) -> None:
        s3 = self.settings.s3
        self._client = boto3.client(
            "s3",
            endpoint_url=s3.endpoint_url,
            region_name=s3.region,
            aws_access_key_id=s3.access_key_id.get_secret_value() if s3.access_key_id else None,
            aws_secret_access_key=(
                s3.secret_access_key.get_secret_value() if s3.secret_access_key else None
            ),
        )

    def write(self, batch: SinkBatch) -> None:
        items = [item for item in batch if item.value["submit"] and item.value["data"]]
        columns = list(self.schema.column_names)
        iterator = iter(items)
        while chunk := list(islice(iterator, self.settings.batch.max_contacts)):
            rows = [[item.value["data"].get(column, "") for column in columns] for item in chunk]
            first, last = chunk[0].offset, chunk[-1].offset
            key = (
                f"{self.prefix}/{batch.topic}/partition={batch.partition:04d}/"
                f"{first:020d}-{last:020d}.{self.schema.list_id}.csv"
            )
            manifest = {
                "topic": batch.topic,
                "partition": batch.partition,
                "first_offset": first,
                "last_offset": last,
                "contact_list_id": self.schema.list_id,
                "rows": len(rows),
                "upsert_offsets": [item.offset for item in chunk],
            }
            bucket = self.settings.s3.bucket
            self._client.put_object(Bucket=bucket, Key=key, Body=encode_csv(columns, rows))
            self._client.put_object(
                Bucket=bucket,
                Key=key.removesuffix(".csv") + ".manifest.json",
                Body=json.dumps(manifest).encode(),
            )
            self.objects += 1
            self.rows += len(rows)


class EndTracker:
    """A counter of the records up to the end offsets that stops the application after the last."""

    def __init__(self, end_offsets: dict[int, int]) -> None:
        self.end_offsets = dict(end_offsets)
        self.remaining = {p: end for p, end in end_offsets.items() if end > 0}
        self.app: Application | None = None
        self.first_at: float | None = None
        self.records = 0

    def in_range(self, value: Any) -> bool:
        """Return False for records past the end offset, which a later phase of bench.run added."""
        context = message_context()
        if self.first_at is None:
            self.first_at = time.monotonic()
        offset: int = context.offset
        return offset < self.end_offsets.get(context.partition, 0)

    def observe(self, value: Any) -> None:
        context = message_context()
        self.records += 1
        end = self.remaining.get(context.partition)
        if end is not None and context.offset + 1 >= end:
            del self.remaining[context.partition]
            if not self.remaining and self.app is not None:
                self.app.stop()


class DedupeStep:
    """The worker's dedupe decision on Quix state, which Quix already scopes to the record's key."""

    def __init__(self, schema: ContactListSchema, expire_seconds: float) -> None:
        self.schema = schema
        self.expire_seconds = expire_seconds
        self.decisions: Counter[str] = Counter()

    def __call__(self, value: dict[str, Any], state: State[str, str]) -> dict[str, Any]:
        if value["verdict"] not in SUBMITTED_VERDICTS:
            return {**value, "submit": False}
        context = message_context()
        key = dedupe.identity_key(self.schema.list_id, value["contact_id"] or "")
        content_fingerprint = dedupe.fingerprint(value["operation"], value["data"])
        previous_text = state.get(key)
        previous = dedupe.DedupeEntry.decode(previous_text) if previous_text else None
        now = time.time()
        decision = dedupe.decide(
            previous,
            content_fingerprint,
            partition=context.partition,
            offset=context.offset,
            now=now,
            expire_seconds=self.expire_seconds,
        )
        self.decisions[decision.value] += 1
        if decision is dedupe.Decision.DUPLICATE:
            return {**value, "submit": False}
        entry = dedupe.DedupeEntry(content_fingerprint, context.partition, context.offset, now)
        state.set(key, entry.encode())
        return {**value, "submit": True}


def run_peer(config: ReferenceConfig, settings: Settings) -> dict[str, Any]:
    """Run the Quix Streams pipeline over the configured records and return the figures."""
    if settings.mapping_file is None:
        raise ValueError("STREAM_APP_MAPPING_FILE is not set")
    mapping = load_mapping(settings.mapping_file)
    schema = config.contact_list()
    debezium = debezium_options(settings)
    partitions = max(len(config.end_offsets), 1)
    suffix = uuid.uuid4().hex[:10]

    app = Application(
        broker_address=settings.kafka.bootstrap_servers,
        consumer_group=f"bench-peer-quix-{suffix}",
        auto_offset_reset="earliest",
        commit_interval=settings.batch.max_seconds,
        commit_every=settings.batch.max_contacts * partitions,
        state_dir=str(Path(config.work_dir) / "quix-state"),
        rocksdb_options=RocksDBOptions(
            write_buffer_size=settings.dedupe.write_buffer_bytes,
            max_write_buffer_number=2,
            block_cache_size=settings.dedupe.block_cache_bytes * partitions,
        ),
        loglevel="WARNING",
        processing_guarantee="at-least-once",
    )
    tracker = EndTracker(config.end_offsets)
    tracker.app = app
    dedupe_step = DedupeStep(schema, settings.dedupe.expire_seconds)
    sink = S3CsvSink(settings, schema, f"{settings.s3.prefix}-peer-quix-{suffix}")

    def classify_step(value: bytes | None) -> dict[str, Any]:
        classified = classify(value, settings, mapping, schema, debezium)
        return {
            "verdict": classified.verdict.value,
            "contact_id": classified.contact_id,
            "operation": classified.operation,
            "data": classified.data,
        }

    topic = app.topic(config.topic, key_deserializer="str", value_deserializer="bytes")
    sdf = app.dataframe(topic)
    sdf = sdf.filter(tracker.in_range)
    sdf = sdf.apply(classify_step)
    sdf = sdf.apply(dedupe_step, stateful=True)
    sdf = sdf.update(tracker.observe)
    sdf.sink(sink)

    app.run()
    finished = time.monotonic()
    elapsed = finished - tracker.first_at if tracker.first_at is not None else 0.0
    return {
        "records": tracker.records,
        "elapsed_s": round(elapsed, 3),
        "peer_rps": round(tracker.records / elapsed, 1) if elapsed > 0 else None,
        "dedupe_decisions": dict(dedupe_step.decisions),
        "s3_objects": sink.objects,
        "s3_rows": sink.rows,
        "genesys": "not called: Quix Streams has no Genesys Cloud sink",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peer_quix",
        description="Validate, dedupe and batch the benchmark's input to S3 with Quix Streams.",
    )
    parser.add_argument(
        "config", type=Path, help="reference-run configuration written by bench.run"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    result = run_peer(ReferenceConfig.read(args.config), Settings())
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
