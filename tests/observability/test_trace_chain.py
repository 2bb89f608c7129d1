"""One record's trace across processes: produce, worker intake, batch, S3, Genesys, webhook.

The test publishes a small CSV with `produce_file` in this process, whose spans go to the
in-memory exporter. A worker child process writes its spans to a span file
(STREAM_APP_TRACING__SPAN_FILE). The test joins both by trace and span ids and checks every
parent and link along the way, and that no span contains the input's phone numbers or e-mails.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from opentelemetry import trace

from local_stack.process import ManagedProcess
from local_stack.stack import LocalStack
from stream_app.genesys.client import GenesysClient
from stream_app.mapping import load_mapping
from stream_app.observability import propagation
from stream_app.produce import produce_file
from stream_app.settings import Settings
from stream_app.topics import ensure_topics
from tests.e2e.harness import TopicReader, start_worker, worker_env
from tests.observability.span_support import (
    SpanRecord,
    children,
    from_readable,
    memory_exporter,
    only,
    read_span_file,
)

pytestmark = [pytest.mark.tracing, pytest.mark.integration, pytest.mark.e2e]

ROWS = [
    {"id": "t-valid", "name": "Ada", "phone": "+1 334 793 8701", "email": "ada@example.com"},
    {"id": "t-badphone", "name": "Bo", "phone": "0936933841", "email": "bo@example.com"},
    {"id": "t-second", "name": "Cy", "phone": "(256) 593-8310", "email": "cy@example.org"},
]
RAW_VALUES = ["3347938701", "0936933841", "2565938310", "ada@example.com", "bo@example.com"]


def _mapping(list_name: str) -> str:
    return f"""
[defaults]
contact_list = "people"
phone_region = "US"

[lists.people]
contact_list = "{list_name}"
id_column = "id"

[lists.people.columns]
id = "id"
name = "name"
phone = "phone"
email = "email"
"""


def _write_csv(path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows(ROWS)


def _traceparent_ids(headers: Any) -> tuple[str, str]:
    value = dict(headers or [])["traceparent"].decode()
    _, trace_id, span_id, _ = value.split("-")
    return trace_id, span_id


async def _wait_for_spans(
    path: Path, ready: Callable[[list[SpanRecord]], bool], worker: ManagedProcess
) -> list[SpanRecord]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        spans = read_span_file(path)
        if ready(spans):
            return spans
        assert worker.is_running(), f"the worker exited; log tail:\n{worker.log_tail(60)}"
        await asyncio.sleep(0.5)
    raise AssertionError(f"the span file lacks spans after 60 s; it has {read_span_file(path)}")


async def _send(
    settings: Settings, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


def _texts(span: SpanRecord) -> list[str]:
    """Return the span's name and every attribute value, event name and event value as text."""
    texts = [span.name, *(json.dumps(value) for value in span.attributes.values())]
    for event in span.events:
        texts.append(event["name"])
        texts.extend(json.dumps(value) for value in (event.get("attributes") or {}).values())
    return texts


