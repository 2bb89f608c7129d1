import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.contact_event import ContactEvent
from schemas.reason import Reason, Rule
from schemas.rejected_record import (
    MAX_REASONS,
    MAX_RECORD_BYTES,
    MAX_TEXT_CHARS,
    MAX_VALUE_BYTES,
    RejectedRecord,
)

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
REASON = Reason(field=None, rule=Rule.DECODE_NOT_JSON, message="The value is not JSON.", fix="f")


def _event(fields: dict[str, str | None] | None = None) -> ContactEvent:
    return ContactEvent(
        event_id="evt-1",
        source="crm",
        operation="upsert",
        contact_id="010001",
        fields={"phone": "12"} if fields is None else fields,
        occurred_at=NOW,
    )


def _decode_rejection(value: bytes, **overrides: Any) -> RejectedRecord:
    arguments: dict[str, Any] = {
        "topic": "contact-events",
        "partition": 2,
        "offset": 99,
        "key": b"010001",
        "value": value,
        "reasons": [REASON],
        "stage": "decode",
        "rejected_at": NOW,
    }
    arguments.update(overrides)
    return RejectedRecord.from_message(**arguments)


def test_from_message_keeps_undecoded_value() -> None:
    value = b"\xff\xfenot json"

    record = RejectedRecord.from_message(
        topic="contact-events",
        partition=3,
        offset=42,
        key=b"010001",
        value=value,
        reasons=[REASON],
        stage="decode",
        rejected_at=NOW,
    )

    assert record.value_base64 == base64.b64encode(value).decode("ascii")
    assert record.original_value() == value
    assert record.key == "010001"
    assert record.event is None


def test_from_message_with_event_drops_bytes() -> None:
    record = RejectedRecord.from_message(
        topic="contact-events",
        partition=0,
        offset=1,
        key=None,
        value=b"{}",
        reasons=[REASON],
        stage="validation",
        rejected_at=NOW,
        event=_event(),
        contact_list="cms-hospitals",
    )

    assert record.value_base64 is None
    assert record.original_value() is None
    assert record.event == _event()
    assert record.contact_list == "cms-hospitals"


def test_from_message_replaces_invalid_key_bytes() -> None:
    record = RejectedRecord.from_message(
        topic="t",
        partition=0,
        offset=0,
        key=b"id-\xff",
        value=b"x",
        reasons=[REASON],
        stage="decode",
        rejected_at=NOW,
    )

    assert record.key == "id-\ufffd"


def test_rejected_record_needs_reasons() -> None:
    with pytest.raises(ValidationError):
        RejectedRecord(
            rejected_at=NOW,
            stage="decode",
            topic="t",
            partition=0,
            offset=0,
            value_base64="eA==",
            reasons=[],
        )


def test_rejected_record_needs_payload() -> None:
    with pytest.raises(ValidationError, match="value_base64 or event"):
        RejectedRecord(
            rejected_at=NOW, stage="decode", topic="t", partition=0, offset=0, reasons=[REASON]
        )


def test_rejected_record_rejects_negative_offset() -> None:
    with pytest.raises(ValidationError):
        RejectedRecord(
            rejected_at=NOW,
            stage="decode",
            topic="t",
            partition=0,
            offset=-1,
            value_base64="eA==",
            reasons=[REASON],
        )


def test_rejected_record_json_round_trip() -> None:
    record = RejectedRecord.from_message(
        topic="contact-events",
        partition=1,
        offset=7,
        key=b"k",
        value=b"v",
        reasons=[REASON],
        stage="validation",
        rejected_at=NOW,
        event=_event(),
    )

    assert RejectedRecord.model_validate_json(record.model_dump_json()) == record


def test_rejected_record_ignores_unknown_keys() -> None:
    record = RejectedRecord.model_validate(
        {
            "rejected_at": "2024-05-01T12:00:00Z",
            "stage": "decode",
            "topic": "t",
            "partition": 0,
            "offset": 0,
            "value_base64": "eA==",
            "reasons": [REASON.model_dump()],
            "added_in_a_later_version": True,
        }
    )

    assert record.original_value() == b"x"


