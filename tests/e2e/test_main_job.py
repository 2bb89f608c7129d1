"""The main job end to end: events in Kafka, contacts in the Genesys emulator, results at the CRM.

One worker runs against the session's local stack. The input is a slice of the real CMS hospital
file (Windows-1252, two pairs of hospitals sharing a phone number) plus hand-written bad records
and Debezium change events for a second contact list.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from local_stack.stack import LocalStack
from stream_app.csv_codec import read_source_file
from stream_app.demo import DEFAULT_INPUT
from stream_app.genesys.client import GenesysClient
from stream_app.mapping import load_mapping
from stream_app.produce import produce_file
from stream_app.settings import Settings
from stream_app.topics import ensure_topics
from tests.e2e.harness import TopicReader, contact_event, start_worker, worker_env

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SLICE_ROWS = 300
# Rows 138/139 and 261/280 of the CMS file are different hospitals with the same phone number.
SHARED_PHONE_ROWS = [(138, 139), (261, 280)]


def _mapping_text(hospitals: str, people: str) -> str:
    return f"""
[defaults]
contact_list = "people"
phone_region = "US"

[lists.hospitals]
contact_list = "{hospitals}"
id_column = "provider_id"

[lists.hospitals.columns]
provider_id = "Provider ID"
name = "Hospital Name"
address = "Address"
city = "City"
state = "State"
zip = "ZIP Code"
phone = "Phone Number"

[lists.people]
contact_list = "{people}"
id_column = "id"

[lists.people.columns]
id = "id"
first_name = "first_name"
phone = "phone"
email = "email"
"""


def _debezium(op: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> bytes:
    return json.dumps(
        {
            "schema": {"type": "struct", "name": "crm.public.contacts.Envelope"},
            "payload": {
                "before": before,
                "after": after,
                "op": op,
                "ts_ms": 1_764_000_000_000,
                "source": {
                    "connector": "postgresql",
                    "name": "crm",
                    "db": "crm",
                    "schema": "public",
                    "table": "contacts",
                    "ts_ms": 1_764_000_000_000,
                },
            },
        }
    ).encode()


PERSON = {"id": "p-1", "first_name": "Ada", "phone": "+1 334 793 8701", "email": "ada@example.com"}
BAD_PEOPLE: list[tuple[str, dict[str, Any], str, str]] = [
    # (contact id, fields, expected rule, expected field)
    (
        "p-bom",
        {"\ufeffid": "p-bom", "first_name": "Bo", "phone": "3347938701", "email": "bo@example.com"},
        "field.missing",
        "id",
    ),
    (
        "p-newline",
        {**PERSON, "id": "p-newline", "first_name": "Ada\nLovelace"},
        "value.newline",
        "first_name",
    ),
    (
        "p-letters",
        {**PERSON, "id": "p-letters", "phone": "+1 800 FLOWERS"},
        "phone.letters",
        "phone",
    ),
    ("p-junk", {**PERSON, "id": "p-junk", "phone": "334-793-8701 xx"}, "phone.letters", "phone"),
    ("p-long", {**PERSON, "id": "p-long", "first_name": "x" * 513}, "value.too_long", "first_name"),
    (
        "p-email",
        {**PERSON, "id": "p-email", "email": "ada lovelace@example.com"},
        "email.invalid",
        "email",
    ),
]
DEBEZIUM_ROW = {
    "id": "d-1",
    "first_name": "Grace",
    "phone": "2565938310",
    "email": "grace@example.com",
}
DEBEZIUM_UPDATED = {**DEBEZIUM_ROW, "first_name": "Grace B."}
KEPT_ROW = {"id": "d-2", "first_name": "Alan", "phone": "2565938310", "email": "alan@example.com"}


@pytest.fixture
def cms_slice(tmp_path: Path) -> Path:
    """The CMS file's header and first rows, bytes unchanged (Windows-1252)."""
    lines = DEFAULT_INPUT.read_bytes().split(b"\n")
    path = tmp_path / "cms-slice.csv"
    path.write_bytes(b"\n".join(lines[: SLICE_ROWS + 1]) + b"\n")
    return path


