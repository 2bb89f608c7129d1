"""The pure steps of `stream-app webhook-resend`: envelopes, bodies, filters and commit offsets."""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.import_result import ImportCounts, ImportResult, ImportTimings, RecordOutcome
from stream_app.cli import main
from stream_app.settings import KafkaSettings
from stream_app.webhook import DeliveryOutcome
from stream_app.webhook_resend import (
    DeadLetterEnvelope,
    InvalidEnvelopeError,
    ResendFilter,
    ResendProgress,
    ResendSummary,
    Status,
    kafka_client_options,
    parse_envelope,
    parse_time,
    result_body,
)

BATCH_ID = "2f8c1a52-8d1e-5b7a-9f3e-1c0a7e2b4d61"
FAILED_AT = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
DELIVERED = DeliveryOutcome(delivered=True, attempts=1, last_status=204, last_error=None)
FAILED = DeliveryOutcome(delivered=False, attempts=4, last_status=503, last_error="HTTP 503")


def import_result(batch_id: str = BATCH_ID, name: str = "Hôpital São José") -> ImportResult:
    return ImportResult(
        batch_id=batch_id,
        contact_list="0b1f6a52-3c8e-4d2a-9f1e-7a6b5c4d3e2f",
        contact_list_name=name,
        counts=ImportCounts(
            received=1, valid=1, rejected=0, duplicates=0, submitted=1, imported=1, failed=0
        ),
        timings=ImportTimings(started_at=FAILED_AT - timedelta(seconds=5), finished_at=FAILED_AT),
        records=[
            RecordOutcome(
                source_id=name,
                event_id="e-1",
                genesys_contact_id=name,
                operation="upsert",
                outcome="accepted",
            )
        ],
    )


def relay_envelope(body: str, failed_at: str | None = FAILED_AT.isoformat()) -> bytes:
    """Return the envelope the relay agent (stream_app/worker/app.py) writes for a failed `body`."""
    return json.dumps(
        {
            "batch_id": json.loads(body).get("batch_id", ""),
            "attempts": 12,
            "last_status": 503,
            "last_error": "HTTP 503",
            "failed_at": failed_at,
            "result": json.loads(body),
        }
    ).encode()


def envelope(batch_id: str) -> DeadLetterEnvelope:
    return DeadLetterEnvelope(batch_id=batch_id, body="{}", failed_at=FAILED_AT)


# parse_envelope and result_body


def test_envelope_body_is_original_result() -> None:
    body = import_result().model_dump_json()

    parsed = parse_envelope(relay_envelope(body))

    assert parsed.batch_id == BATCH_ID
    assert parsed.body == body
    assert parsed.failed_at == FAILED_AT


@given(name=st.text(), batch_id=st.text(min_size=1))
def test_result_body_matches_pydantic_bytes(name: str, batch_id: str) -> None:
    body = import_result(batch_id=batch_id, name=name).model_dump_json()

    assert parse_envelope(relay_envelope(body)).body == body


def test_result_body_compact_unescaped() -> None:
    assert result_body({"b": "é\n", "a": [1, None]}) == '{"b":"é\\n","a":[1,null]}'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "the message has no value"),
        (b"not json", "the value is not JSON"),
        (b"\xff\xfe\xfd", "the value is not JSON"),
        (b"[1, 2]", "the value is not a JSON object"),
        (b'{"result": {"batch_id": "b-1"}}', "batch_id is missing or empty"),
        (b'{"batch_id": "", "result": {"batch_id": ""}}', "batch_id is missing or empty"),
        (b'{"batch_id": 7, "result": {"batch_id": 7}}', "batch_id is missing or empty"),
        (b'{"batch_id": "b-1"}', "result is missing or not a JSON object"),
        (b'{"batch_id": "b-1", "result": "{}"}', "result is missing or not a JSON object"),
        (b'{"batch_id": "b-1", "result": {"batch_id": "b-2"}}', "differs from batch_id 'b-1'"),
        (b'{"batch_id": "b-1", "result": {}}', "result.batch_id None differs"),
    ],
    ids=[
        "no-value",
        "not-json",
        "not-utf8",
        "array",
        "no-batch-id",
        "empty-batch-id",
        "number-batch-id",
        "no-result",
        "string-result",
        "other-batch-id",
        "result-without-batch-id",
    ],
)
def test_invalid_envelope_rejected(value: bytes | None, message: str) -> None:
    with pytest.raises(InvalidEnvelopeError, match=message):
        parse_envelope(value)


@pytest.mark.parametrize(
    ("failed_at", "expected"),
    [
        (None, None),
        ("last tuesday", None),
        ("2025-03-01T12:00:00", FAILED_AT),
        ("2025-03-01T14:00:00+02:00", FAILED_AT),
    ],
    ids=["missing", "unreadable", "naive-is-utc", "offset"],
)
def test_envelope_failed_at(failed_at: str | None, expected: datetime | None) -> None:
    body = import_result().model_dump_json()

    parsed = parse_envelope(relay_envelope(body, failed_at=failed_at))

    assert parsed.failed_at == expected


