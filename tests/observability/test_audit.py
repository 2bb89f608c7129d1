"""The audit log's lines, masking and destinations, without Kafka."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from schemas.import_result import GenesysImport, ImportCounts, ImportResult, ImportTimings
from schemas.reason import Reason
from schemas.rejected_record import RejectedRecord
from stream_app.errors import ConfigurationError
from stream_app.observability import audit
from stream_app.observability.audit import AuditLog
from stream_app.settings import AuditSettings

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
BATCH_ID = "0b5a8f3e-4c1d-5e2f-9a7b-123456789012"
LIST_ID = "dd965bd6-f39d-4f86-8ff6-8e85db2a8bcf"


def import_result(*, submitted: int, failed: int, rejected: int = 0) -> ImportResult:
    return ImportResult(
        batch_id=BATCH_ID,
        contact_list=LIST_ID,
        contact_list_name="cms-hospitals",
        counts=ImportCounts(
            received=submitted + rejected,
            valid=submitted,
            rejected=rejected,
            duplicates=0,
            submitted=submitted,
            imported=submitted - failed,
            failed=failed,
        ),
        genesys=GenesysImport(method="contacts", request_ids=["req-1"]) if submitted else None,
        timings=ImportTimings(started_at=NOW, finished_at=NOW),
    )


def rejected_record(key: bytes, reason: Reason) -> RejectedRecord:
    return RejectedRecord.from_message(
        topic="contact-events",
        partition=2,
        offset=41,
        key=key,
        value=b'{"fields": {"phone": "(334) 793-8701"}}',
        reasons=[reason],
        stage="validation",
        rejected_at=NOW,
    )


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call (334) 793-8701 today", "call (***) ***-**01 today"),
        ("call 334.793.8701", "call ***.***.**01"),
        ("call +13347938701", "call +1********01"),
        ("write to Jane.Doe@Example.com", "write to J***@E***.com"),
        ("already +1********01 and j***@e***.com", "already +1********01 and j***@e***.com"),
        ("offsets 0-999 of partition 3", "offsets 0-999 of partition 3"),
    ],
)
def test_mask_contact_data(text: str, masked: str) -> None:
    assert audit.mask_contact_data(text) == masked


@pytest.mark.parametrize(
    ("identifier", "masked"),
    [
        ("010001", "010001"),
        ("550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-446655440000"),
        ("+13347938701", "+1********01"),
        ("334-793-8701", "***-***-**01"),
        ("jane.doe@example.com", "j***@e***.com"),
    ],
)
def test_mask_identifier(identifier: str, masked: str) -> None:
    assert audit.mask_identifier(identifier) == masked


def test_trace_id_of_current_span() -> None:
    context = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0x00F067AA0BA902B7,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )

    with trace.use_span(NonRecordingSpan(context)):
        inside = audit.current_trace_id()

    assert inside == "0af7651916cd43dd8448eb211c80319c"
    assert audit.current_trace_id() == ""


@pytest.mark.parametrize(
    ("traceparent", "trace_id"),
    [
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "0af7651916cd43dd8448eb211c80319c",
        ),
        ("00-00000000000000000000000000000000-b7ad6b7169203331-01", ""),
        ("not a traceparent", ""),
        (None, ""),
    ],
)
def test_trace_id_of_traceparent(traceparent: str | None, trace_id: str) -> None:
    assert audit.trace_id_of(traceparent) == trace_id


def test_batch_entry_of_failed_batch() -> None:
    reason = Reason(
        field=None,
        rule="genesys.rejected",
        message="Genesys Cloud rejected the write: contact +13347938701 is invalid",
        fix="Correct the record.",
    )

    entry = audit.batch_entry(
        import_result(submitted=3, failed=3),
        topic="contact-events",
        partition=1,
        first_offset=10,
        last_offset=12,
        failure_reasons=[reason, reason, reason],
        webhook_enabled=True,
        trace_id="0af7651916cd43dd8448eb211c80319c",
    )

    assert entry["type"] == "batch"
    assert entry["outcome"] == "failed"
    assert entry["counts"] == {
        "total": 3,
        "valid": 3,
        "imported": 0,
        "failed": 3,
        "rejected": 0,
        "duplicates": 0,
    }
    assert (entry["partition"], entry["first_offset"], entry["last_offset"]) == (1, 10, 12)
    assert entry["genesys"]["request_ids"] == ["req-1"]
    assert len(entry["reasons"]) == 1
    assert "3347938701" not in entry["reasons"][0]["message"]
    assert entry["webhook_id"] == BATCH_ID
    assert entry["trace_id"] == "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize(
    ("submitted", "failed", "rejected", "outcome"),
    [(2, 0, 0, "imported"), (2, 2, 0, "failed"), (2, 0, 1, "partial"), (0, 0, 2, "failed")],
)
def test_batch_outcome(submitted: int, failed: int, rejected: int, outcome: str) -> None:
    result = import_result(submitted=submitted, failed=failed, rejected=rejected)

    assert audit.batch_outcome(result) == outcome


def test_batch_entry_without_relay_has_no_webhook_id() -> None:
    entry = audit.batch_entry(
        import_result(submitted=1, failed=0),
        topic="contact-events",
        partition=0,
        first_offset=0,
        last_offset=0,
        failure_reasons=[],
        webhook_enabled=False,
        trace_id="",
    )

    assert entry["webhook_id"] is None
    assert entry["reasons"] == []


def test_rejection_entry_masks_contact_data() -> None:
    reason = Reason(
        field="phone",
        value_masked="(***) ***-**01",
        rule="phone.invalid",
        message="The number (334) 793-8701 is not in use.",
        fix="Correct the number.",
    )

    entry = audit.rejection_entry(
        rejected_record(b"jane.doe@example.com", reason),
        event_id="e-1",
        contact_id="jane.doe@example.com",
        trace_id="",
    )

    line = json.dumps(entry)
    assert "jane.doe@example.com" not in line
    assert "793-8701" not in line
    assert entry["contact_id"] == "j***@e***.com"
    assert entry["key"] == "j***@e***.com"
    assert (entry["partition"], entry["offset"], entry["stage"]) == (2, 41, "validation")
    assert entry["reasons"] == [
        {
            "rule": "phone.invalid",
            "field": "phone",
            "message": "The number (***) ***-**01 is not in use.",
            "value_masked": "(***) ***-**01",
        }
    ]


def test_webhook_entry_of_dead_lettered_delivery() -> None:
    entry = audit.webhook_entry(
        BATCH_ID,
        delivered=False,
        attempts=7,
        last_status=503,
        last_error="HTTP 503",
        trace_id="",
    )

    assert entry["type"] == "webhook"
    assert entry["delivered"] is False
    assert entry["attempts"] == 7
    assert entry["webhook_id"] == BATCH_ID


def test_file_destination_appends_flushed_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "audit.jsonl"
    path.parent.mkdir()
    path.write_text('{"type":"earlier"}\n', encoding="utf-8")
    log = AuditLog.from_settings(AuditSettings(destination="file", path=path), tmp_path)

    log.write({"type": "batch", "batch_id": "b-1"})
    written_before_close = path.read_text(encoding="utf-8")
    log.write({"type": "webhook", "batch_id": "b-1"})
    log.close()

    lines = path.read_text(encoding="utf-8").splitlines()
    assert written_before_close.splitlines()[-1] == '{"type":"batch","batch_id":"b-1"}'
    assert [json.loads(line)["type"] for line in lines] == ["earlier", "batch", "webhook"]


def test_file_destination_defaults_to_data_dir(tmp_path: Path) -> None:
    log = AuditLog.from_settings(AuditSettings(destination="file"), tmp_path / "data")

    log.write({"type": "batch"})
    log.close()

    assert (tmp_path / "data" / audit.AUDIT_FILE_NAME).read_text(encoding="utf-8") == (
        '{"type":"batch"}\n'
    )


def test_unwritable_audit_file_is_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")

    with pytest.raises(ConfigurationError, match="STREAM_APP_AUDIT__PATH"):
        AuditLog.from_settings(
            AuditSettings(destination="file", path=blocker / "audit.jsonl"), tmp_path
        )


def test_off_destination_writes_nothing(tmp_path: Path) -> None:
    log = AuditLog.from_settings(AuditSettings(destination="off"), tmp_path)

    log.write({"type": "batch"})

    assert not log.enabled
    assert list(tmp_path.iterdir()) == []


def test_stdout_destination_bypasses_redirected_stdout() -> None:
    # mode's worker replaces sys.stdout with a logging proxy; the audit log must not go there.
    script = (
        "import io, sys\n"
        "from pathlib import Path\n"
        "from stream_app.observability.audit import AuditLog\n"
        "from stream_app.settings import AuditSettings\n"
        "sys.stdout = io.StringIO()\n"
        "log = AuditLog.from_settings(AuditSettings(), Path('.'))\n"
        "log.write({'type': 'batch', 'batch_id': 'b-1'})\n"
    )

    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )

    assert completed.stdout == '{"type":"batch","batch_id":"b-1"}\n'