def test_from_message_records_size_and_hash() -> None:
    value = b'{"contact_id": 1}'

    record = _decode_rejection(value)

    assert record.value_truncated is False
    assert record.value_size == len(value)
    assert record.value_sha256 == hashlib.sha256(value).hexdigest()
    assert record.original_value() == value


def test_from_message_keeps_value_at_limit_whole() -> None:
    value = b"x" * MAX_VALUE_BYTES

    record = _decode_rejection(value)

    assert record.value_truncated is False
    assert record.original_value() == value


def test_from_message_truncates_five_mb_value() -> None:
    value = bytes(range(256)) * (5 * 1024 * 4)

    record = _decode_rejection(value)

    assert record.value_truncated is True
    assert record.value_size == 5 * 1024 * 1024
    assert record.value_sha256 == hashlib.sha256(value).hexdigest()
    assert record.value_base64 is not None
    assert base64.b64decode(record.value_base64) == value[:MAX_VALUE_BYTES]
    assert record.original_value() is None
    assert (record.topic, record.partition, record.offset) == ("contact-events", 2, 99)
    assert record.json_size() <= MAX_RECORD_BYTES


def test_truncated_record_json_round_trip() -> None:
    record = _decode_rejection(b"y" * (MAX_VALUE_BYTES + 1))

    assert RejectedRecord.model_validate_json(record.model_dump_json()) == record


def test_from_message_caps_reason_count() -> None:
    reasons = [
        Reason(field=f"fields.f{i}", rule=Rule.DECODE_SCHEMA, message="m", fix="f")
        for i in range(5000)
    ]

    record = _decode_rejection(b"{}", reasons=reasons)

    assert len(record.reasons) == MAX_REASONS
    assert record.reasons[0].field == "fields.f0"
    assert record.reasons_omitted == 5000 - MAX_REASONS


def test_from_message_cuts_long_texts() -> None:
    long_key = "k" * 5000
    reason = Reason(field=long_key, rule=Rule.DECODE_SCHEMA, message="m", fix="f")

    record = _decode_rejection(b"{}", key=long_key.encode(), reasons=[reason])

    assert record.key is not None
    assert len(record.key) == MAX_TEXT_CHARS
    assert record.key.endswith("\u2026")
    assert record.reasons[0].field == "k" * (MAX_TEXT_CHARS - 1) + "\u2026"
    assert record.reasons[0].message == "m"


def test_from_message_worst_case_fits() -> None:
    # Control characters are escaped as \uXXXX, six bytes of JSON per character.
    text = "\x01" * 100_000
    reasons = [
        Reason(field=text, value_masked=text, rule=Rule.DECODE_SCHEMA, message=text, fix=text)
        for _ in range(MAX_REASONS * 2)
    ]

    record = _decode_rejection(
        b"\x01" * (5 * 1024 * 1024),
        key=text.encode(),
        contact_list=text,
        reasons=reasons,
    )

    assert record.json_size() <= MAX_RECORD_BYTES
    assert len(record.reasons) >= 1
    assert len(record.reasons) + record.reasons_omitted == MAX_REASONS * 2
    assert record.value_truncated is True


def test_from_message_replaces_oversized_event_with_value() -> None:
    fields: dict[str, str | None] = {f"column{i}": "\x01" * 1000 for i in range(200)}
    event = _event(fields)
    value = json.dumps(event.model_dump(mode="json")).encode()

    record = _decode_rejection(value, stage="routing", event=event)

    assert record.event is None
    assert record.value_size == len(value)
    assert record.json_size() <= MAX_RECORD_BYTES


def test_truncated_value_needs_size_and_hash() -> None:
    with pytest.raises(ValidationError, match="value_size and value_sha256"):
        RejectedRecord(
            rejected_at=NOW,
            stage="decode",
            topic="t",
            partition=0,
            offset=0,
            value_base64="eA==",
            value_truncated=True,
            reasons=[REASON],
        )