# parse_time and ResendFilter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T12:00:00Z", FAILED_AT),
        ("2025-03-01T07:00:00-05:00", FAILED_AT),
        ("2025-03-01T12:00:00", FAILED_AT),
        ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),
    ],
    ids=["z", "offset", "naive", "date"],
)
def test_parse_time(text: str, expected: datetime) -> None:
    parsed = parse_time(text)

    assert parsed == expected
    assert parsed.tzinfo is not None


def test_parse_time_rejects_text() -> None:
    with pytest.raises(ValueError, match="yesterday"):
        parse_time("yesterday")


def test_default_filter_selects_all() -> None:
    assert ResendFilter().exclusion_reason("b-1", FAILED_AT) is None


def test_filter_by_batch_ids() -> None:
    resend_filter = ResendFilter(batch_ids=frozenset({"b-1", "b-2"}))

    assert resend_filter.exclusion_reason("b-1", FAILED_AT) is None
    assert resend_filter.exclusion_reason("b-2", FAILED_AT) is None
    assert resend_filter.exclusion_reason("b-3", FAILED_AT) == "not one of the --batch-id values"


def test_filter_since_includes_boundary() -> None:
    since = datetime(2025, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    resend_filter = ResendFilter(since=since)

    assert resend_filter.exclusion_reason("b-1", FAILED_AT) is None
    assert resend_filter.exclusion_reason("b-1", FAILED_AT + timedelta(days=1)) is None
    reason = resend_filter.exclusion_reason("b-1", FAILED_AT - timedelta(seconds=1))
    assert reason == "failed at 2025-03-01T11:59:59+00:00, before --since"


def test_filter_since_and_batch_ids() -> None:
    resend_filter = ResendFilter(since=FAILED_AT, batch_ids=frozenset({"b-1"}))

    assert resend_filter.exclusion_reason("b-1", FAILED_AT) is None
    assert resend_filter.exclusion_reason("b-2", FAILED_AT) is not None
    assert resend_filter.exclusion_reason("b-1", FAILED_AT - timedelta(hours=1)) is not None


# ResendProgress


def test_progress_commits_each_delivery() -> None:
    progress = ResendProgress({0: 10}, ResendFilter())

    assert progress.commit_offset(0) == 10
    first = progress.record_delivery(0, 10, "b-1", DELIVERED)
    assert progress.commit_offset(0) == 11
    progress.record_delivery(0, 11, "b-2", DELIVERED)
    assert progress.commit_offset(0) == 12

    assert first.status is Status.DELIVERED
    assert first.detail == "HTTP 204 after 1 attempt"
    assert first.format() == "delivered b-1 (partition 0, offset 10): HTTP 204 after 1 attempt"


def test_progress_failure_blocks_commit() -> None:
    progress = ResendProgress({0: 0}, ResendFilter())

    progress.record_delivery(0, 0, "b-1", DELIVERED)
    failed = progress.record_delivery(0, 1, "b-2", FAILED)
    progress.record_delivery(0, 2, "b-3", DELIVERED)
    progress.record_invalid(0, 3, "the value is not JSON")

    assert failed.status is Status.FAILED
    assert failed.detail == "HTTP 503 after 4 attempts"
    assert progress.commit_offset(0) == 1


def test_progress_repeat_of_delivered_commits() -> None:
    progress = ResendProgress({0: 0}, ResendFilter())
    progress.record_delivery(0, 0, "b-1", DELIVERED)

    skipped = progress.check_skip(0, 1, envelope("b-1"), FAILED_AT)

    assert skipped is not None
    assert skipped.status is Status.SKIPPED
    assert skipped.detail == "delivered earlier in this run"
    assert progress.commit_offset(0) == 2


def test_progress_repeat_of_failed_blocks() -> None:
    progress = ResendProgress({0: 0}, ResendFilter())
    progress.record_delivery(0, 0, "b-1", FAILED)

    skipped = progress.check_skip(0, 1, envelope("b-1"), FAILED_AT)

    assert skipped is not None
    assert skipped.status is Status.SKIPPED
    assert skipped.detail == "failed earlier in this run"
    assert progress.commit_offset(0) == 0


def test_progress_filtered_message_blocks() -> None:
    progress = ResendProgress({0: 0}, ResendFilter(batch_ids=frozenset({"b-2"})))

    skipped = progress.check_skip(0, 0, envelope("b-1"), FAILED_AT)
    selected = progress.check_skip(0, 1, envelope("b-2"), FAILED_AT)
    progress.record_delivery(0, 1, "b-2", DELIVERED)

    assert skipped is not None
    assert skipped.detail == "not one of the --batch-id values"
    assert selected is None
    assert progress.commit_offset(0) == 0


def test_progress_invalid_message_commits() -> None:
    progress = ResendProgress({0: 5}, ResendFilter())

    report = progress.record_invalid(0, 5, "the value is not JSON")

    assert report.status is Status.INVALID
    assert report.batch_id is None
    assert report.format() == "invalid   - (partition 0, offset 5): the value is not JSON"
    assert progress.commit_offset(0) == 6


def test_progress_partitions_independent() -> None:
    progress = ResendProgress({0: 0, 1: 7}, ResendFilter())

    progress.record_delivery(0, 0, "b-1", FAILED)
    progress.record_delivery(1, 7, "b-2", DELIVERED)
    progress.record_delivery(0, 1, "b-3", DELIVERED)

    assert progress.commit_offset(0) == 0
    assert progress.commit_offset(1) == 8


def test_progress_summary_counts() -> None:
    progress = ResendProgress({0: 0}, ResendFilter())
    progress.record_delivery(0, 0, "b-1", DELIVERED)
    progress.check_skip(0, 1, envelope("b-1"), FAILED_AT)
    progress.record_delivery(0, 2, "b-2", FAILED)
    progress.record_invalid(0, 3, "the message has no value")

    summary = progress.summary("topic-1", "group-1", remaining=2)

    assert summary.as_dict() == {
        "topic": "topic-1",
        "group": "group-1",
        "read": 4,
        "delivered": 1,
        "failed": 1,
        "skipped": 1,
        "invalid": 1,
        "remaining": 2,
    }
    assert not summary.complete
    assert summary.format() == (
        "topic-1 (group group-1): 4 read, 1 delivered, 1 failed, 1 skipped, 1 invalid, 2 remaining"
    )


@pytest.mark.parametrize(
    ("failed", "invalid", "remaining", "complete"),
    [(0, 0, 0, True), (1, 0, 0, False), (0, 1, 0, False), (0, 0, 3, False)],
    ids=["clean", "failed", "invalid", "remaining"],
)
def test_summary_complete(failed: int, invalid: int, remaining: int, complete: bool) -> None:
    summary = ResendSummary(
        topic="t",
        group="g",
        read=5,
        delivered=5 - failed - invalid,
        failed=failed,
        skipped=0,
        invalid=invalid,
        remaining=remaining,
    )

    assert summary.complete is complete


# kafka_client_options


def test_kafka_options_plaintext() -> None:
    options = kafka_client_options(KafkaSettings(bootstrap_servers="127.0.0.1:9092,127.0.0.1:9093"))

    assert options == {
        "bootstrap_servers": "127.0.0.1:9092,127.0.0.1:9093",
        "security_protocol": "PLAINTEXT",
    }


def test_kafka_options_sasl_scram() -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="resend",
        sasl_password="s3cret",
    )

    options = kafka_client_options(kafka)

    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "resend"
    assert options["sasl_plain_password"] == "s3cret"
    assert "ssl_context" not in options


