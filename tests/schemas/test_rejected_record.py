import base64
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas.contact_event import ContactEvent
from schemas.reason import Reason, Rule
from schemas.rejected_record import RejectedRecord

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
REASON = Reason(field=None, rule=Rule.DECODE_NOT_JSON, message="The value is not JSON.", fix="f")


def _event() -> ContactEvent:
    return ContactEvent(
        event_id="evt-1",
        source="crm",
        operation="upsert",
        contact_id="010001",
        fields={"phone": "12"},
        occurred_at=NOW,
    )


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
