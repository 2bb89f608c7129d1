"""Create the service's topics with the configured partition count before anything uses them.

The dedupe table is co-partitioned with the contact-events topic, so that topic must have exactly
`topics.partitions` partitions. A broker with auto-create enabled would otherwise create it on the
first produce with its own default count.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from stream_app.errors import ConfigurationError
from stream_app.settings import Settings

logger = logging.getLogger(__name__)


async def ensure_topics(settings: Settings) -> None:
    """Create missing topics; raise ConfigurationError if contact-events has another partition count."""
    topics = settings.topics
    partitions_by_topic = {
        topics.contact_events: topics.partitions,
        topics.dead_letter: topics.partitions,
        topics.import_results: topics.partitions,
        topics.webhook_dead_letter: 1,
    }
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        # list_topics does not create topics; a metadata request naming a missing topic would,
        # with the broker's default partition count, when auto-create is enabled.
        names = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=count, replication_factor=topics.replication_factor)
            for name, count in partitions_by_topic.items()
            if name not in names
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            logger.info("Created topics %s", ", ".join(topic.name for topic in missing))
        described = await admin.describe_topics([topics.contact_events])
    finally:
        await admin.close()

    present = {item["topic"]: len(item["partitions"]) for item in described if item["partitions"]}
    actual = present.get(topics.contact_events)
    if actual is not None and actual != topics.partitions:
        raise ConfigurationError(
            f"topic {topics.contact_events!r} has {actual} partitions but STREAM_APP_TOPICS__PARTITIONS "
            f"is {topics.partitions}; set it to {actual}"
        )


async def read_topic(
    settings: Settings, topic: str, *, idle_seconds: float
) -> AsyncIterator[bytes]:
    """Yield every message value of `topic` from the beginning, without a consumer group.

    Stops once no message has arrived for `idle_seconds`, so it suits inspection commands.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        # list_topics does not auto-create a missing topic, unlike a metadata request naming it.
        if topic not in await admin.list_topics():
            return
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assigned = [
        TopicPartition(topic, partition["partition"])
        for item in described
        for partition in item["partitions"]
    ]

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        while True:
            batches = await consumer.getmany(timeout_ms=int(idle_seconds * 1000))
            if not batches:
                return
            for messages in batches.values():
                for message in messages:
                    yield message.value
    finally:
        await consumer.stop()