def test_kafka_options_sasl_ssl() -> None:
    kafka = KafkaSettings(security_protocol="SASL_SSL", sasl_username="resend")

    options = kafka_client_options(kafka)

    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert options["sasl_mechanism"] == "PLAIN"
    assert options["sasl_plain_password"] is None


def test_kafka_options_missing_cafile(tmp_path: Path) -> None:
    kafka = KafkaSettings(security_protocol="SSL", ssl_cafile=tmp_path / "missing-ca.pem")

    with pytest.raises(FileNotFoundError):
        kafka_client_options(kafka)


# The command line, without services


def test_cli_invalid_since_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["webhook-resend", "--since", "yesterday"])

    assert exit_info.value.code == 2
    assert "argument --since: invalid time 'yesterday'" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan"])
def test_cli_invalid_retry_seconds_exits_2(capsys: pytest.CaptureFixture[str], value: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["webhook-resend", "--retry-seconds", value])

    assert exit_info.value.code == 2
    assert f"argument --retry-seconds: invalid seconds {value!r}" in capsys.readouterr().err


def test_cli_without_webhook_url_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_APP_WEBHOOK__URL", "")
    # An address nothing listens on: the URL check must come before any Kafka call.
    monkeypatch.setenv("STREAM_APP_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.delenv("STREAM_APP_WEBHOOK_URL", raising=False)

    code = main(["webhook-resend"])

    err = capsys.readouterr().err
    assert code == 2
    assert "stream-app webhook-resend: error: WebhookSender needs a URL" in err
    assert "Traceback" not in err


def test_cli_kafka_unreachable_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_APP_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")

    code = main(["webhook-resend"])

    err = capsys.readouterr().err
    assert code == 2
    assert "stream-app webhook-resend: error: cannot connect to Kafka at 127.0.0.1:1" in err
    assert "Traceback" not in err
