"""`python -m bench.ceiling CONFIG`: the throughput ceiling of the worker's intake on this machine.

A plain aiokafka consumer in a new consumer group reads the input topic up to the end offsets in
CONFIG (a `bench.intake_steps.ReferenceConfig` file) and runs `bench.intake_steps.classify` on
every message: decode, route, map and validate, as the worker does. There is no faust, no table,
no batch, no S3, no Genesys and no output topic, so no pipeline built on these steps can be faster
on the same machine. The worker's STREAM_APP_* settings come from the environment.

It prints one JSON object: `ceiling_rps` is the records divided by the time from the first fetched
record to the last classified one. Joining the group is outside that window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.intake_steps import ReferenceConfig, classify, debezium_options
from stream_app.mapping import load_mapping
from stream_app.settings import Settings
from stream_app.webhook_resend import kafka_client_options

logger = logging.getLogger(__name__)

# Stop waiting for records after this long without a new one.
IDLE_TIMEOUT_SECONDS = 60.0


async def run_ceiling(config: ReferenceConfig, settings: Settings) -> dict[str, Any]:
    """Consume the configured records once, classify each one, and return the figures."""
    if settings.mapping_file is None:
        raise ValueError("STREAM_APP_MAPPING_FILE is not set")
    mapping = load_mapping(settings.mapping_file)
    schema = config.contact_list()
    debezium = debezium_options(settings)
    remaining = {p: end for p, end in config.end_offsets.items() if end > 0}
    group_id = f"bench-ceiling-{uuid.uuid4().hex[:10]}"
    consumer = AIOKafkaConsumer(
        config.topic,
        **kafka_client_options(settings.kafka),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=settings.topics.contact_events_max_message_bytes,
    )
    verdicts: Counter[str] = Counter()
    first_at: float | None = None
    last_at = 0.0
    idle_since = time.monotonic()
    await consumer.start()
    try:
        while remaining:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            now = time.monotonic()
            if not batches:
                if now - idle_since > IDLE_TIMEOUT_SECONDS:
                    raise TimeoutError(
                        f"no records for {IDLE_TIMEOUT_SECONDS:.0f} s; still missing "
                        f"offsets up to {remaining}"
                    )
                continue
            idle_since = now
            if first_at is None:
                first_at = now
            for tp, messages in batches.items():
                end = remaining.get(tp.partition)
                for message in messages:
                    if end is None or message.offset >= end:
                        break
                    classified = classify(message.value, settings, mapping, schema, debezium)
                    verdicts[classified.verdict.value] += 1
                    if message.offset + 1 >= end:
                        del remaining[tp.partition]
                        consumer.pause(TopicPartition(tp.topic, tp.partition))
                        break
            last_at = time.monotonic()
    finally:
        await consumer.stop()

    records = sum(verdicts.values())
    elapsed = last_at - first_at if first_at is not None else 0.0
    return {
        "records": records,
        "elapsed_s": round(elapsed, 3),
        "ceiling_rps": round(records / elapsed, 1) if elapsed > 0 else None,
        "verdicts": dict(verdicts),
        "consumer_group": group_id,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ceiling",
        description="Classify the benchmark's input records with a plain aiokafka consumer.",
    )
    parser.add_argument(
        "config", type=Path, help="reference-run configuration written by bench.run"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    result = asyncio.run(run_ceiling(ReferenceConfig.read(args.config), Settings()))
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
