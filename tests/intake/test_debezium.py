import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.reason import Rule
from stream_app.errors import DecodeError
from stream_app.intake.debezium import DebeziumOptions
from stream_app.intake.decode import decode_message

MAX_BYTES = 64 * 1024
OPTIONS = DebeziumOptions(table="public.contacts", id_column="id", source="crm-db")
ROW = {
    "id": 42,
    "name": "O\u2019Brien Clinic",
    "phone": "3347938701",
    "active": True,
    "rating": "__RATING__",
    "notes": None,
}


def _envelope(op: str = "c", **overrides: Any) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "before": None,
        "after": copy.deepcopy(ROW),
        "source": {
            "version": "2.7.0.Final",
            "connector": "postgresql",
            "name": "crm",
            "ts_ms": 1714564800000,
            "snapshot": "false",
            "db": "crm",
            "schema": "public",
            "table": "contacts",
            "txId": 501,
            "lsn": 24023128,
        },
        "op": op,
        "ts_ms": 1714564800123,
        "transaction": None,
    }
    if op == "d":
        envelope["before"], envelope["after"] = envelope["after"], None
    envelope.update(overrides)
    return envelope


def _wrapped(payload: dict[str, Any] | None) -> dict[str, Any]:
    schema = {"type": "struct", "name": "crm.public.contacts.Envelope", "optional": False}
    return {"schema": schema, "payload": payload}


def _encode(document: Any) -> bytes:
    # Python floats lose trailing zeros, so the decimal 4.50 is put into the JSON text directly,
    # as Debezium writes it.
    return json.dumps(document).replace('"__RATING__"', "4.50").encode("utf-8")


def _decode(document: Any, options: DebeziumOptions | None = OPTIONS) -> Any:
    return decode_message(_encode(document), max_bytes=MAX_BYTES, debezium=options)


def _decode_error(document: Any, options: DebeziumOptions | None = OPTIONS) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        _decode(document, options)
    return caught.value


@pytest.mark.parametrize("op", ["c", "r", "u"])
@pytest.mark.parametrize("wrap", [False, True])
def test_debezium_upsert_uses_after(op: str, wrap: bool) -> None:
    envelope = _envelope(op)
    if op == "u":
        envelope["before"] = {**ROW, "phone": "2055550100"}

    event = _decode(_wrapped(envelope) if wrap else envelope)

    assert event.operation == "upsert"
    assert event.contact_id == "42"
    assert event.fields["phone"] == "3347938701"
    assert event.source == "crm-db"
    assert event.contact_list is None


@pytest.mark.parametrize("wrap", [False, True])
def test_debezium_delete_uses_before(wrap: bool) -> None:
    envelope = _envelope("d")

    event = _decode(_wrapped(envelope) if wrap else envelope)

    assert event.operation == "delete"
    assert event.contact_id == "42"
    assert event.fields["name"] == "O\u2019Brien Clinic"


def test_debezium_typed_values_become_strings() -> None:
    event = _decode(_envelope())

    assert event.fields["id"] == "42"
    assert event.fields["active"] == "true"
    assert event.fields["rating"] == "4.50"
    assert event.fields["notes"] is None


def test_debezium_occurred_at_from_source() -> None:
    event = _decode(_envelope())

    assert event.occurred_at == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_debezium_occurred_at_falls_back_to_envelope() -> None:
    envelope = _envelope()
    del envelope["source"]["ts_ms"]

    event = _decode(envelope)

    assert event.occurred_at == datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


def test_debezium_without_any_time_rejected() -> None:
    envelope = _envelope()
    del envelope["source"]["ts_ms"]
    del envelope["ts_ms"]

    error = _decode_error(envelope)

    assert error.rule == Rule.DECODE_SCHEMA
    assert error.reasons[0].field == "source.ts_ms"


def test_debezium_event_id_stable_under_redelivery() -> None:
    first = _decode(_envelope())
    again = _decode(_envelope())
    later = _decode(_envelope(source={**_envelope()["source"], "lsn": 24023999}))

    assert first.event_id == again.event_id
    assert first.event_id != later.event_id
    assert first.event_id.startswith("debezium:")