@pytest.fixture
def job(local_stack: LocalStack, tmp_path: Path) -> Iterator[dict[str, Any]]:
    suffix = uuid.uuid4().hex[:8]
    names = {"hospitals": f"e2e-hospitals-{suffix}", "people": f"e2e-people-{suffix}"}
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(_mapping_text(names["hospitals"], names["people"]))
    env = worker_env(
        local_stack,
        tmp_path,
        mapping_file,
        STREAM_APP_DEBEZIUM__TABLE="contacts",
        STREAM_APP_DEBEZIUM__ID_COLUMN="id",
    )
    yield {
        "env": env,
        "names": names,
        "mapping_file": mapping_file,
        "tmp_path": tmp_path,
        "workers": [],
    }


async def _create_lists(settings: Settings, names: dict[str, str]) -> dict[str, str]:
    async with GenesysClient(settings.genesys) as genesys:
        hospitals = await genesys.create_contact_list(
            names["hospitals"],
            ["provider_id", "name", "address", "city", "state", "zip", "phone"],
            ["phone"],
        )
        people = await genesys.create_contact_list(
            names["people"], ["id", "first_name", "phone", "email"], ["phone"], ["email"]
        )
    return {"hospitals": hospitals.id, "people": people.id}


def _results_for(reader: TopicReader, topic: str, list_id: str) -> dict[str, dict[str, Any]]:
    return {r["batch_id"]: r for r in reader.json_values(topic) if r["contact_list"] == list_id}


def _received(results: dict[str, dict[str, Any]]) -> int:
    return sum(result["counts"]["received"] for result in results.values())


