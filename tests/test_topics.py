"""ensure_topics against the local broker: topic creation and the message-size checks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from local_stack.stack import LocalStack
from stream_app.errors import ConfigurationError
from stream_app.settings import Settings
from stream_app.topics import DEAD_LETTER_MAX_MESSAGE_BYTES, ensure_topics

pytestmark = pytest.mark.integration


def _settings(stack: LocalStack, name: str) -> Settings:
    return Settings.from_environ(
        {
            **stack.env(),
            "STREAM_APP_TOPICS__CONTACT_EVENTS": name,
            "STREAM_APP_TOPICS__DEAD_LETTER": f"{name}.dead-letter",
            "STREAM_APP_TOPICS__IMPORT_RESULTS": f"{name}.results",
            "STREAM_APP_TOPICS__WEBHOOK_DEAD_LETTER": f"{name}.webhook-dead-letter",
        }
    )


@pytest.fixture
async def admin(local_stack: LocalStack) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=local_stack.kafka.bootstrap_servers)
    await client.start()
    yield client
    await client.close()


async def _max_message_bytes(admin: AIOKafkaAdminClient, topic: str) -> int:
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": None})
    [response] = await admin.describe_configs([resource])
    [(error_code, _, _, _, entries)] = response.resources
    assert error_code == 0
    return int(dict((entry[0], entry[1]) for entry in entries)["max.message.bytes"])


async def _create_topic(admin: AIOKafkaAdminClient, settings: Settings, max_bytes: int) -> None:
    topic = NewTopic(
        settings.topics.contact_events,
        num_partitions=settings.topics.partitions,
        replication_factor=1,
        topic_configs={"max.message.bytes": str(max_bytes)},
    )
    await admin.create_topics([topic])


async def test_ensure_topics_sets_message_limits(
    local_stack: LocalStack, admin: AIOKafkaAdminClient, unique_name: str
) -> None:
    settings = _settings(local_stack, unique_name)

    await ensure_topics(settings)

    topics = settings.topics
    contact_events_limit = await _max_message_bytes(admin, topics.contact_events)
    assert contact_events_limit == topics.contact_events_max_message_bytes
    assert contact_events_limit > settings.validation.max_message_bytes
    assert await _max_message_bytes(admin, topics.dead_letter) == DEAD_LETTER_MAX_MESSAGE_BYTES


async def test_ensure_topics_rejects_larger_topic_limit(
    local_stack: LocalStack, admin: AIOKafkaAdminClient, unique_name: str
) -> None:
    settings = _settings(local_stack, unique_name)
    limit = settings.topics.contact_events_max_message_bytes + 1
    await _create_topic(admin, settings, limit)

    with pytest.raises(ConfigurationError, match="CONTACT_EVENTS_MAX_MESSAGE_BYTES") as caught:
        await ensure_topics(settings)

    assert f"set it to {limit}" in str(caught.value)


async def test_ensure_topics_warns_on_small_topic_limit(
    local_stack: LocalStack,
    admin: AIOKafkaAdminClient,
    unique_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = _settings(local_stack, unique_name)
    await _create_topic(admin, settings, 500_000)

    with caplog.at_level(logging.WARNING, logger="stream_app.topics"):
        await ensure_topics(settings)

    assert "500000 bytes" in caplog.text
    assert "MESSAGE_TOO_LARGE" in caplog.text
