"""The `stream-app` command line: user mistakes end in one clear line, not a traceback."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from local_stack.stack import LocalStack
from stream_app.cli import main
from stream_app.demo import DEFAULT_MAPPING


def test_produce_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file.csv"

    code = main(["produce", str(missing), "--mapping", str(DEFAULT_MAPPING)])

    err = capsys.readouterr().err
    assert code == 2
    assert f"stream-app produce: error: input file {missing} not found" in err
    assert "Traceback" not in err


def test_produce_mapping_typo_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[lists.people]\nid_colum = "id"\nphone_region = "US"\n')
    data = tmp_path / "people.csv"
    data.write_text("id,phone\n1,3347938701\n")

    code = main(["produce", str(data), "--mapping", str(mapping)])

    err = capsys.readouterr().err
    assert code == 2
    assert "id_colum" in err
    assert "Traceback" not in err


def test_worker_without_mapping_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STREAM_APP_MAPPING_FILE", raising=False)
    # An address nothing listens on: the mapping check must come before any Kafka call.
    monkeypatch.setenv("STREAM_APP_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")

    code = main(["worker"])

    err = capsys.readouterr().err
    assert code == 2
    assert "a mapping file is required; set STREAM_APP_MAPPING_FILE" in err


def test_invalid_setting_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_APP_LOG_LEVEL", "LOUD")

    code = main(["dead-letters"])

    err = capsys.readouterr().err
    assert code == 2
    assert "LOUD" in err


def test_invalid_setting_one_line_per_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_APP_WEB_PORT", "abc")

    code = main(["dead-letters"])

    err_lines = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err_lines == [
        "stream-app dead-letters: error: invalid STREAM_APP_WEB_PORT='abc': Input should be a "
        "valid integer, unable to parse string as an integer; fix or unset STREAM_APP_WEB_PORT"
    ]

    monkeypatch.setenv("STREAM_APP_BATCH__MAX_RECORDS", "-1")

    code = main(["dead-letters"])

    err_lines = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(err_lines) == 2
    assert "STREAM_APP_WEB_PORT='abc'" in err_lines[0]
    assert "STREAM_APP_BATCH__MAX_RECORDS='-1'" in err_lines[1]
    assert all(line.startswith("stream-app dead-letters: error: invalid ") for line in err_lines)
    assert all("pydantic.dev" not in line for line in err_lines)


@pytest.mark.integration
def test_create_list_then_found(
    local_stack: LocalStack,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name, value in local_stack.env().items():
        monkeypatch.setenv(name, value)
    list_name = f"cli-{uuid.uuid4().hex[:8]}"
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        DEFAULT_MAPPING.read_text().replace(
            'contact_list = "cms-hospitals"\nid_column', f'contact_list = "{list_name}"\nid_column'
        )
    )

    first = main(["create-list", "--mapping", str(mapping)])
    first_out = capsys.readouterr().out
    second = main(["create-list", "--mapping", str(mapping)])
    second_out = capsys.readouterr().out

    assert first == 0
    assert f"Created contact list {list_name!r}" in first_out
    assert "provider_id, name, address" in first_out
    assert second == 0
    assert f"Found existing contact list {list_name!r}" in second_out


@pytest.mark.integration
def test_dead_letters_hides_payload(
    local_stack: LocalStack,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in local_stack.env().items():
        monkeypatch.setenv(name, value)
    topic = f"cli-dead-letter-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("STREAM_APP_TOPICS__DEAD_LETTER", topic)
    record = {
        "stage": "validation",
        "partition": 0,
        "offset": 7,
        "key": "p-1",
        "value_base64": "eyJwaG9uZSI6ICIrMTMzNDc5Mzg3MDEifQ==",
        "reasons": [{"field": "phone", "rule": "phone.letters", "value_masked": "+1********01"}],
    }

    async def publish() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=local_stack.kafka.bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(topic, json.dumps(record).encode(), key=b"p-1")
        finally:
            await producer.stop()

    asyncio.run(publish())
    code = main(["dead-letters", "--idle", "2"])
    captured = capsys.readouterr()
    printed = [json.loads(line) for line in captured.out.splitlines()]

    assert code == 0
    assert len(printed) == 1
    assert printed[0]["reasons"] == record["reasons"]
    assert "value_base64" not in printed[0]
    assert f"1 records in {topic}" in captured.err
