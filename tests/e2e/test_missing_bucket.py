"""A batch whose flush raises is read again and flushed once the cause is fixed."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from aiobotocore.session import get_session
from aiokafka import AIOKafkaProducer

from local_stack.stack import LocalStack
from stream_app.genesys.client import GenesysClient
from stream_app.settings import Settings
from stream_app.topics import ensure_topics
from stream_app.webhook_resend import kafka_client_options
from tests.e2e.harness import TopicReader, contact_event, start_worker, worker_env

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

RECORDS = 30
MAPPING = """
[defaults]
contact_list = "people"
phone_region = "US"

[lists.people]
contact_list = "{list_name}"
id_column = "id"

[lists.people.columns]
id = "id"
phone = "phone"
"""


async def _create_bucket(settings: Settings) -> None:
    s3 = settings.s3
    assert s3.access_key_id is not None and s3.secret_access_key is not None
    async with get_session().create_client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=s3.region,
        aws_access_key_id=s3.access_key_id.get_secret_value(),
        aws_secret_access_key=s3.secret_access_key.get_secret_value(),
    ) as client:
        await client.create_bucket(Bucket=s3.bucket)


async def test_missing_bucket_then_created(local_stack: LocalStack, tmp_path: Path) -> None:
    list_name = f"e2e-bucket-{uuid.uuid4().hex[:8]}"
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(MAPPING.format(list_name=list_name))
    env = worker_env(
        local_stack,
        tmp_path,
        mapping_file,
        STREAM_APP_S3_BUCKET=f"e2e-missing-{uuid.uuid4().hex[:8]}",
        STREAM_APP_TOPICS__PARTITIONS="1",
    )
    settings = Settings.from_environ(env)
    topics = settings.topics
    await ensure_topics(settings)
    async with GenesysClient(settings.genesys) as genesys:
        await genesys.create_contact_list(list_name, ["id", "phone"], ["phone"])

    producer = AIOKafkaProducer(**kafka_client_options(settings.kafka))
    await producer.start()
    try:
        for number in range(RECORDS):
            value = contact_event(
                f"c-{number:03d}", {"id": f"c-{number:03d}", "phone": "334-793-8701"}, "people"
            )
            await producer.send_and_wait(topics.contact_events, value, key=b"same-partition")
    finally:
        await producer.stop()

    worker = start_worker(env, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while "could not be flushed" not in worker.log_tail(200):
            assert worker.is_running(), worker.log_tail(60)
            assert time.monotonic() < deadline, worker.log_tail(60)
            await asyncio.sleep(0.5)
        await _create_bucket(settings)

        async with TopicReader(
            settings.kafka.bootstrap_servers, {topics.import_results: topics.partitions}
        ) as reader:

            def accepted() -> int:
                return sum(
                    result["counts"]["imported"]
                    for result in reader.json_values(topics.import_results)
                )

            await reader.wait_until(lambda: accepted() >= RECORDS, within=90, worker=worker)
            assert accepted() == RECORDS
    finally:
        worker.stop()
    assert "NoSuchBucket" in worker.log_tail(400)
