"""Large batches through the CSV upload, and an import that Genesys Cloud fails."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from local_stack.stack import LocalStack
from stream_app.demo import DEFAULT_INPUT
from stream_app.genesys.client import GenesysClient
from stream_app.mapping import load_mapping
from stream_app.produce import produce_file
from stream_app.settings import Settings
from stream_app.topics import ensure_topics
from tests.e2e.harness import TopicReader, start_worker, worker_env

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SLICE_ROWS = 200
COLUMNS = ["provider_id", "name", "phone"]


def _mapping_text(list_name: str) -> str:
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
phone = "Phone Number"
"""


def _results(reader: TopicReader, topic: str) -> dict[str, dict[str, Any]]:
    return {result["batch_id"]: result for result in reader.json_values(topic)}


def _received(results: dict[str, dict[str, Any]]) -> int:
    return sum(result["counts"]["received"] for result in results.values())


async def test_upload_batches_and_failed_import(local_stack: LocalStack, tmp_path: Path) -> None:
    lines = DEFAULT_INPUT.read_bytes().split(b"\n")
    cms_slice = tmp_path / "cms-slice.csv"
    cms_slice.write_bytes(b"\n".join(lines[: SLICE_ROWS + 1]) + b"\n")
    list_name = f"e2e-upload-{uuid.uuid4().hex[:8]}"
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(_mapping_text(list_name))
    env = worker_env(
        local_stack,
        tmp_path,
        mapping_file,
        STREAM_APP_GENESYS__UPLOAD_THRESHOLD="20",
        STREAM_APP_GENESYS__IMPORT_POLL_INTERVAL_SECONDS="0.2",
        STREAM_APP_TOPICS__PARTITIONS="2",
    )
    settings = Settings.from_environ(env)
    topics = settings.topics
    await ensure_topics(settings)
    async with GenesysClient(settings.genesys) as genesys:
        contact_list = await genesys.create_contact_list(list_name, COLUMNS, ["phone"])
    mapping = load_mapping(mapping_file)

    previous = local_stack.genesys.patch_settings(fail_imports=1)
    worker = start_worker(env, tmp_path)
    try:
        await produce_file(settings, cms_slice, mapping, "hospitals", show_progress=False)
        reader_topics = {
            topics.import_results: topics.partitions,
            topics.dead_letter: topics.partitions,
        }
        async with TopicReader(settings.kafka.bootstrap_servers, reader_topics) as reader:
            await reader.wait_until(
                lambda: _received(_results(reader, topics.import_results)) >= SLICE_ROWS,
                within=120,
                worker=worker,
            )
            first = _results(reader, topics.import_results)
            methods = {r["genesys"]["method"] for r in first.values() if r["genesys"]}
            failed = [r for r in first.values() if r["counts"]["failed"]]
            dead_letters = [
                d for d in reader.json_values(topics.dead_letter) if d["stage"] == "import"
            ]

            # Every batch went through the upload, and the one failed import was reported.
            assert methods == {"upload"}
            assert len(failed) == 1
            assert failed[0]["genesys"]["import_state"] == "FAILED"
            assert failed[0]["genesys"]["failure_reason"] == "INJECTED_FAILURE"
            assert failed[0]["genesys"]["upload_key"]
            failed_count = failed[0]["counts"]["failed"]

            # Each record of the failed import is dead-lettered with its original bytes.
            assert len(dead_letters) == failed_count
            for dead_letter in dead_letters:
                assert dead_letter["reasons"][0]["rule"] == "genesys.import_failed"
                event = json.loads(base64.b64decode(dead_letter["value_base64"]))
                assert event["contact_id"] == dead_letter["key"]

            imported = sum(r["counts"]["imported"] for r in first.values())
            assert len(local_stack.genesys.contacts(contact_list.id)) == imported

            # Producing the slice again imports exactly the records of the failed import.
            await produce_file(settings, cms_slice, mapping, "hospitals", show_progress=False)
            await reader.wait_until(
                lambda: _received(_results(reader, topics.import_results)) >= 2 * SLICE_ROWS,
                within=120,
                worker=worker,
            )
            second = {
                batch_id: r
                for batch_id, r in _results(reader, topics.import_results).items()
                if batch_id not in first
            }
            assert sum(r["counts"]["imported"] for r in second.values()) == failed_count
            assert sum(r["counts"]["duplicates"] for r in second.values()) == imported
            assert len(local_stack.genesys.contacts(contact_list.id)) == imported + failed_count
    finally:
        worker.stop()
        local_stack.genesys.patch_settings(**previous)
