"""`python -m bench.floor_faust CONFIG`: what faust's delivery alone costs on this machine.

A faust app with the worker's consumer settings and fetch loop (`stream_app.worker.fetch_loop`)
runs one agent over the input topic, in a new consumer group. The agent acknowledges every
event without looking at it: no decode, no validation, no table, no batch and no I/O. Its rate
is the most any faust agent reaches on this machine, so `floor_rps / ceiling_rps` shows how
much of the ceiling a faust-based worker can reach at best.

It prints one JSON object: `floor_rps` is the records divided by the time from the first event
to the last. Then it exits at once: the group is never used again, and stopping faust cleanly
takes seconds that measure nothing.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.intake_steps import ReferenceConfig
from stream_app.settings import Settings
from stream_app.worker.app import broker_credentials, kafka_broker_url
from stream_app.worker.fetch_loop import WorkerApp

logger = logging.getLogger(__name__)


def build_app(config: ReferenceConfig, settings: Settings, work_dir: Path) -> WorkerApp:
    """Return the faust app whose agent counts the configured records and then exits."""
    remaining = {p: end for p, end in config.end_offsets.items() if end > 0}
    total = sum(remaining.values())
    app = WorkerApp(
        f"bench-floor-{uuid.uuid4().hex[:10]}",
        broker=kafka_broker_url(settings),
        broker_credentials=broker_credentials(settings),
        store="memory://",
        datadir=str(work_dir),
        processing_guarantee="at_least_once",
        topic_partitions=settings.topics.partitions,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=settings.topics.contact_events_max_message_bytes,
        broker_commit_interval=1.0,
        stream_wait_empty=False,
    )
    topic = app.topic(
        config.topic, key_serializer="raw", value_serializer="raw", partitions=len(remaining)
    )

    async def count(stream: Any) -> None:
        first_at: float | None = None
        records = 0
        async for event in stream.noack().events():
            if first_at is None:
                first_at = time.monotonic()
            message = event.message
            end = remaining.get(message.partition)
            if end is not None and message.offset < end:
                records += 1
            event.ack()
            if records >= total:
                elapsed = time.monotonic() - first_at
                result = {
                    "records": records,
                    "elapsed_s": round(elapsed, 3),
                    "floor_rps": round(records / elapsed, 1) if elapsed > 0 else None,
                }
                # faust's worker redirects sys.stdout to its log, so write to the descriptor.
                os.write(1, (json.dumps(result, sort_keys=True) + "\n").encode())
                os._exit(0)

    app.agent(topic, name="floor")(count)
    return app


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m bench.floor_faust CONFIG\n")
        return 2
    config = ReferenceConfig.read(Path(args[0]))
    work_dir = Path(config.work_dir) / "floor"
    work_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(config, Settings(), work_dir)
    # faust reads its command line; run its worker with warnings only.
    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn", "--without-web"]
    app.main()
    return 1  # the agent exits the process once it has counted every record


if __name__ == "__main__":
    sys.exit(main())
