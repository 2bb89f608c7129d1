"""Rules for ContactList bodies and contact writes, as the Platform API documents them.

Sources: the SDK models (required fields, enums), the Resource Center (50 columns per list, 128
characters per column name, 512 per value, case-insensitive column names) and the Terraform
provider (at least one phone, email or WhatsApp column). Each violation raises a 400 bad.request
ApiError whose message names the field. Rules the public record leaves open follow EmulatorSettings.
"""

from __future__ import annotations

import logging
import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from local_stack.genesys_emulator.errors import bad_request
from local_stack.genesys_emulator.settings import EmulatorSettings
from local_stack.genesys_emulator.state import HOME_DIVISION_ID, ContactList, ContactWrite

logger = logging.getLogger(__name__)

MAX_COLUMNS = 50
MAX_COLUMN_NAME_LENGTH = 128
COLUMN_DATA_TYPES = frozenset({"NUMERIC", "TEXT", "TIMESTAMP", "DATETIME"})
LIST_RETENTION_TYPES = frozenset({"Never", "Today", "RetentionDays"})
CONTACT_RETENTION_TYPES = frozenset({"Never", "Today", "RetentionDays", "DateExpiration"})
# DialerContact fields a client may set that the emulator stores and returns unchanged.
CONTACT_PASSTHROUGH_FIELDS = (
    "latestSmsEvaluations",
    "latestEmailEvaluations",
    "latestWhatsAppEvaluations",
    "retentionType",
    "retentionDays",
    "dateExpiration",
)


@dataclass
class ContactListFields:
    """A validated ContactList body."""

    name: str
    column_names: list[str]
    phone_columns: list[dict[str, Any]]
    # Other ContactList fields, in their JSON names, to store and return.
    fields: dict[str, Any]
    version: int | None


def parse_contact_list(body: Any) -> ContactListFields:
    """Validate a ContactList body of POST or PUT /contactlists; raise 400 on the first violation."""
    if not isinstance(body, dict):
        raise bad_request("The contact list must be a JSON object.")

    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        # The SDK marks name optional, but the UI requires it, and so does the emulator.
        raise bad_request("name is required and must be a non-empty string.")

    columns = _parse_column_names(body.get("columnNames"))
    fields: dict[str, Any] = {}
    phone_columns = _parse_address_columns(body, "phoneColumns", "callableTimeColumn", columns)
    for key in ("emailColumns", "whatsAppColumns"):
        parsed = _parse_address_columns(body, key, "contactableTimeColumn", columns)
        if key in body:
            fields[key] = parsed
    if not phone_columns and not fields.get("emailColumns") and not fields.get("whatsAppColumns"):
        raise bad_request("A contact list needs at least one phone, email or WhatsApp column.")

    fields.update(_parse_optional_list_fields(body, columns, phone_columns))

    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise bad_request(f"version must be an integer, got {version!r}.")
    return ContactListFields(name.strip(), columns, phone_columns, fields, version)


def _parse_column_names(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise bad_request("columnNames is required and must be a non-empty array of strings.")
    if len(value) > MAX_COLUMNS:
        raise bad_request(f"A contact list has at most {MAX_COLUMNS} columns, got {len(value)}.")

    seen: set[str] = set()
    for name in value:
        if not isinstance(name, str) or not name:
            raise bad_request(f"Each column name must be a non-empty string, got {name!r}.")
        if len(name) > MAX_COLUMN_NAME_LENGTH:
            raise bad_request(
                f"The column name {name[:40]!r}... is longer than {MAX_COLUMN_NAME_LENGTH} characters."
            )
        if "\\" in name:
            raise bad_request(f"The column name {name!r} contains a backslash.")
        if name.casefold() in seen:
            raise bad_request(f"The column name {name!r} appears twice (names ignore case).")
        seen.add(name.casefold())
    return list(value)


def _parse_address_columns(
    body: dict[str, Any], key: str, time_column_key: str, columns: list[str]
) -> list[dict[str, Any]]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"{key} must be an array.")

    parsed: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict):
            raise bad_request(f"Each entry of {key} must be a JSON object.")
        column = item.get("columnName")
        if not isinstance(column, str) or column not in columns:
            raise bad_request(f"{key}.columnName must be one of columnNames, got {column!r}.")
        column_type = item.get("type")
        if not isinstance(column_type, str) or not column_type:
            raise bad_request(f"{key}.type is required for the column {column!r}.")
        entry: dict[str, Any] = {"columnName": column, "type": column_type}
        time_column = item.get(time_column_key)
        if time_column is not None:
            if not isinstance(time_column, str) or time_column not in columns:
                raise bad_request(f"{key}.{time_column_key} must be one of columnNames.")
            entry[time_column_key] = time_column
        parsed.append(entry)
    return parsed


