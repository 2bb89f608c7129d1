"""The dedupe changelog writer against a real broker: store, order, tombstones, offsets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.types import TP

from local_stack.stack import LocalStack
from stream_app.settings import Settings
from stream_app.webhook_resend import kafka_client_options
from stream_app.worker.app import StreamWorker
from stream_app.worker.changelog import ChangelogWriter
from stream_app.worker.event_context import event_context
from tests.worker.support import worker_settings


class _Message:
    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition


class _Event:
    """Just what faust's store reads from the current event: its message's partition."""

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _Message(topic, partition)


async def _read_topic(settings: Settings, topic: str, partitions: int) -> dict[int, list[Any]]:
    consumer = AIOKafkaConsumer(**kafka_client_options(settings.kafka), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, partition) for partition in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: dict[int, list[Any]] = {partition: [] for partition in range(partitions)}
        for _ in range(60):
            positions = [await consumer.position(tp) for tp in tps]
            if all(position >= ends[tp] for position, tp in zip(positions, tps, strict=True)):
                return records
            fetched = await consumer.getmany(timeout_ms=1000)
            for tp, messages in fetched.items():
                records[tp.partition].extend(messages)
        raise AssertionError(f"could not read {topic} to its end offsets {ends}")
    finally:
        await consumer.stop()


@pytest.mark.integration
async def test_writes_reach_store_and_changelog_in_order(
    local_stack: LocalStack, tmp_path: Path, unique_name: str
) -> None:
    settings = worker_settings(local_stack.env(), tmp_path, unique_name)
    worker = StreamWorker(settings)
    table = worker.dedupe_table
    topic = table.changelog_topic.get_topic_name()
    partitions = settings.topics.partitions
    admin = AIOKafkaAdminClient(**kafka_client_options(settings.kafka))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()

    writer = ChangelogWriter(worker.app, kafka_client_options(settings.kafka))
    await writer.start()
    try:
        # Writes of two partitions interleave, as records of several partitions do.
        writes = [(0, "a", "1"), (1, "b", "1"), (0, "a", "2"), (0, "c", "1"), (1, "b", None)]
        writes += [(0, f"k{number}", str(number)) for number in range(3000)]
        for partition, key, value in writes:
            with event_context(_Event(settings.topics.contact_events, partition)):
                if value is None:
                    writer.delete(table, partition, key)
                else:
                    writer.set(table, partition, key, value)
        # The store has the values at once, before anything reached Kafka.
        assert table.data["a"] == "2"
        assert "b" not in table.data
        await asyncio.wait_for(writer.flush(), 30)
    finally:
        await writer.stop()

    records = await _read_topic(settings, topic, partitions)
    serializers = worker.app.serializers

    def decoded(partition: int) -> list[tuple[str, str | None]]:
        return [
            (
                serializers.loads_key(table.key_type, message.key, serializer=table.key_serializer),
                None
                if message.value is None
                else serializers.loads_value(
                    table.value_type, message.value, serializer=table.value_serializer
                ),
            )
            for message in records[partition]
        ]

    expected = {
        partition: [(key, value) for number, key, value in writes if number == partition]
        for partition in (0, 1)
    }
    assert decoded(0) == expected[0]
    assert decoded(1) == expected[1]
    # The store remembers the changelog offset it holds, so recovery starts after it.
    for partition in (0, 1):
        assert table.data.persisted_offset(TP(topic, partition)) == records[partition][-1].offset


async def test_codecs_encode_like_fausts_registry(tmp_path: Path) -> None:
    settings = worker_settings({}, tmp_path, "codecs")
    worker = StreamWorker(settings)
    writer = ChangelogWriter(worker.app, {"bootstrap_servers": "127.0.0.1:9"})
    serializers = worker.app.serializers
    tables = [worker.dedupe_table, worker.batch_table]
    samples = [("list\x1fcontact-1", "f00d:2:442:1796447779"), ("é ü \u2028", '{"a": "b"}')]
    try:
        for table in tables:
            for key, value in samples:
                key_bytes, value_bytes = writer._encode(table, key, value)
                assert key_bytes == serializers.dumps_key(
                    table.key_type, key, serializer=table.key_serializer
                )
                assert value_bytes == serializers.dumps_value(
                    table.value_type, value, serializer=table.value_serializer
                )
                assert value_bytes is not None
                assert writer._decode_value(table, value_bytes) == serializers.loads_value(
                    table.value_type, value_bytes, serializer=table.value_serializer
                )
            assert writer._codecs_for(table) is not None
    finally:
        await writer.stop()
