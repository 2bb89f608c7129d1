"""GET /metrics of a worker child process: the counters match what the run processed.

The input is a slice of the CMS hospital file, plus its first rows again (duplicates) and rows
with invalid phone numbers. Expected counts come from the input and from the import results
on Kafka, never from the worker's own metrics code.
"""

from __future__ import annotations

import asyncio
import csv
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import phonenumbers
import pytest
from prometheus_client.parser import text_string_to_metric_families

from local_stack.process import ManagedProcess
from local_stack.stack import LocalStack
from stream_app.csv_codec import read_source_file
from stream_app.demo import DEFAULT_INPUT
from stream_app.genesys.client import GenesysClient
from stream_app.mapping import load_mapping
from stream_app.produce import produce_file
from stream_app.settings import Settings
from stream_app.topics import ensure_topics
from tests.e2e.harness import TopicReader, start_worker, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SLICE_ROWS = 120
REPEATED_ROWS = 15  # the slice's first rows published a second time, unchanged
# Phone numbers that are not valid US numbers: exchange 000, and an area code starting with 0.
INVALID_PHONES = ["9100000000", "0936933841", "2120001234"]
COLUMNS = ["provider_id", "name", "city", "phone"]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _mapping(list_name: str) -> str:
    return f"""
[defaults]
contact_list = "hospitals"
phone_region = "US"

[lists.hospitals]
contact_list = "{list_name}"
id_column = "provider_id"

[lists.hospitals.columns]
provider_id = "Provider ID"
name = "Hospital Name"
city = "City"
phone = "Phone Number"
"""


def _input_file(tmp_path: Path) -> tuple[Path, int]:
    """Write the input CSV (UTF-8) and return it with the number of invalid phones in it."""
    rows = list(read_source_file(DEFAULT_INPUT))[:SLICE_ROWS]
    invalid = [
        {**rows[index], "Provider ID": f"bad-{index}", "Phone Number": phone}
        for index, phone in enumerate(INVALID_PHONES)
    ]
    path = tmp_path / "hospitals.csv"
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([*rows, *invalid, *rows[:REPEATED_ROWS]])
    invalid_in_slice = sum(1 for row in rows if not _valid_us_phone(row["Phone Number"] or ""))
    return path, len(INVALID_PHONES) + invalid_in_slice


def _valid_us_phone(phone: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(phone, "US"))
    except phonenumbers.NumberParseException:
        return False


def _samples(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    """Return the sum of the samples of `name` whose labels include `labels`."""
    return sum(
        value
        for (sample_name, sample_labels), value in samples.items()
        if sample_name == name and set(labels.items()) <= set(sample_labels)
    )


def _series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for sample_name, labels in samples if sample_name == name]


async def _scrape(port: int) -> tuple[httpx.Response, Samples]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    return response, _samples(response.text)


async def _scrape_until(
    port: int, ready: Callable[[Samples], bool], worker: ManagedProcess
) -> Samples:
    deadline = time.monotonic() + 60
    samples: Samples = {}
    while time.monotonic() < deadline:
        _, samples = await _scrape(port)
        if ready(samples):
            return samples
        assert worker.is_running(), f"the worker exited; log tail:\n{worker.log_tail(60)}"
        await asyncio.sleep(0.5)
    return samples


