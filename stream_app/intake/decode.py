"""Decoding of Kafka message values into contact events.

`decode_message` is the first step for every message read from the contact-events topic or a
Debezium topic. It turns bytes into a `ContactEvent`, or raises `DecodeError` with reasons
that go to the dead-letter topic. It does not route, map or validate the contact's fields;
those steps come after it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from schemas.contact_event import ContactEvent
from schemas.reason import Reason, Rule
from stream_app.errors import DecodeError
from stream_app.intake.debezium import DebeziumOptions, event_from_debezium, is_debezium_envelope
from stream_app.intake.schema_errors import json_type_name, reasons_from_validation_error

# DebeziumOptions is re-exported because it is part of decode_message's signature.
__all__ = ["DebeziumOptions", "decode_message"]

_CONTACT_EVENT_SCHEMA_FILE = "schemas/json/contact-event.schema.json"
_JSON_FIX = "Send one JSON object, encoded as UTF-8 without a byte-order mark."


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _NonStandardConstantError(ValueError):
    def __init__(self, constant: str) -> None:
        super().__init__(constant)
        self.constant = constant


def decode_message(
    value: bytes | None, *, max_bytes: int, debezium: DebeziumOptions | None
) -> ContactEvent | None:
    """Decode a Kafka message value into a contact event; return None for a tombstone.

    A tombstone is a null value, or a Debezium ``{"schema": ..., "payload": null}`` wrapper.
    A Debezium envelope, bare or wrapped, is recognised by its ``op`` and ``before``/``after``
    keys and converted with `debezium`. Anything else must be a contact event. The size is
    checked before parsing, so an oversized value costs no parsing time.

    JSON numbers are parsed as `Decimal`, so a Debezium decimal keeps its exact digits.

    Raises:
        DecodeError: the value is over `max_bytes` (decode.too_large), not UTF-8
            (decode.invalid_utf8), not JSON (decode.not_json), not a JSON object
            (decode.not_object), repeats a key (decode.duplicate_key), or fails the
            contact-event schema (decode.schema, one reason per problem). Debezium envelopes
            raise the errors listed on `event_from_debezium`. The record belongs on the
            dead-letter topic and its offset may be committed.
        ValueError: `max_bytes` is not positive.
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    if value is None:
        return None
    if len(value) > max_bytes:
        raise DecodeError([_too_large_reason(len(value), max_bytes)])

    document = _parse_json_object(value)

    if _is_schema_wrapper(document):
        payload = document["payload"]
        if payload is None:
            return None
        if not isinstance(payload, dict):
            raise DecodeError([_not_object_reason(payload, field="payload")])
        document = payload

    if is_debezium_envelope(document):
        return event_from_debezium(document, debezium)
    return _contact_event_from(document)


def _parse_json_object(value: bytes) -> dict[str, Any]:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError([_invalid_utf8_reason(exc)]) from exc

    if not text.strip():
        raise DecodeError([_not_json_reason("The message value is empty or only whitespace.")])

    try:
        document = json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_reject_constant,
            object_pairs_hook=_object_without_duplicate_keys,
        )
    except _DuplicateKeyError as exc:
        raise DecodeError([_duplicate_key_reason(exc.key)]) from exc
    except _NonStandardConstantError as exc:
        message = f"{exc.constant} is not a JSON value."
        raise DecodeError([_not_json_reason(message)]) from exc
    except json.JSONDecodeError as exc:
        raise DecodeError([_not_json_reason(f"The value is not JSON: {exc}.")]) from exc
    except RecursionError as exc:
        raise DecodeError([_too_deep_reason()]) from exc
    except ValueError as exc:
        # json.loads raises a plain ValueError for integers longer than Python's digit limit
        # (4300 digits by default, sys.set_int_max_str_digits).
        raise DecodeError([_not_json_reason(f"The value is not usable JSON: {exc}.")]) from exc

    if not isinstance(document, dict):
        raise DecodeError([_not_object_reason(document, field=None)])
    return document


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, item in pairs:
        if key in document:
            raise _DuplicateKeyError(key)
        document[key] = item
    return document


def _reject_constant(constant: str) -> Any:
    # Python's json module accepts NaN, Infinity and -Infinity by default; RFC 8259 does not.
    raise _NonStandardConstantError(constant)


def _is_schema_wrapper(document: dict[str, Any]) -> bool:
    # The JSON converter with schemas.enable=true wraps each value in exactly these two keys.
    return document.keys() == {"schema", "payload"}


def _contact_event_from(document: dict[str, Any]) -> ContactEvent:
    try:
        return ContactEvent.model_validate(document)
    except ValidationError as exc:
        reasons = reasons_from_validation_error(
            exc,
            model=ContactEvent,
            message_name="contact event",
            schema_file=_CONTACT_EVENT_SCHEMA_FILE,
        )
        raise DecodeError(reasons) from exc


def _too_large_reason(size: int, max_bytes: int) -> Reason:
    return Reason(
        field=None,
        rule=Rule.DECODE_TOO_LARGE,
        message=f"The message value is {size} bytes, over the limit of {max_bytes} bytes.",
        fix=(
            "Send one contact per message. If contacts really are this large, raise "
            "STREAM_APP_VALIDATION__MAX_MESSAGE_BYTES on the service."
        ),
    )


def _invalid_utf8_reason(exc: UnicodeDecodeError) -> Reason:
    offending = exc.object[exc.start : exc.end].hex(" ")
    return Reason(
        field=None,
        rule=Rule.DECODE_INVALID_UTF8,
        message=f"The value is not valid UTF-8: byte(s) {offending} at offset {exc.start}.",
        fix=(
            "Encode the message value as UTF-8. Text exported from Windows programs is "
            "often Windows-1252 and must be converted first."
        ),
    )


def _not_json_reason(message: str) -> Reason:
    return Reason(field=None, rule=Rule.DECODE_NOT_JSON, message=message, fix=_JSON_FIX)


def _too_deep_reason() -> Reason:
    # Python's json module parses nested arrays and objects recursively, so it stops at the
    # interpreter's recursion limit (about 1000 levels by default).
    return Reason(
        field=None,
        rule=Rule.DECODE_NOT_JSON,
        message="The JSON value is nested too deeply to parse.",
        fix=(
            f"Send a flat contact event as {_CONTACT_EVENT_SCHEMA_FILE} describes; its field "
            "values are strings, not nested arrays or objects."
        ),
    )


def _not_object_reason(document: Any, *, field: str | None) -> Reason:
    return Reason(
        field=field,
        rule=Rule.DECODE_NOT_OBJECT,
        message=f"Expected a JSON object, got {json_type_name(document)}.",
        fix=f"Send one JSON object per message, as {_CONTACT_EVENT_SCHEMA_FILE} describes.",
    )


def _duplicate_key_reason(key: str) -> Reason:
    return Reason(
        field=key,
        rule=Rule.DECODE_DUPLICATE_KEY,
        message="The key appears twice in one JSON object, so its value is ambiguous.",
        fix="Send each key once per object.",
    )