def _parse_optional_list_fields(
    body: dict[str, Any], columns: list[str], phone_columns: list[dict[str, Any]]
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    fields["trimWhitespace"] = _optional_bool(body, "trimWhitespace", default=True)

    automatic_mapping = _optional_bool(body, "automaticTimeZoneMapping", default=False)
    if "automaticTimeZoneMapping" in body:
        fields["automaticTimeZoneMapping"] = automatic_mapping
    if automatic_mapping and any("callableTimeColumn" in column for column in phone_columns):
        raise bad_request("callableTimeColumn is not allowed with automaticTimeZoneMapping.")

    zip_column = body.get("zipCodeColumnName")
    if zip_column is not None:
        if not automatic_mapping:
            raise bad_request("zipCodeColumnName needs automaticTimeZoneMapping set to true.")
        fields["zipCodeColumnName"] = _column_reference(zip_column, "zipCodeColumnName", columns)

    preview_column = body.get("previewModeColumnName")
    if preview_column is not None:
        fields["previewModeColumnName"] = _column_reference(
            preview_column, "previewModeColumnName", columns
        )
    accepted = body.get("previewModeAcceptedValues")
    if accepted is not None:
        if not isinstance(accepted, list) or not all(isinstance(item, str) for item in accepted):
            raise bad_request("previewModeAcceptedValues must be an array of strings.")
        fields["previewModeAcceptedValues"] = list(accepted)

    attempt_limits = body.get("attemptLimits")
    if attempt_limits is not None:
        if not isinstance(attempt_limits, dict) or not isinstance(attempt_limits.get("id"), str):
            raise bad_request("attemptLimits must be an object with an id.")
        fields["attemptLimits"] = {"id": attempt_limits["id"]}

    specifications = body.get("columnDataTypeSpecifications")
    if specifications is not None:
        fields["columnDataTypeSpecifications"] = _parse_data_types(specifications, columns)

    fields.update(_parse_list_retention(body))
    _check_division(body.get("division"))
    return fields


def _parse_data_types(value: Any, columns: list[str]) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise bad_request("columnDataTypeSpecifications must be an array.")
    parsed: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict):
            raise bad_request("Each columnDataTypeSpecifications entry must be an object.")
        column = _column_reference(item.get("columnName"), "columnName", columns)
        data_type = item.get("columnDataType")
        if data_type not in COLUMN_DATA_TYPES:
            raise bad_request(
                f"columnDataType must be one of {sorted(COLUMN_DATA_TYPES)}, got {data_type!r}."
            )
        entry: dict[str, Any] = {"columnName": column, "columnDataType": data_type}
        for key in ("min", "max", "maxLength"):
            number = item.get(key)
            if number is not None:
                if isinstance(number, bool) or not isinstance(number, int):
                    raise bad_request(f"columnDataTypeSpecifications.{key} must be an integer.")
                entry[key] = number
        parsed.append(entry)
    return parsed