async def test_metrics_match_processed_records(local_stack: LocalStack, tmp_path: Path) -> None:
    list_name = f"metrics-hospitals-{uuid.uuid4().hex[:8]}"
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(_mapping(list_name))
    input_file, invalid_phones = _input_file(tmp_path)
    env = worker_env(local_stack, tmp_path, mapping_file, OTEL_TRACES_EXPORTER="none")
    env.pop("OTEL_SDK_DISABLED", None)
    port = int(env["STREAM_APP_WEB_PORT"])
    settings = Settings.from_environ(env)
    topics = settings.topics
    await ensure_topics(settings)
    async with GenesysClient(settings.genesys) as genesys:
        contact_list = await genesys.create_contact_list(list_name, COLUMNS, ["phone"])

    worker = start_worker(env, tmp_path)
    try:
        produced = await produce_file(
            settings, input_file, load_mapping(mapping_file), "hospitals", show_progress=False
        )
        total = produced.produced
        assert total == SLICE_ROWS + len(INVALID_PHONES) + REPEATED_ROWS

        reader_topics = {topics.import_results: topics.partitions}
        async with TopicReader(settings.kafka.bootstrap_servers, reader_topics) as reader:
            await reader.wait_until(
                lambda: (
                    sum(r["counts"]["received"] for r in reader.json_values(topics.import_results))
                    >= total
                ),
                within=120,
                worker=worker,
            )
        results = {r["batch_id"]: r for r in reader.json_values(topics.import_results)}
        assert sum(r["counts"]["received"] for r in results.values()) == total

        samples = await _scrape_until(
            port,
            lambda s: (
                _value(s, "stream_app_webhook_deliveries_total", outcome="delivered")
                >= len(results)
                and _series(s, "stream_app_consumer_lag")
                and _value(s, "stream_app_consumer_lag") == 0
            ),
            worker,
        )
        response, _ = await _scrape(port)
    finally:
        worker.stop()

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")

    def counted(name: str) -> int:
        return sum(result["counts"][name] for result in results.values())

    # Records: every produced record in, invalid phones rejected, the repeats duplicates.
    assert _value(samples, "stream_app_records_in_total", topic=topics.contact_events) == total
    assert _value(samples, "stream_app_records_rejected_total", rule="phone.invalid") == (
        invalid_phones
    )
    assert _value(samples, "stream_app_records_rejected_total") == counted("rejected")
    assert _value(samples, "stream_app_records_duplicates_total") == REPEATED_ROWS
    assert _value(samples, "stream_app_records_duplicates_total") == counted("duplicates")
    accepted = total - invalid_phones - REPEATED_ROWS
    assert _value(samples, "stream_app_records_valid_total") == accepted
    assert counted("imported") == accepted

    # Batches: one per import result, sized by the records they received.
    assert _value(samples, "stream_app_batches_total") == len(results)
    partial = sum(
        1 for r in results.values() if r["counts"]["rejected"] and r["counts"]["imported"]
    )
    clean = sum(1 for r in results.values() if not r["counts"]["rejected"])
    assert _value(samples, "stream_app_batches_total", outcome="partial") == partial
    assert _value(samples, "stream_app_batches_total", outcome="imported") == clean
    assert _value(samples, "stream_app_batch_size_count") == len(results)
    assert _value(samples, "stream_app_batch_size_sum") == total
    assert _value(samples, "stream_app_event_to_acceptance_duration_seconds_count") == accepted
    assert _value(samples, "stream_app_event_to_acceptance_duration_seconds_sum") > 0

    # Genesys Cloud calls: as many contacts writes as the emulator logged for this list.
    writes_path = f"/api/v2/outbound/contactlists/{contact_list.id}/contacts"
    logged = [
        request
        for request in local_stack.genesys.requests_log()
        if request["method"] == "POST" and request["path"] == writes_path
    ]
    assert logged
    assert _value(
        samples,
        "stream_app_genesys_calls_total",
        operation="contacts.add",
        http_request_method="POST",
        http_response_status_code="200",
    ) == sum(1 for request in logged if request["status"] == 200)
    assert _value(samples, "stream_app_genesys_calls_total", operation="oauth.token") >= 1

    # Gauges: the limiter's headroom within its limit, and a lag series per partition read.
    limit = int(settings.genesys.requests_per_minute * settings.genesys.rate_limit_headroom)
    headroom = _value(samples, "stream_app_genesys_rate_limit_headroom")
    assert _series(samples, "stream_app_genesys_rate_limit_headroom")
    assert 0 <= headroom <= limit
    lag_series = _series(samples, "stream_app_consumer_lag")
    assert {series["topic"] for series in lag_series} == {topics.contact_events}
    assert len(lag_series) <= topics.partitions
    assert _value(samples, "stream_app_consumer_lag") == 0

    # Webhook: one delivery per result, as the CRM received them.
    delivered = {
        d["webhook_id"] for d in local_stack.crm.deliveries() if d["webhook_id"] in results
    }
    assert delivered == set(results)
    assert _value(samples, "stream_app_webhook_deliveries_total", outcome="delivered") == len(
        results
    )
    assert _value(samples, "stream_app_webhook_deliveries_total", outcome="dead_lettered") == 0
