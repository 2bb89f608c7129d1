import json
from typing import Any

import pytest

from schemas.contact_event import ContactEvent
from schemas.reason import Rule
from stream_app.errors import DecodeError, PermanentError
from stream_app.intake.decode import decode_message
from stream_app.settings import ValidationSettings

MAX_BYTES = 64 * 1024


def _event_json(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "event_id": "evt-1",
        "source": "crm",
        "operation": "upsert",
        "contact_list": "cms-hospitals",
        "contact_id": "010001",
        "fields": {"Phone Number": "3347938701", "Hospital Name": "O\u2019Brien Clinic"},
        "occurred_at": "2024-05-01T12:00:00Z",
    }
    data.update(overrides)
    return data


def _encode(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def _decode_error(value: bytes, max_bytes: int = MAX_BYTES) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decode_message(value, max_bytes=max_bytes, debezium=None)
    return caught.value


def test_decode_contact_event() -> None:
    event = decode_message(_encode(_event_json()), max_bytes=MAX_BYTES, debezium=None)

    assert isinstance(event, ContactEvent)
    assert event.contact_id == "010001"
    assert event.fields["Hospital Name"] == "O\u2019Brien Clinic"


def test_decode_tombstone_returns_none() -> None:
    assert decode_message(None, max_bytes=MAX_BYTES, debezium=None) is None


def test_decode_error_is_permanent() -> None:
    assert isinstance(_decode_error(b"{"), PermanentError)


def test_decode_value_at_limit_accepted() -> None:
    value = _encode(_event_json())

    assert decode_message(value, max_bytes=len(value), debezium=None) is not None


def test_decode_too_large_checked_before_parsing() -> None:
    # Invalid UTF-8 and invalid JSON, but the size is what gets reported.
    error = _decode_error(b"\xff" * 11, max_bytes=10)

    assert error.rule == Rule.DECODE_TOO_LARGE
    assert "11 bytes" in error.reasons[0].message
    assert "10 bytes" in error.reasons[0].message


def test_decode_invalid_utf8_names_offset() -> None:
    error = _decode_error(b'{"event_id": "caf\xe9"}')

    assert error.rule == Rule.DECODE_INVALID_UTF8
    assert "e9" in error.reasons[0].message
    assert "offset 17" in error.reasons[0].message


@pytest.mark.parametrize(
    ("value", "message_part"),
    [
        (b"{", "not JSON"),
        (b"", "empty"),
        (b"  \n ", "empty"),
        (b"event_id=1", "not JSON"),
        (b'{"a": NaN}', "NaN"),
        (b"Infinity", "Infinity"),
        (b'\xef\xbb\xbf{"a": "b"}', "BOM"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not usable JSON"),
    ],
)
def test_decode_not_json(value: bytes, message_part: str) -> None:
    error = _decode_error(value, max_bytes=1_000_000)

    assert error.rule == Rule.DECODE_NOT_JSON
    assert message_part in error.reasons[0].message


@pytest.mark.parametrize(
    ("value", "json_type"),
    [
        (b"[]", "an array"),
        (b'"text"', "a string"),
        (b"42", "a number"),
        (b"true", "a boolean"),
        (b"null", "null"),
    ],
)
def test_decode_not_object(value: bytes, json_type: str) -> None:
    error = _decode_error(value)

    assert error.rule == Rule.DECODE_NOT_OBJECT
    assert error.reasons[0].message == f"Expected a JSON object, got {json_type}."


def test_decode_duplicate_key() -> None:
    error = _decode_error(b'{"contact_id": "a", "contact_id": "b"}')

    assert error.rule == Rule.DECODE_DUPLICATE_KEY
    assert error.reasons[0].field == "contact_id"


def test_decode_number_in_fields_named() -> None:
    value = _encode(_event_json(fields={"Phone Number": 3347938701, "Name": "A"}))

    error = _decode_error(value)

    assert len(error.reasons) == 1
    reason = error.reasons[0]
    assert reason.rule == Rule.DECODE_SCHEMA
    assert reason.field == "fields.Phone Number"
    assert reason.message == "Expected a string, got a number."
    assert reason.value_masked == "3***(10)"
    assert "JSON string" in reason.fix


def test_decode_reports_every_schema_problem() -> None:
    document = _event_json(contact_id=7, operation="insert", colour="red")
    del document["occurred_at"]

    error = _decode_error(_encode(document))

    by_field = {reason.field: reason for reason in error.reasons}
    assert set(by_field) == {"contact_id", "operation", "colour", "occurred_at"}
    assert all(reason.rule == Rule.DECODE_SCHEMA for reason in error.reasons)
    assert by_field["contact_id"].message == "Expected a string, got a number."
    assert "missing" in by_field["occurred_at"].message
    assert "contact_list" in by_field["colour"].fix
    assert "'upsert' or 'delete'" in by_field["operation"].message


@pytest.mark.parametrize(
    ("occurred_at", "message_part"),
    [
        ("2024-05-01T12:00:00", "timezone"),
        (1714564800, "ISO 8601"),
        (1714564800.5, "ISO 8601"),
    ],
)
def test_decode_occurred_at_needs_iso_with_offset(occurred_at: Any, message_part: str) -> None:
    error = _decode_error(_encode(_event_json(occurred_at=occurred_at)))

    assert [reason.field for reason in error.reasons] == ["occurred_at"]
    assert message_part in error.reasons[0].message


def test_decode_nested_object_in_fields() -> None:
    error = _decode_error(_encode(_event_json(fields={"address": {"city": "Dothan"}})))

    assert error.reasons[0].field == "fields.address"
    assert error.reasons[0].message == "Expected a string, got an object."
    assert error.reasons[0].value_masked is None


def test_decode_never_echoes_full_phone() -> None:
    error = _decode_error(_encode(_event_json(fields={"phone": 13347938701})))

    assert "3347938701" not in str(error)
    assert all("3347938701" not in (reason.value_masked or "") for reason in error.reasons)


def test_decode_rejects_non_positive_limit() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        decode_message(b"{}", max_bytes=0, debezium=None)


FIVE_MB = 5 * 1024 * 1024


@pytest.mark.parametrize(
    ("value", "rule", "field", "message_part"),
    [
        pytest.param(b"hello, world", Rule.DECODE_NOT_JSON, None, "not JSON", id="not-json"),
        pytest.param(
            b'{"contact_id": "caf\xe9"}', Rule.DECODE_INVALID_UTF8, None, "e9", id="invalid-utf8"
        ),
        pytest.param(
            _encode(_event_json(contact_id=10001)),
            Rule.DECODE_SCHEMA,
            "contact_id",
            "Expected a string, got a number.",
            id="contact-id-number",
        ),
        pytest.param(
            _encode(_event_json(fields=["a", "b"])),
            Rule.DECODE_SCHEMA,
            "fields",
            "Expected an object, got an array.",
            id="fields-list",
        ),
        pytest.param(b"", Rule.DECODE_NOT_JSON, None, "empty", id="empty"),
        pytest.param(
            _encode([_event_json()]),
            Rule.DECODE_NOT_OBJECT,
            None,
            "got an array",
            id="json-array",
        ),
        pytest.param(
            b'{"a": ' * 100_000 + b"1" + b"}" * 100_000,
            Rule.DECODE_NOT_JSON,
            None,
            "nested too deeply",
            id="deeply-nested",
        ),
        pytest.param(
            b'{"contact_id": "' + b"x" * FIVE_MB + b'"}',
            Rule.DECODE_TOO_LARGE,
            None,
            f"{FIVE_MB + 18} bytes",
            id="five-mb",
        ),
    ],
)
def test_decode_poison_gives_one_reason(
    value: bytes, rule: Rule, field: str | None, message_part: str
) -> None:
    error = _decode_error(value, max_bytes=ValidationSettings().max_message_bytes)

    assert len(error.reasons) == 1
    reason = error.reasons[0]
    assert reason.rule == rule
    assert reason.field == field
    assert message_part in reason.message
    assert reason.fix


def test_decode_too_large_fix_names_setting() -> None:
    error = _decode_error(b"x" * 11, max_bytes=10)

    assert "STREAM_APP_VALIDATION__MAX_MESSAGE_BYTES" in error.reasons[0].fix


def test_decode_too_deep_fix_names_schema() -> None:
    error = _decode_error(b"[" * 100_000 + b"]" * 100_000, max_bytes=1_000_000)

    assert "schemas/json/contact-event.schema.json" in error.reasons[0].fix