async def test_record_trace_spans_all_steps(local_stack: LocalStack, tmp_path: Path) -> None:
    list_name = f"trace-people-{uuid.uuid4().hex[:8]}"
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(_mapping(list_name))
    input_file = tmp_path / "people.csv"
    _write_csv(input_file)
    span_file = tmp_path / "worker-spans.jsonl"
    env = worker_env(
        local_stack,
        tmp_path,
        mapping_file,
        STREAM_APP_TRACING__SPAN_FILE=str(span_file),
        OTEL_TRACES_EXPORTER="none",
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    env.pop("OTEL_SDK_DISABLED", None)
    settings = Settings.from_environ(env)
    topics = settings.topics
    await ensure_topics(settings)
    async with GenesysClient(settings.genesys) as genesys:
        contact_list = await genesys.create_contact_list(
            list_name, ["id", "name", "phone", "email"], ["phone"], ["email"]
        )

    exporter = memory_exporter()
    worker = start_worker(env, tmp_path)
    try:
        produced = await produce_file(
            settings, input_file, load_mapping(mapping_file), "people", show_progress=False
        )
        assert produced.produced == len(ROWS)
        # A producer of its own that sets the header, with a value the worker cannot decode.
        with trace.get_tracer("test").start_as_current_span("external publish") as external:
            poison_headers = propagation.inject_headers()
        await _send(settings, topics.contact_events, b"not json {", b"t-poison", poison_headers)

        reader_topics = {
            topics.import_results: topics.partitions,
            topics.dead_letter: topics.partitions,
        }
        async with TopicReader(settings.kafka.bootstrap_servers, reader_topics) as reader:
            await reader.wait_until(
                lambda: (
                    sum(r["counts"]["received"] for r in reader.json_values(topics.import_results))
                    >= len(ROWS)
                    and len(reader.messages[topics.dead_letter]) >= 2
                ),
                within=120,
                worker=worker,
            )
        results = {message.value: message for message in reader.messages[topics.import_results]}
        dead_letters = {message.key: message for message in reader.messages[topics.dead_letter]}
        assert set(dead_letters) == {b"t-badphone", b"t-poison"}
        batch_ids = {json.loads(value)["batch_id"] for value in results}

        def complete(spans: list[SpanRecord]) -> bool:
            delivered = {
                s.attributes.get("stream_app.webhook.id")
                for s in spans
                if s.name == "webhook deliver"
            }
            processed = [s for s in spans if s.name == f"process {topics.contact_events}"]
            return batch_ids <= delivered and len(processed) >= len(ROWS) + 1

        worker_spans = await _wait_for_spans(span_file, complete, worker)
    finally:
        worker.stop()

    produce_spans = [
        from_readable(span)
        for span in exporter.get_finished_spans()
        if span.name == f"publish {topics.contact_events}"
        and span.attributes is not None
        and span.attributes.get("messaging.destination.name") == topics.contact_events
    ]
    assert len(produce_spans) == len(ROWS)
    for span in produce_spans:
        assert span.kind == "PRODUCER"
        assert span.parent_id is None
        assert span.attributes["messaging.system"] == "kafka"
        assert isinstance(span.attributes["messaging.kafka.offset"], int)

    # Each record: its produce span -> the worker's process span -> validate.
    process_spans = {}
    for produce in produce_spans:
        process = only(
            [
                s
                for s in children(worker_spans, produce)
                if s.name == f"process {topics.contact_events}"
            ],
            f"process span under produce {produce.span_id}",
        )
        assert process.kind == "CONSUMER"
        assert (
            process.attributes["messaging.kafka.offset"]
            == produce.attributes["messaging.kafka.offset"]
        )
        assert (
            process.attributes["messaging.destination.partition.id"]
            == produce.attributes["messaging.destination.partition.id"]
        )
        assert process.attributes["messaging.consumer.group.name"] == settings.app_id
        validate = only(
            [s for s in children(worker_spans, process) if s.name == "validate"], "validate"
        )
        process_spans[process.span_id] = (process, validate)

    verdicts = sorted(
        v.attributes["stream_app.validation.valid"] for _, v in process_spans.values()
    )
    assert verdicts == [False, True, True]
    rejected_process, rejected_validate = next(
        (p, v) for p, v in process_spans.values() if not v.attributes["stream_app.validation.valid"]
    )
    assert rejected_validate.attributes["stream_app.validation.rules"] == ["phone.invalid"]

    # The dead-letter message continues the rejected record's trace.
    assert _traceparent_ids(dead_letters[b"t-badphone"].headers) == (
        rejected_process.trace_id,
        rejected_process.span_id,
    )

    # The poison message: processed under the external producer's span, dead-lettered at once.
    external_record = from_readable(external)
    poison_process = only(
        [
            s
            for s in children(worker_spans, external_record)
            if s.name == f"process {topics.contact_events}"
        ],
        "process span of the poison message",
    )
    assert not children(worker_spans, poison_process)
    assert _traceparent_ids(dead_letters[b"t-poison"].headers) == (
        poison_process.trace_id,
        poison_process.span_id,
    )

    # The batch spans link to the records' process spans.
    batch_spans = [s for s in worker_spans if s.name == "batch flush"]
    assert {s.attributes["stream_app.batch.id"] for s in batch_spans} == batch_ids
    linked = {link for batch in batch_spans for link in batch.links}
    for process, _ in process_spans.values():
        assert (process.trace_id, process.span_id) in linked
    assert sum(s.attributes["stream_app.batch.records"] for s in batch_spans) == len(ROWS)

    checked_writes = 0
    for batch in batch_spans:
        # The first linked record is the parent, so its trace continues into the batch.
        assert (batch.trace_id, batch.parent_id) == batch.links[0]
        assert batch.parent_id in process_spans
        under_batch = children(worker_spans, batch)
        result = next(
            json.loads(value)
            for value in results
            if json.loads(value)["batch_id"] == batch.attributes["stream_app.batch.id"]
        )
        # The result message names the batch span.
        assert result["traceparent"].split("-")[1:3] == [batch.trace_id, batch.span_id]

        if result["counts"]["submitted"] == 0:
            # Only rejected records: nothing to archive or write.
            assert result["s3"] is None
            assert not [s for s in under_batch if s.kind == "CLIENT"]

        # S3: the CSV and its manifest.
        puts = [s for s in under_batch if s.name == "S3.PutObject"]
        expected_keys = [result["s3"]["key"], result["s3"]["manifest_key"]] if result["s3"] else []
        assert sorted(s.attributes["aws.s3.key"] for s in puts) == sorted(expected_keys)
        for put in puts:
            assert put.kind == "CLIENT"
            assert put.attributes["rpc.system"] == "aws-api"
            assert put.attributes["rpc.service"] == "S3"
            assert put.attributes["rpc.method"] == "PutObject"
            assert put.attributes["aws.s3.bucket"] == settings.s3.bucket

        # Genesys Cloud: the contacts write.
        genesys_calls = [s for s in under_batch if s.attributes.get("http.request.method")]
        writes = [
            s for s in genesys_calls if s.attributes.get("url.template", "").endswith("/contacts")
        ]
        checked_writes += len(writes)
        for write in writes:
            assert write.name == "POST /api/v2/outbound/contactlists/{contactListId}/contacts"
            assert write.kind == "CLIENT"
            assert write.attributes["http.response.status_code"] == 200
            assert write.attributes["url.full"].endswith(
                f"/contactlists/{contact_list.id}/contacts"
            )
            assert "?" not in write.attributes["url.full"]
            assert write.attributes["server.address"] == "127.0.0.1"

        # The result's publication, and the relay's delivery in the same trace.
        publish = only(
            [s for s in under_batch if s.name == f"publish {topics.import_results}"],
            "result publish",
        )
        assert publish.kind == "PRODUCER"
        relay = only(
            [
                s
                for s in children(worker_spans, publish)
                if s.name == f"process {topics.import_results}"
            ],
            "relay process",
        )
        assert relay.kind == "CONSUMER"
        deliver = only(
            [s for s in children(worker_spans, relay) if s.name == "webhook deliver"],
            "webhook deliver",
        )
        assert deliver.attributes["stream_app.webhook.id"] == result["batch_id"]
        assert deliver.attributes["stream_app.webhook.delivered"] is True
        post = only(
            [s for s in children(worker_spans, deliver) if s.name == "POST"], "webhook POST"
        )
        assert post.kind == "CLIENT"
        assert 200 <= post.attributes["http.response.status_code"] < 300

    # One record's trace, from the producer to the CRM.
    written = next(
        batch for batch in batch_spans if batch.attributes["stream_app.batch.submitted"] > 0
    )
    names = {s.name for s in [*produce_spans, *worker_spans] if s.trace_id == written.trace_id}
    assert names >= {
        f"publish {topics.contact_events}",
        f"process {topics.contact_events}",
        "validate",
        "batch flush",
        "S3.PutObject",
        "POST /api/v2/outbound/contactlists/{contactListId}/contacts",
        f"publish {topics.import_results}",
        f"process {topics.import_results}",
        "webhook deliver",
        "POST",
    }

    # Every batch that submitted anything made exactly one contacts write.
    assert checked_writes == sum(
        1 for value in results if json.loads(value)["counts"]["submitted"] > 0
    )

    # No span contains the input's contact data.
    for span in [*produce_spans, *worker_spans]:
        for text in _texts(span):
            digits = "".join(ch for ch in text if ch.isdigit())
            for value in RAW_VALUES:
                if "@" in value:
                    assert value not in text.lower(), (value, span.name)
                else:
                    assert value not in digits, (value, span.name)
