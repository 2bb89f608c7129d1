"""Conversion of Debezium change events for one configured table into contact events.

The service can read a Debezium topic in place of (or next to) the contact-events topic. Only
one table is accepted, and one of its columns contains the stable contact id. A create, update or
snapshot read (op c, u, r) becomes an upsert of the row after the change, and a delete (op d)
becomes a delete of the row before it.

Unlike `ContactEvent`, which rejects numbers in `fields`, row values here are converted to
strings: Debezium writes each column with its database type, so an integer id or a boolean
flag arrives as a JSON number or boolean, and the producer cannot be asked to change that.
Integers and decimals keep their exact digits, and booleans become "true" or "false". Objects
and arrays are rejected, because no single string represents them.

NOTE: Debezium's default ``decimal.handling.mode=precise`` writes DECIMAL columns as base64
bytes, and its default ``time.precision.mode`` writes dates as days since the epoch. Both arrive
here as plain strings or numbers and are imported as such. Configure the connector with
``decimal.handling.mode=string`` and convert dates in the source if they must read as dates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import ValidationError

from schemas.contact_event import ContactEvent
from schemas.debezium import DebeziumChangeEvent, DebeziumSource
from schemas.reason import Reason, Rule
from stream_app.errors import DecodeError
from stream_app.intake.schema_errors import json_type_name, reasons_from_validation_error

_SUPPORTED_OPS = frozenset({"c", "r", "u", "d"})
_SCHEMA_FILE = "schemas/json/debezium-change-event.schema.json"


@dataclass(frozen=True, slots=True)
class DebeziumOptions:
    """Settings for the accepted Debezium table and the conversion of its rows to events.

    `table` is the table name, optionally qualified by its schema or database
    (``contacts``, ``public.contacts``, ``crm.public.contacts``). `id_column` is the column
    with the stable contact id. `source` becomes `ContactEvent.source`, and `contact_list`
    becomes `ContactEvent.contact_list`, where None means the routing default. Construction
    raises ValueError for an empty table, id column or source name.
    """

    table: str
    id_column: str
    source: str = "debezium"
    contact_list: str | None = None

    def __post_init__(self) -> None:
        for name in ("table", "id_column", "source"):
            if not getattr(self, name).strip():
                raise ValueError(f"Debezium option {name} must not be empty")

    def accepts(self, source: DebeziumSource) -> bool:
        """Return whether a change from `source` belongs to the configured table."""
        qualifier, dot, table = self.table.rpartition(".")
        if table != source.table:
            return False
        if not dot:
            return True
        qualifiers = {source.db, source.schema_name, f"{source.db}.{source.schema_name}"}
        return qualifier in qualifiers


def is_debezium_envelope(document: Mapping[str, Any]) -> bool:
    """Return whether a decoded JSON object looks like a Debezium envelope, not a contact event.

    The test is an ``op`` key with a ``before`` or ``after`` key. A contact event has none of
    them, and its `source` is a string where Debezium's is an object.
    """
    return "op" in document and ("before" in document or "after" in document)


def event_from_debezium(
    document: Mapping[str, Any], options: DebeziumOptions | None
) -> ContactEvent:
    """Convert one unwrapped Debezium envelope into a contact event.

    The event id is derived from a hash of the whole envelope, so a change that Debezium
    delivers twice (after a connector restart) gets the same id and is dropped as a duplicate.
    `occurred_at` is ``source.ts_ms`` (when the database made the change), else ``ts_ms``.

    Raises:
        DecodeError: with one of these rules. debezium.not_configured: `options` is None.
            debezium.unsupported_op: the op is t (truncate) or m (message). decode.schema:
            the envelope does not match the schema or has no timestamp.
            debezium.other_table: the change is for another table. debezium.nested_value: a
            row value is an object or array. debezium.missing_id: the id column is missing
            or empty.
    """
    if options is None:
        raise DecodeError([_not_configured_reason()])

    op = document.get("op")
    if isinstance(op, str) and op not in _SUPPORTED_OPS:
        raise DecodeError([_unsupported_op_reason(op)])

    try:
        envelope = DebeziumChangeEvent.model_validate(document)
    except ValidationError as exc:
        reasons = reasons_from_validation_error(
            exc,
            model=DebeziumChangeEvent,
            message_name="Debezium change event",
            schema_file=_SCHEMA_FILE,
        )
        raise DecodeError(reasons) from exc

    if not options.accepts(envelope.source):
        raise DecodeError([_other_table_reason(envelope.source, options.table)])

    operation: Literal["upsert", "delete"] = "delete" if envelope.op == "d" else "upsert"
    row_key = "before" if envelope.op == "d" else "after"
    row = envelope.before if envelope.op == "d" else envelope.after
    fields = _fields_from_row(row or {}, row_key)

    contact_id = fields.get(options.id_column)
    if not contact_id:
        raise DecodeError([_missing_id_reason(row_key, options.id_column, row is None)])

    return ContactEvent(
        event_id=_event_id(document),
        source=options.source,
        operation=operation,
        contact_list=options.contact_list,
        contact_id=contact_id,
        fields=fields,
        occurred_at=_occurred_at(envelope),
    )


def _fields_from_row(row: Mapping[str, Any], row_key: str) -> dict[str, str | None]:
    fields: dict[str, str | None] = {}
    nested: list[Reason] = []
    for column, value in row.items():
        if value is None or isinstance(value, str):
            fields[column] = value
        elif isinstance(value, bool):
            fields[column] = "true" if value else "false"
        elif isinstance(value, int | Decimal | float):
            fields[column] = str(value)
        else:
            nested.append(_nested_value_reason(f"{row_key}.{column}", value))
    if nested:
        raise DecodeError(nested)
    return fields


def _event_id(document: Mapping[str, Any]) -> str:
    # Decimal values are written with str(), so the hash covers the exact digits of the message.
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return "debezium:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def _occurred_at(envelope: DebeziumChangeEvent) -> datetime:
    milliseconds = envelope.source.ts_ms if envelope.source.ts_ms is not None else envelope.ts_ms
    if milliseconds is None:
        reason = Reason(
            field="source.ts_ms",
            rule=Rule.DECODE_SCHEMA,
            message="Neither source.ts_ms nor ts_ms is set, so the change has no time.",
            fix="Send Debezium envelopes unchanged; Debezium sets both timestamps.",
        )
        raise DecodeError([reason])
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def _not_configured_reason() -> Reason:
    return Reason(
        field=None,
        rule=Rule.DEBEZIUM_NOT_CONFIGURED,
        message="The message is a Debezium change event, but no Debezium table is configured.",
        fix=(
            "Configure the Debezium table and id column in the service settings, or stop "
            "routing Debezium topics to this service."
        ),
    )


def _unsupported_op_reason(op: str) -> Reason:
    return Reason(
        field="op",
        value_masked=op,
        rule=Rule.DEBEZIUM_UNSUPPORTED_OP,
        message=(
            f"Debezium operation {op!r} is not supported; only c (create), r (read), "
            "u (update) and d (delete) change contacts."
        ),
        fix="Exclude truncate and message events from the connector (skipped.operations=t).",
    )


def _other_table_reason(source: DebeziumSource, configured_table: str) -> Reason:
    qualified = ".".join(part for part in (source.db, source.schema_name, source.table) if part)
    return Reason(
        field="source.table",
        value_masked=qualified,
        rule=Rule.DEBEZIUM_OTHER_TABLE,
        message=(
            f"The change is for table {qualified!r}, but only {configured_table!r} is accepted."
        ),
        fix=(
            "Route only the configured table's topic to this service, or change the "
            "configured Debezium table."
        ),
    )


def _missing_id_reason(row_key: str, id_column: str, row_missing: bool) -> Reason:
    if row_missing:
        message = f"The {row_key} row is null, so the id column {id_column!r} cannot be read."
    else:
        message = f"The {row_key} row has no value in the id column {id_column!r}."
    return Reason(
        field=f"{row_key}.{id_column}",
        rule=Rule.DEBEZIUM_MISSING_ID,
        message=message,
        fix=(
            "Check the configured id column. For deletes in PostgreSQL, the table needs "
            "REPLICA IDENTITY FULL or the id column in its primary key."
        ),
    )


def _nested_value_reason(field: str, value: Any) -> Reason:
    return Reason(
        field=field,
        rule=Rule.DEBEZIUM_NESTED_VALUE,
        message=(
            f"The column holds {json_type_name(value)}; only strings, numbers, booleans and "
            "null can become contact-list values."
        ),
        fix=(
            "Exclude the column from the connector (column.exclude.list) or have Debezium "
            "write it as a string."
        ),
    )