def _parse_list_retention(body: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    retention_type = body.get("retentionType")
    if retention_type is not None:
        if retention_type not in LIST_RETENTION_TYPES:
            raise bad_request(
                f"retentionType must be one of {sorted(LIST_RETENTION_TYPES)}, "
                f"got {retention_type!r}."
            )
        fields["retentionType"] = retention_type
    retention_days = body.get("retentionDays")
    if retention_days is not None:
        if isinstance(retention_days, bool) or not isinstance(retention_days, int):
            raise bad_request("retentionDays must be an integer.")
        fields["retentionDays"] = retention_days
    if retention_type == "RetentionDays" and retention_days is None:
        raise bad_request("retentionDays is required when retentionType is RetentionDays.")

    date_expiration = body.get("dateExpiration")
    if date_expiration is not None:
        fields["dateExpiration"] = _iso_datetime(date_expiration, "dateExpiration")
    time_zone = body.get("timeZone")
    if time_zone is not None:
        if not isinstance(time_zone, str):
            raise bad_request("timeZone must be an IANA time zone name.")
        try:
            zoneinfo.ZoneInfo(time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise bad_request(f"timeZone {time_zone!r} is not an IANA time zone name.") from None
        fields["timeZone"] = time_zone
    return fields


def _check_division(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise bad_request("division must be an object with an id.")
    division_id = value.get("id")
    if division_id is not None and division_id != HOME_DIVISION_ID:
        raise bad_request(
            f"The division {division_id!r} does not exist; the emulator has only the Home "
            f"division {HOME_DIVISION_ID}. Omit division to use it."
        )


def _optional_bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_request(f"{key} must be true or false, got {value!r}.")
    return value


def _column_reference(value: Any, key: str, columns: list[str]) -> str:
    if not isinstance(value, str) or value not in columns:
        raise bad_request(f"{key} must be one of columnNames, got {value!r}.")
    return value


def _iso_datetime(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{key} must be an ISO-8601 date-time string.")
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{key} must be an ISO-8601 date-time string, got {value!r}.") from None
    return value


def fit_value(value: str, settings: EmulatorSettings) -> str | None:
    """Return a column value within max_value_length, truncated if so set; None means reject."""
    if len(value) <= settings.max_value_length:
        return value
    if settings.long_values == "truncate":
        return value[: settings.max_value_length]
    return None


def parse_contact_write(
    item: Any,
    position: int,
    contact_list: ContactList,
    settings: EmulatorSettings,
    contact_id: str,
) -> ContactWrite:
    """Validate one WritableDialerContact for `contact_list`; raise 400 naming `position`.

    `contact_id` is the id to use when the body has none (a new UUID, or the path's id).
    """
    where = f"Contact {position}"
    if not isinstance(item, dict):
        raise bad_request(f"{where} must be a JSON object.")

    list_id = item.get("contactListId")
    if list_id != contact_list.id:
        raise bad_request(
            f"{where}: contactListId is required and must be {contact_list.id}, got {list_id!r}."
        )

    body_id = item.get("id")
    if body_id is not None:
        if not isinstance(body_id, str) or not body_id.strip():
            raise bad_request(f"{where}: id must be a non-empty string, got {body_id!r}.")
        contact_id = body_id

    write = ContactWrite(
        contact_id=contact_id, data=_parse_data(item, where, contact_list, settings)
    )
    write.callable = _contact_bool(item, "callable", where)
    write.phone_number_status = _contact_object(item, "phoneNumberStatus", where)
    write.contactable_status = _contact_object(item, "contactableStatus", where)
    for key in CONTACT_PASSTHROUGH_FIELDS:
        if item.get(key) is not None:
            write.extra[key] = item[key]
    retention_type = write.extra.get("retentionType")
    if retention_type is not None and retention_type not in CONTACT_RETENTION_TYPES:
        raise bad_request(
            f"{where}: retentionType must be one of {sorted(CONTACT_RETENTION_TYPES)}, "
            f"got {retention_type!r}."
        )
    return write


def _parse_data(
    item: dict[str, Any], where: str, contact_list: ContactList, settings: EmulatorSettings
) -> dict[str, str]:
    data = item.get("data")
    if not isinstance(data, dict):
        raise bad_request(f"{where}: data is required and must be an object of strings.")

    columns = contact_list.column_by_folded_name()
    normalised: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str):
            raise bad_request(f"{where}: the value of {key!r} must be a string, got {value!r}.")
        # Column names match without regard to case and take the list's spelling, as the
        # Resource Center describes for appended files.
        column = columns.get(key.casefold())
        if column is None:
            if settings.unknown_data_keys == "ignore":
                continue
            raise bad_request(
                f"{where}: data key {key!r} is not a column of the contact list "
                f"{contact_list.id}; columns are {contact_list.column_names}."
            )
        if column in normalised:
            raise bad_request(f"{where}: data has the column {column!r} twice (names ignore case).")
        fitted = fit_value(value, settings)
        if fitted is None:
            raise bad_request(
                f"{where}: the value of {key!r} has {len(value)} characters; "
                f"the maximum is {settings.max_value_length}."
            )
        normalised[column] = fitted
    return normalised


def _contact_bool(item: dict[str, Any], key: str, where: str) -> bool | None:
    value = item.get(key)
    if value is not None and not isinstance(value, bool):
        raise bad_request(f"{where}: {key} must be true or false, got {value!r}.")
    return value


def _contact_object(item: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = item.get(key)
    if value is not None and not isinstance(value, dict):
        raise bad_request(f"{where}: {key} must be an object.")
    return value
