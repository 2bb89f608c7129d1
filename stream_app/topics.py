"""Create the service's topics with the configured partition count before anything uses them.

The dedupe table is co-partitioned with the contact-events topic, so that topic must have exactly
`topics.partitions` partitions. A broker with auto-create enabled would otherwise create it on the
first produce with its own default count.

The contact-events topic also gets a max.message.bytes above the decode limit, so that an oversized
message reaches the worker and is dead-lettered with a reason. The worker fetches with the same
size, because aiokafka 0.14 skips a record that is larger than its per-partition fetch size.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from stream_app.errors import ConfigurationError
from stream_app.settings import Settings

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES_CONFIG = "max.message.bytes"
# Kafka's default message.max.bytes (checked on 3.9.1 and 4.1.1). It is set on the dead-letter
# topic so that a broker with a lower default still accepts every dead-letter record: at most
# 900,000 bytes of JSON (schemas.rejected_record.MAX_RECORD_BYTES) plus the key.
DEAD_LETTER_MAX_MESSAGE_BYTES = 1_048_588
DESCRIBE_RETRY_SECONDS = 10.0


# The worker's faust tables (see stream_app.worker.app); each has a compacted changelog topic.
CHANGELOG_TABLES = ("dedupe", "dedupe-channels", "batches")


async def ensure_topics(settings: Settings) -> None:
    """Create missing topics and check the contact-events topic's partitions and message size.

    Raises:
        ConfigurationError: contact-events has another partition count than the settings, or
            accepts larger messages than the worker fetches.
    """
    topics = settings.topics
    partitions_by_topic = {
        topics.contact_events: topics.partitions,
        topics.dead_letter: topics.partitions,
        topics.import_results: topics.partitions,
        topics.webhook_dead_letter: 1,
    }
    # The changelogs of the worker's tables. faust creates them itself when a table starts, but a
    # first table write can race that creation; created here, they exist before the worker runs.
    changelogs = {f"{settings.app_id}-{table}-changelog" for table in CHANGELOG_TABLES}
    partitions_by_topic.update(dict.fromkeys(changelogs, topics.partitions))
    configs_by_topic: dict[str, dict[str, str]] = {
        name: {"cleanup.policy": "compact"} for name in changelogs
    }
    configs_by_topic |= {
        topics.contact_events: {
            MAX_MESSAGE_BYTES_CONFIG: str(topics.contact_events_max_message_bytes)
        },
        topics.dead_letter: {MAX_MESSAGE_BYTES_CONFIG: str(DEAD_LETTER_MAX_MESSAGE_BYTES)},
    }
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        # list_topics does not create topics; a metadata request naming a missing topic would,
        # with the broker's default partition count, when auto-create is enabled.
        names = set(await admin.list_topics())
        missing = [
            NewTopic(
                name,
                num_partitions=count,
                replication_factor=topics.replication_factor,
                topic_configs=configs_by_topic.get(name, {}),
            )
            for name, count in partitions_by_topic.items()
            if name not in names
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            logger.info("Created topics %s", ", ".join(topic.name for topic in missing))
        described = await admin.describe_topics([topics.contact_events])
        max_message_bytes = await _max_message_bytes(admin, topics.contact_events)
    finally:
        await admin.close()

    present = {item["topic"]: len(item["partitions"]) for item in described if item["partitions"]}
    actual = present.get(topics.contact_events)
    if actual is not None and actual != topics.partitions:
        raise ConfigurationError(
            f"topic {topics.contact_events!r} has {actual} partitions but STREAM_APP_TOPICS__PARTITIONS "
            f"is {topics.partitions}; set it to {actual}"
        )
    if max_message_bytes is not None:
        _check_max_message_bytes(settings, max_message_bytes)


async def _max_message_bytes(admin: AIOKafkaAdminClient, topic: str) -> int | None:
    """Return the topic's effective max.message.bytes, or None when the broker reports an error.

    A topic created a moment ago reaches each broker's metadata with a delay, so the request is
    repeated for up to DESCRIBE_RETRY_SECONDS while the broker reports the topic as unknown.
    """
    deadline = time.monotonic() + DESCRIBE_RETRY_SECONDS
    while True:
        error_code, error_message, value = await _describe_max_message_bytes(admin, topic)
        if error_code != UnknownTopicOrPartitionError.errno or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.2)

    if error_code != 0:
        logger.warning(
            "Could not read %s of topic %s (error code %d: %s), so its limit is not checked",
            MAX_MESSAGE_BYTES_CONFIG,
            topic,
            error_code,
            error_message,
        )
        return None
    if value is None:
        logger.warning(
            "The broker returned no %s for topic %s, so its limit is not checked",
            MAX_MESSAGE_BYTES_CONFIG,
            topic,
        )
    return value


async def _describe_max_message_bytes(
    admin: AIOKafkaAdminClient, topic: str
) -> tuple[int, str | None, int | None]:
    """Send one DescribeConfigs request and return its error code, error message and value."""
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, {MAX_MESSAGE_BYTES_CONFIG: None})
    for response in await admin.describe_configs([resource]):
        for error_code, error_message, _type, name, entries in response.resources:
            if name != topic:
                continue
            values = {entry[0]: entry[1] for entry in entries}
            value = values.get(MAX_MESSAGE_BYTES_CONFIG)
            return error_code, error_message, None if value is None else int(value)
    return 0, None, None


def _check_max_message_bytes(settings: Settings, topic_limit: int) -> None:
    topics = settings.topics
    fetch_size = topics.contact_events_max_message_bytes
    if topic_limit > fetch_size:
        raise ConfigurationError(
            f"topic {topics.contact_events!r} accepts messages up to {topic_limit} bytes "
            f"({MAX_MESSAGE_BYTES_CONFIG}) but STREAM_APP_TOPICS__CONTACT_EVENTS_MAX_MESSAGE_BYTES "
            f"is {fetch_size}, so the worker could not fetch the largest ones; set it to "
            f"{topic_limit}"
        )
    if topic_limit < settings.validation.max_message_bytes:
        logger.warning(
            "Topic %s accepts messages up to %d bytes (%s), less than "
            "STREAM_APP_VALIDATION__MAX_MESSAGE_BYTES=%d. Producers of larger messages get "
            "MESSAGE_TOO_LARGE errors instead of a dead-letter record. Raise the topic's %s "
            "to %d.",
            topics.contact_events,
            topic_limit,
            MAX_MESSAGE_BYTES_CONFIG,
            settings.validation.max_message_bytes,
            MAX_MESSAGE_BYTES_CONFIG,
            fetch_size,
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
