"""Helpers for end-to-end tests: a worker child process and topic readers.

The worker runs as `python -m stream_app.cli worker`, exactly as users start it, with settings
passed through STREAM_APP_* variables that point it at the test's local stack and at topics, a
consumer group and contact lists named with a uuid.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from local_stack.process import ManagedProcess, choose_port
from local_stack.stack import LocalStack


def worker_env(
    stack: LocalStack, work_dir: Path, mapping_file: Path, **extra: str
) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    env = {
        **os.environ,
        **stack.env(),
        "STREAM_APP_APP_ID": f"e2e-{suffix}",
        "STREAM_APP_DATA_DIR": str(work_dir / "worker-data"),
        "STREAM_APP_WEB_PORT": str(choose_port(0)),
        "STREAM_APP_MAPPING_FILE": str(mapping_file),
        "STREAM_APP_TOPICS__CONTACT_EVENTS": f"contact-events-{suffix}",
        "STREAM_APP_TOPICS__DEAD_LETTER": f"contact-events-{suffix}.dead-letter",
        "STREAM_APP_TOPICS__IMPORT_RESULTS": f"contact-import-results-{suffix}",
        "STREAM_APP_TOPICS__WEBHOOK_DEAD_LETTER": f"contact-import-results-{suffix}.webhook-dead-letter",
        "STREAM_APP_BATCH__MAX_SECONDS": "1.0",
        "STREAM_APP_S3__PREFIX": f"e2e-{suffix}",
    }
    env.update(extra)
    return env


def contact_event(
    contact_id: str, fields: dict[str, Any], contact_list: str, operation: str = "upsert"
) -> bytes:
    """Return a ContactEvent message value, as a producer would publish it."""
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "source": "e2e",
            "operation": operation,
            "contact_list": contact_list,
            "contact_id": contact_id,
            "fields": fields,
            "occurred_at": datetime.now(tz=UTC).isoformat(),
        }
    ).encode()


def start_worker(env: dict[str, str], work_dir: Path) -> ManagedProcess:
    worker = ManagedProcess(
        "worker",
        [sys.executable, "-m", "stream_app.cli", "worker"],
        work_dir / "worker.log",
        env=env,
    )
    worker.start()
    return worker


class TopicReader:
    """Reads every partition of some topics from the beginning, without a consumer group."""

    def __init__(self, bootstrap_servers: str, topics: dict[str, int]) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topics = topics
        self.messages: dict[str, list[Any]] = {topic: [] for topic in topics}
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicReader:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False
        )
        await self._consumer.start()
        partitions = [
            TopicPartition(topic, partition)
            for topic, count in self.topics.items()
            for partition in range(count)
        ]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def poll(self) -> None:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=300, max_records=10000)
        for tp, messages in batches.items():
            self.messages[tp.topic].extend(messages)

    async def wait_until(
        self, predicate: Callable[[], bool], within: float, worker: ManagedProcess
    ) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            await self.poll()
            if predicate():
                return
            if not worker.is_running():
                raise AssertionError(f"the worker exited; log tail:\n{worker.log_tail(60)}")
        raise AssertionError(
            f"timed out after {within:.0f} s; worker log tail:\n{worker.log_tail(60)}"
        )

    def json_values(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(message.value) for message in self.messages[topic]]
