"""Poison input end to end: bad messages in one partition never stop it.

One worker reads a partition that contains a valid record, every kind of poison message (including
a real 5 MB value, above the 1 MiB decode limit) and more valid records. Each poison message must
reach the dead-letter topic with its reason, and every valid record must be imported.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from local_stack.stack import LocalStack
from schemas.rejected_record import MAX_RECORD_BYTES, MAX_VALUE_BYTES
from stream_app.genesys.client import GenesysClient
from stream_app.settings import Settings
from stream_app.topics import ensure_topics
from tests.e2e.harness import TopicReader, contact_event, start_worker, worker_env

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PARTITION = 0
FIVE_MB = 5 * 1024 * 1024
COLUMNS = ["id", "first_name", "phone"]
MAPPING = """
[defaults]
contact_list = "people"
phone_region = "US"

[lists.people]
contact_list = "{name}"
id_column = "id"

[lists.people.columns]
id = "id"
first_name = "first_name"
phone = "phone"
"""


def _person(contact_id: str, phone: str) -> dict[str, str]:
    return {"id": contact_id, "first_name": "Ada", "phone": phone}


def _poison_messages(list_name: str) -> list[tuple[str, bytes, str, str | None, str]]:
    """Return (key, value, rule, field, part of the message) for each poison message."""
    valid = json.loads(contact_event("p-typed", _person("p-typed", "3347938705"), list_name))
    too_large = json.dumps({**valid, "contact_id": "p-5mb", "padding": "x" * FIVE_MB}).encode()
    return [
        (
            "p-not-json",
            b"contact_id=p-not-json; phone=3347938705",
            "decode.not_json",
            None,
            "not JSON",
        ),
        (
            "p-invalid-utf8",
            # "José" in Windows-1252: the byte e9 alone is not UTF-8.
            contact_event(
                "p-invalid-utf8", _person("p-invalid-utf8", "3347938705"), list_name
            ).replace(b'"Ada"', b'"Jos\xe9"'),
            "decode.invalid_utf8",
            None,
            "byte(s) e9",
        ),
        (
            "p-number-id",
            json.dumps({**valid, "contact_id": 10001}).encode(),
            "decode.schema",
            "contact_id",
            "Expected a string, got a number.",
        ),
        (
            "p-fields-list",
            json.dumps({**valid, "fields": ["p-fields-list", "Ada"]}).encode(),
            "decode.schema",
            "fields",
            "Expected an object, got an array.",
        ),
        ("p-empty", b"", "decode.not_json", None, "empty"),
        ("p-array", json.dumps([valid]).encode(), "decode.not_object", None, "got an array"),
        (
            "p-nested",
            b'{"a": ' * 100_000 + b"1" + b"}" * 100_000,
            "decode.not_json",
            None,
            "nested too deeply",
        ),
        ("p-5mb", too_large, "decode.too_large", None, f"{len(too_large)} bytes"),
    ]


async def _create_list(settings: Settings, name: str) -> str:
    async with GenesysClient(settings.genesys) as genesys:
        contact_list = await genesys.create_contact_list(name, COLUMNS, ["phone"])
    return contact_list.id


def _accepted_ids(reader: TopicReader, topic: str) -> set[str]:
    return {
        outcome["source_id"]
        for result in reader.json_values(topic)
        for outcome in result["records"]
        if outcome["outcome"] == "accepted"
    }


async def test_poison_input_skipped_per_partition(
    local_stack: LocalStack, tmp_path: Path, unique_name: str
) -> None:
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(MAPPING.format(name=unique_name))
    env = worker_env(local_stack, tmp_path, mapping_file)
    settings = Settings.from_environ(env)
    topics = settings.topics
    await ensure_topics(settings)
    list_id = await _create_list(settings, unique_name)

    poison = _poison_messages(unique_name)
    valid_before = [("v-before", "3347938701")]
    valid_after = [
        ("v-after-1", "3347938702"),
        ("v-after-2", "3347938703"),
        ("v-after-3", "3347938704"),
    ]
    offsets: dict[str, int] = {}

    worker = start_worker(env, tmp_path)
    try:
        # The default max_request_size (1 MiB) would reject the 5 MB message in the producer.
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka.bootstrap_servers,
            max_request_size=topics.contact_events_max_message_bytes,
        )
        await producer.start()
        try:
            messages = [
                *(
                    (key, contact_event(key, _person(key, phone), unique_name))
                    for key, phone in valid_before
                ),
                *((key, value) for key, value, _, _, _ in poison),
                *(
                    (key, contact_event(key, _person(key, phone), unique_name))
                    for key, phone in valid_after
                ),
            ]
            for key, value in messages:
                metadata = await producer.send_and_wait(
                    topics.contact_events, value, key=key.encode(), partition=PARTITION
                )
                offsets[key] = metadata.offset
        finally:
            await producer.stop()

        valid_ids = {key for key, _ in valid_before + valid_after}
        reader_topics = {
            topics.import_results: topics.partitions,
            topics.dead_letter: topics.partitions,
        }
        async with TopicReader(settings.kafka.bootstrap_servers, reader_topics) as reader:
            await reader.wait_until(
                lambda: (
                    valid_ids <= _accepted_ids(reader, topics.import_results)
                    and len(reader.messages[topics.dead_letter]) >= len(poison)
                ),
                within=120,
                worker=worker,
            )

            dead_letter_messages = reader.messages[topics.dead_letter]
            assert all(len(message.value) <= MAX_RECORD_BYTES for message in dead_letter_messages)
            dead_letters = reader.json_values(topics.dead_letter)
            by_key: dict[str | None, list[dict[str, Any]]] = {}
            for record in dead_letters:
                by_key.setdefault(record["key"], []).append(record)

            # One dead-letter record per poison message, with its reason and its source position.
            assert set(by_key) == {key for key, _, _, _, _ in poison}
            for key, value, rule, field, message_part in poison:
                assert len(by_key[key]) == 1, key
                record = by_key[key][0]
                assert record["stage"] == "decode", key
                assert (record["topic"], record["partition"], record["offset"]) == (
                    topics.contact_events,
                    PARTITION,
                    offsets[key],
                ), key
                assert len(record["reasons"]) == 1, (key, record["reasons"])
                reason = record["reasons"][0]
                assert reason["rule"] == rule, (key, reason)
                assert reason["field"] == field, (key, reason)
                assert message_part in reason["message"], (key, reason)
                assert reason["fix"], (key, reason)
                assert record["value_size"] == len(value), key
                assert record["value_sha256"] == hashlib.sha256(value).hexdigest(), key

            # The 5 MB value keeps a bounded prefix and is flagged as truncated.
            values = {key: value for key, value, _, _, _ in poison}
            large = by_key["p-5mb"][0]
            assert len(values["p-5mb"]) > FIVE_MB
            assert large["value_truncated"] is True
            assert base64.b64decode(large["value_base64"]) == values["p-5mb"][:MAX_VALUE_BYTES]
            small = by_key["p-not-json"][0]
            assert small["value_truncated"] is False
            assert base64.b64decode(small["value_base64"]) == values["p-not-json"]

            # The valid records around the poison messages are all imported.
            assert valid_ids <= _accepted_ids(reader, topics.import_results)
            in_genesys = {contact["id"] for contact in local_stack.genesys.contacts(list_id)}
            assert in_genesys == valid_ids

        assert worker.is_running(), worker.log_tail(60)
    finally:
        worker.stop()