async def test_main_job_end_to_end(
    job: dict[str, Any], local_stack: LocalStack, cms_slice: Path
) -> None:
    env = job["env"]
    settings = Settings.from_environ(env)
    topics = settings.topics
    await ensure_topics(settings)
    list_ids = await _create_lists(settings, job["names"])
    worker = start_worker(env, job["tmp_path"])
    try:
        mapping = load_mapping(job["mapping_file"])
        produced = await produce_file(
            settings, cms_slice, mapping, "hospitals", show_progress=False
        )

        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(
                topics.contact_events, contact_event("p-1", PERSON, "people"), key=b"p-1"
            )
            for contact_id, fields, _, _ in BAD_PEOPLE:
                await producer.send_and_wait(
                    topics.contact_events,
                    contact_event(contact_id, fields, "people"),
                    key=contact_id.encode(),
                )
            await producer.send_and_wait(
                topics.contact_events, b"this is not json {", key=b"p-notjson"
            )
            await producer.send_and_wait(
                topics.contact_events, _debezium("c", None, DEBEZIUM_ROW), key=b"d-1"
            )
            await producer.send_and_wait(
                topics.contact_events, _debezium("c", None, KEPT_ROW), key=b"d-2"
            )
            await producer.send_and_wait(
                topics.contact_events, _debezium("u", DEBEZIUM_ROW, DEBEZIUM_UPDATED), key=b"d-1"
            )
            await producer.send_and_wait(
                topics.contact_events, _debezium("d", DEBEZIUM_UPDATED, None), key=b"d-1"
            )
            await producer.send_and_wait(
                topics.contact_events, None, key=b"d-1"
            )  # tombstone: skipped
        finally:
            await producer.stop()

        people_records = 1 + len(BAD_PEOPLE) + 4
        reader_topics = {
            topics.import_results: topics.partitions,
            topics.dead_letter: topics.partitions,
        }
        async with TopicReader(settings.kafka.bootstrap_servers, reader_topics) as reader:
            await reader.wait_until(
                lambda: (
                    _received(_results_for(reader, topics.import_results, list_ids["hospitals"]))
                    >= SLICE_ROWS
                    and _received(_results_for(reader, topics.import_results, list_ids["people"]))
                    >= people_records
                    and len(reader.messages[topics.dead_letter]) >= len(BAD_PEOPLE) + 1
                ),
                within=120,
                worker=worker,
            )
            hospital_results = _results_for(reader, topics.import_results, list_ids["hospitals"])
            people_results = _results_for(reader, topics.import_results, list_ids["people"])
            dead_letters = reader.json_values(topics.dead_letter)

            # Every bad record is dead-lettered with a reason that names its field.
            by_key = {record["key"]: record for record in dead_letters}
            for contact_id, _, rule, field in BAD_PEOPLE:
                reasons = by_key[contact_id]["reasons"]
                assert any(r["rule"] == rule and r["field"] == field for r in reasons), (
                    contact_id,
                    reasons,
                )
            assert by_key["p-bom"]["stage"] == "mapping"
            assert by_key["p-letters"]["stage"] == "validation"
            assert by_key["p-notjson"]["stage"] == "decode"
            assert by_key["p-notjson"]["reasons"][0]["rule"] == "decode.not_json"
            assert all("+1 800" not in json.dumps(r["reasons"]) for r in dead_letters)

            # The hospitals: every valid row imported under its own id, the rest rejected.
            hospital_counts = {
                name: sum(r["counts"][name] for r in hospital_results.values())
                for name in ("received", "valid", "rejected", "duplicates", "imported")
            }
            assert produced.produced == SLICE_ROWS
            assert hospital_counts["received"] == SLICE_ROWS
            assert hospital_counts["imported"] + hospital_counts["rejected"] == SLICE_ROWS
            assert all(
                r["genesys"]["request_ids"] for r in hospital_results.values() if r["genesys"]
            )
            hospitals_in_genesys = {
                c["id"]: c for c in local_stack.genesys.contacts(list_ids["hospitals"])
            }
            assert len(hospitals_in_genesys) == hospital_counts["imported"]
            rows = list(read_source_file(cms_slice))
            for first, second in SHARED_PHONE_ROWS:
                first_id, second_id = rows[first]["Provider ID"], rows[second]["Provider ID"]
                assert first_id != second_id
                assert (
                    hospitals_in_genesys[first_id]["data"]["phone"]
                    == hospitals_in_genesys[second_id]["data"]["phone"]
                )

            # Windows-1252 apostrophes arrive as U+2019, and phones as E.164.
            assert all(c["data"]["phone"].startswith("+1") for c in hospitals_in_genesys.values())

            # The people list: the valid person and the kept Debezium row; d-1 deleted after its update.
            people_in_genesys = {
                c["id"]: c for c in local_stack.genesys.contacts(list_ids["people"])
            }
            assert set(people_in_genesys) == {"p-1", "d-2"}
            assert people_in_genesys["p-1"]["data"]["phone"] == "+13347938701"
            d1_writes = [
                w
                for w in local_stack.genesys.writes(list_ids["people"])
                if w["contact_id"] == "d-1"
            ]
            assert [w["method"] for w in d1_writes] == ["contacts POST", "contacts POST", "delete"]

            # The CRM received every batch's result, signed.
            batch_ids = set(hospital_results) | set(people_results)
            await reader.wait_until(
                lambda: (
                    batch_ids
                    <= {
                        d["webhook_id"]
                        for d in local_stack.crm.deliveries()
                        if d["signature_valid"]
                    }
                ),
                within=60,
                worker=worker,
            )
            delivered = {
                d["webhook_id"]: d
                for d in local_stack.crm.deliveries()
                if d["webhook_id"] in batch_ids
            }
            assert all(d["signature_valid"] for d in delivered.values())
            assert {d["body"]["batch_id"] for d in delivered.values() if d["body"]} == batch_ids

            # The archive contains one CSV and one manifest per batch that submitted anything.
            keys = {r["s3"]["key"] for r in hospital_results.values() if r["s3"]}
            listing = local_stack.s3.client().list_objects_v2(
                Bucket=local_stack.bucket, Prefix=settings.s3.prefix
            )
            stored = {item["Key"] for item in listing.get("Contents", [])}
            assert keys <= stored

            # Producing the same slice again imports nothing new: all duplicates or rejected again.
            writes_before = len(local_stack.genesys.writes(list_ids["hospitals"]))
            await produce_file(settings, cms_slice, mapping, "hospitals", show_progress=False)
            await reader.wait_until(
                lambda: (
                    _received(_results_for(reader, topics.import_results, list_ids["hospitals"]))
                    >= 2 * SLICE_ROWS
                ),
                within=120,
                worker=worker,
            )
            second = {
                batch_id: r
                for batch_id, r in _results_for(
                    reader, topics.import_results, list_ids["hospitals"]
                ).items()
                if batch_id not in hospital_results
            }
            assert (
                sum(r["counts"]["duplicates"] for r in second.values())
                == hospital_counts["imported"]
            )
            assert sum(r["counts"]["submitted"] for r in second.values()) == 0
            assert len(local_stack.genesys.writes(list_ids["hospitals"])) == writes_before
    finally:
        worker.stop()
