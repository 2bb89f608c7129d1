"""Kafka helpers of the performance benchmark: a paced producer and a committed-offset watcher.

`produce_paced` publishes planned events at a fixed rate while a worker runs, and stores each
event's partition, offset and Kafka timestamp, which the latency join needs. `CommittedOffsets`
reads a consumer group's committed offsets with one long-lived admin client, which costs the
measured worker far less CPU than reading the results topic would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from bench.workload import PlannedEvent

logger = logging.getLogger(__name__)

# The paced producer sends what is due every this many seconds.
PACING_TICK_SECONDS = 0.02


async def produce_paced(
    bootstrap_servers: str, topic: str, events: list[PlannedEvent], rate: float
) -> float:
    """Publish `events` at `rate` per second, set their positions, and return the rate achieved.

    Event i is due at start + i / rate. Each event's Kafka timestamp is the wall-clock time at
    which it is handed to the producer, so a producer that falls behind shows in the latencies
    rather than hiding them. Raises ValueError when `rate` is not positive.
    """
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )
    await producer.start()
    pending: list[tuple[PlannedEvent, Any]] = []
    started = time.monotonic()
    try:
        sent = 0
        while sent < len(events):
            due = min(len(events), int((time.monotonic() - started) * rate) + 1)
            for event in events[sent:due]:
                timestamp_ms = int(time.time() * 1000)
                event.timestamp_ms = timestamp_ms
                future = await producer.send(
                    topic, value=event.value, key=event.key, timestamp_ms=timestamp_ms
                )
                pending.append((event, future))
            sent = max(sent, due)
            await asyncio.sleep(PACING_TICK_SECONDS)
        await producer.flush()
        for event, future in pending:
            metadata = await future
            event.partition = metadata.partition
            event.offset = metadata.offset
    finally:
        await producer.stop()
    elapsed = time.monotonic() - started
    return len(events) / elapsed if elapsed > 0 else float(len(events))


class CommittedOffsets:
    """A reader of one consumer group's committed offsets on one topic."""

    def __init__(self, bootstrap_servers: str, group_id: str, topic: str) -> None:
        self.group_id = group_id
        self.topic = topic
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
        self._started = False

    async def __aenter__(self) -> CommittedOffsets:
        await self._admin.start()
        self._started = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._started:
            await self._admin.close()
            self._started = False

    async def read(self) -> dict[int, int]:
        """Return partition -> committed offset, or nothing while the group has no coordinator."""
        try:
            offsets = await self._admin.list_consumer_group_offsets(self.group_id)
        except KafkaError as exc:
            logger.debug("Could not read the offsets of group %s yet: %s", self.group_id, exc)
            return {}
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == self.topic}