def test_debezium_event_id_same_with_wrapper() -> None:
    assert _decode(_envelope()).event_id == _decode(_wrapped(_envelope())).event_id


def test_debezium_wrapped_tombstone_returns_none() -> None:
    assert _decode(_wrapped(None)) is None


def test_debezium_kafka_tombstone_returns_none() -> None:
    assert decode_message(None, max_bytes=MAX_BYTES, debezium=OPTIONS) is None


def test_debezium_contact_list_from_options() -> None:
    options = DebeziumOptions(table="contacts", id_column="id", contact_list="cms-hospitals")

    event = _decode(_envelope(), options)

    assert event.contact_list == "cms-hospitals"
    assert event.source == "debezium"


@pytest.mark.parametrize(
    "table", ["contacts", "public.contacts", "crm.contacts", "crm.public.contacts"]
)
def test_debezium_table_qualifiers_accepted(table: str) -> None:
    event = _decode(_envelope(), DebeziumOptions(table=table, id_column="id"))

    assert event.contact_id == "42"


@pytest.mark.parametrize("table", ["accounts", "sales.contacts", "other.public.contacts"])
def test_debezium_other_table_rejected(table: str) -> None:
    error = _decode_error(_envelope(), DebeziumOptions(table=table, id_column="id"))

    assert error.rule == Rule.DEBEZIUM_OTHER_TABLE
    assert "crm.public.contacts" in error.reasons[0].message
    assert repr(table) in error.reasons[0].message


def test_debezium_not_configured_rejected() -> None:
    error = _decode_error(_envelope(), options=None)

    assert error.rule == Rule.DEBEZIUM_NOT_CONFIGURED


@pytest.mark.parametrize("op", ["t", "m"])
def test_debezium_unsupported_op_rejected(op: str) -> None:
    error = _decode_error(_envelope(op))

    assert error.rule == Rule.DEBEZIUM_UNSUPPORTED_OP
    assert error.reasons[0].field == "op"


def test_debezium_nested_values_all_reported() -> None:
    envelope = _envelope()
    envelope["after"]["address"] = {"city": "Dothan"}
    envelope["after"]["tags"] = ["a", "b"]

    error = _decode_error(envelope)

    assert [reason.rule for reason in error.reasons] == [Rule.DEBEZIUM_NESTED_VALUE] * 2
    assert [reason.field for reason in error.reasons] == ["after.address", "after.tags"]


@pytest.mark.parametrize("id_value", [None, ""])
def test_debezium_empty_id_rejected(id_value: Any) -> None:
    envelope = _envelope()
    envelope["after"]["id"] = id_value

    error = _decode_error(envelope)

    assert error.rule == Rule.DEBEZIUM_MISSING_ID
    assert error.reasons[0].field == "after.id"


def test_debezium_delete_without_before_rejected() -> None:
    envelope = _envelope("d")
    envelope["before"] = None

    error = _decode_error(envelope)

    assert error.rule == Rule.DEBEZIUM_MISSING_ID
    assert "null" in error.reasons[0].message


def test_debezium_envelope_without_source_rejected() -> None:
    envelope = _envelope()
    del envelope["source"]

    error = _decode_error(envelope)

    assert error.rule == Rule.DECODE_SCHEMA
    assert error.reasons[0].field == "source"


def test_debezium_wrapper_payload_not_object() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_message(b'{"schema": {}, "payload": [1]}', max_bytes=MAX_BYTES, debezium=OPTIONS)

    assert caught.value.rule == Rule.DECODE_NOT_OBJECT
    assert caught.value.reasons[0].field == "payload"


@pytest.mark.parametrize("field", ["table", "id_column", "source"])
def test_debezium_options_reject_empty(field: str) -> None:
    values = {"table": "contacts", "id_column": "id", "source": "db", field: " "}

    with pytest.raises(ValueError, match=field):
        DebeziumOptions(**values)
