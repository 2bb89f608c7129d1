"""Seed-style dedupe on normalised phones and e-mails, across partitions."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from local_stack.stack import LocalStack
from stream_app.genesys.client import GenesysClient
from stream_app.settings import Settings
from stream_app.topics import ensure_topics
from tests.e2e.harness import TopicReader, contact_event, start_worker, worker_env

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

MAPPING = """
[defaults]
contact_list = "people"
phone_region = "US"

[lists.people]
contact_list = "{list_name}"
id_column = "id"
"""

FIRST = {"id": "c-1", "first_name": "Ada", "phone": "334-793-8701", "email": "ada@example.com"}
# The same person under another CRM id: the phone is written differently but normalises alike.
SAME_PERSON = {**FIRST, "id": "c-2", "phone": "+1 (334) 793 8701"}
OTHER_EMAIL = {**FIRST, "id": "c-3", "email": "grace@example.com"}
FIRST_RENAMED = {**FIRST, "first_name": "Ada L."}


def _outcomes(reader: TopicReader, topic: str) -> dict[str, list[str]]:
    outcomes: dict[str, list[str]] = {}
    batches = {result["batch_id"]: result for result in reader.json_values(topic)}
    for result in batches.values():
        for record in result["records"]:
            outcomes.setdefault(record["source_id"], []).append(record["outcome"])
    return outcomes


async def test_same_channels_other_id_duplicate(local_stack: LocalStack, tmp_path: Path) -> None:
    list_name = f"e2e-channels-{uuid.uuid4().hex[:8]}"
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(MAPPING.format(list_name=list_name))
    env = worker_env(
        local_stack,
        tmp_path,
        mapping_file,
        STREAM_APP_DEDUPE__CHANNEL_IDENTITY="true",
        STREAM_APP_TOPICS__PARTITIONS="2",
    )
    settings = Settings.from_environ(env)
    topics = settings.topics
    await ensure_topics(settings)
    async with GenesysClient(settings.genesys) as genesys:
        contact_list = await genesys.create_contact_list(
            list_name, ["id", "first_name", "phone", "email"], ["phone"], ["email"]
        )

    worker = start_worker(env, tmp_path)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await producer.start()
    try:
        reader_topics = {topics.import_results: topics.partitions}
        async with TopicReader(settings.kafka.bootstrap_servers, reader_topics) as reader:

            async def send(fields: dict[str, Any], partition: int) -> None:
                contact_id = fields["id"]
                value = contact_event(contact_id, fields, "people")
                await producer.send_and_wait(
                    topics.contact_events, value, key=contact_id.encode(), partition=partition
                )
                count = sum(len(v) for v in _outcomes(reader, topics.import_results).values())
                await reader.wait_until(
                    lambda: (
                        sum(len(v) for v in _outcomes(reader, topics.import_results).values())
                        > count
                    ),
                    within=60,
                    worker=worker,
                )

            # Each event waits for its result, so the claims happen in this order.
            await send(FIRST, partition=0)
            await send(SAME_PERSON, partition=1)
            await send(OTHER_EMAIL, partition=1)
            await send(FIRST_RENAMED, partition=0)
            outcomes = _outcomes(reader, topics.import_results)
    finally:
        await producer.stop()
        worker.stop()

    assert outcomes["c-1"] == ["accepted", "accepted"]
    assert outcomes["c-2"] == ["duplicate"]
    assert outcomes["c-3"] == ["accepted"]
    contacts = {c["id"]: c for c in local_stack.genesys.contacts(contact_list.id)}
    assert set(contacts) == {"c-1", "c-3"}
    assert contacts["c-1"]["data"]["first_name"] == "Ada L."
