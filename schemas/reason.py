"""Why a record was rejected: the reason model and the stable rule codes.

One `Reason` definition serves the dead-letter record, the per-record outcome in the import
result and the CRM webhook body, so a consumer parses reasons the same way everywhere.

Rule codes are a stable machine interface: consumers switch on them, so a code is never renamed
or reused for another meaning. New codes may be added, which is why `Reason.rule` is a plain
string in the JSON Schema and not an enum.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Rule(StrEnum):
    """The rule codes that this service emits in `Reason.rule`."""

    # The Kafka message value as a whole.
    DECODE_TOO_LARGE = "decode.too_large"
    DECODE_INVALID_UTF8 = "decode.invalid_utf8"
    DECODE_NOT_JSON = "decode.not_json"
    DECODE_NOT_OBJECT = "decode.not_object"
    DECODE_DUPLICATE_KEY = "decode.duplicate_key"
    DECODE_SCHEMA = "decode.schema"

    # Debezium change events.
    DEBEZIUM_NOT_CONFIGURED = "debezium.not_configured"
    DEBEZIUM_OTHER_TABLE = "debezium.other_table"
    DEBEZIUM_UNSUPPORTED_OP = "debezium.unsupported_op"
    DEBEZIUM_MISSING_ID = "debezium.missing_id"
    DEBEZIUM_NESTED_VALUE = "debezium.nested_value"

    # Routing an event to a contact list.
    CONTACT_LIST_MISSING = "contact_list.missing"
    CONTACT_LIST_UNKNOWN = "contact_list.unknown"

    # Field mapping and list columns.
    FIELD_MISSING = "field.missing"
    COLUMN_UNKNOWN = "column.unknown"
    COLUMN_NAME_TOO_LONG = "column.name_too_long"
    COLUMN_NAME_INVALID = "column.name_invalid"
    COLUMN_DUPLICATE = "column.duplicate"
    COLUMNS_TOO_MANY = "columns.too_many"
    ID_MISSING = "id.missing"

    # Single values.
    VALUE_TOO_LONG = "value.too_long"
    VALUE_NEWLINE = "value.newline"
    VALUE_ENCODING = "value.encoding"
    PHONE_LETTERS = "phone.letters"
    PHONE_INVALID = "phone.invalid"
    EMAIL_INVALID = "email.invalid"

    # The contact as a whole.
    CONTACT_NO_CHANNEL = "contact.no_channel"


class Reason(BaseModel):
    """One reason why a record was rejected, safe to log and to send to the CRM.

    `value_masked` must never contain a full phone number or e-mail address, so build it
    with `stream_app.masking`. `message` describes the problem without repeating the field name, so
    read it together with `field`.
    """

    model_config = ConfigDict(frozen=True)

    field: str | None = Field(
        description=(
            "The contact-list column, source field or JSON path that failed; "
            "null when the reason concerns the whole message."
        ),
    )
    value_masked: str | None = Field(
        default=None,
        description="The offending value, masked; null when there is no single value.",
    )
    rule: str = Field(
        pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$",
        description="Stable machine code of the rule, such as phone.invalid.",
        examples=["phone.invalid", "value.too_long", "decode.not_json"],
    )
    message: str = Field(description="What is wrong, in one or two sentences.")
    fix: str = Field(description="What the sender can change so that the record is accepted.")
