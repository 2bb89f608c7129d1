"""Validation of one mapped contact against its Genesys Cloud contact list.

`validate_contact` is the pure step between field mapping and batching. It cleans every
column value, normalises phone numbers to E.164 and e-mail addresses to their normal form, and
returns either the row to import or every reason why the contact cannot be imported. It does
not look up the contact list, deduplicate or batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from schemas.reason import Reason, Rule
from stream_app.errors import ConfigurationError
from stream_app.masking import ValueKind, mask_text, mask_value
from stream_app.validation.contact_list import ContactListSchema
from stream_app.validation.email_address import normalize_email
from stream_app.validation.phone import check_region, normalize_phone
from stream_app.validation.problems import ValueProblem
from stream_app.validation.text import NewlinePolicy, clean_text


@dataclass(frozen=True, slots=True)
class ValidationOptions:
    """Per-list settings of validation.

    `phone_region` is the region for phone numbers written without a country code, as an ISO
    3166-1 alpha-2 code. `id_column`, when set, names the column that must hold the stable
    contact id. Construction raises ValueError for an unknown region or newline policy.
    """

    phone_region: str
    newline_policy: NewlinePolicy = "reject"
    id_column: str | None = None

    def __post_init__(self) -> None:
        check_region(self.phone_region)
        if self.newline_policy not in ("reject", "replace"):
            raise ValueError(
                f"unknown newline policy {self.newline_policy!r}; expected reject or replace"
            )


@dataclass(frozen=True, slots=True)
class ValidContact:
    """A contact ready to import: every list column, in list order, with a string value.

    A column without a value contains the empty string. Phone columns contain E.164 numbers,
    and e-mail columns contain normalised addresses.
    """

    data: dict[str, str]


def validate_contact(
    mapped_fields: Mapping[str, str | None],
    schema: ContactListSchema,
    options: ValidationOptions,
) -> ValidContact | list[Reason]:
    """Validate a mapped contact; return the cleaned row or every reason to reject it.

    `mapped_fields` maps list columns to values, as `stream_app.mapping.map_fields` returns
    them. A column of the list that is missing or None becomes the empty string. The rules:

    - A key that is not a column of the list is rejected (column.unknown).
    - Each value is cleaned and checked as text (value.encoding, value.newline, value.too_long).
    - A non-empty value in a phone column must be a valid number (phone.letters,
      phone.invalid), and one in an e-mail column a valid address (email.invalid).
    - The id column, when `options.id_column` is set, must not be empty (id.missing).
    - A contact whose phone and e-mail columns are all empty has no channel to reach it
      (contact.no_channel). This rule is skipped when one of those values was rejected, since
      that reason already explains the problem, and for lists with no phone or e-mail column.

    Every reason names the column, carries the masked value and a fix. A rejected contact
    belongs on the dead-letter topic.

    Raises:
        ConfigurationError: `options.id_column` is not a column of the list. That is a
            mismatch between the mapping file and the contact list, not a bad record.
    """
    if options.id_column is not None and options.id_column not in schema.column_names:
        raise ConfigurationError(
            f"id column {options.id_column!r} is not a column of contact list "
            f"{schema.name!r} ({schema.list_id}); fix id_column in the field-mapping file"
        )

    reasons = _unknown_column_reasons(mapped_fields, schema)
    column_kinds = _column_kinds(schema)
    data: dict[str, str] = {}
    rejected_columns: set[str] = set()

    for column in schema.column_names:
        kind = column_kinds.get(column, "text")
        value, problems = _validate_value(mapped_fields.get(column), kind, options)
        if problems:
            masked = mask_value(value, kind)
            reasons.extend(problem.to_reason(column, masked) for problem in problems)
            rejected_columns.add(column)
        data[column] = value

    id_column = options.id_column
    if id_column is not None and id_column not in rejected_columns and not data[id_column]:
        reasons.append(_id_missing_reason(id_column))

    channel_columns = [column for column in schema.column_names if column in column_kinds]
    has_channel = any(data[column] for column in channel_columns)
    if channel_columns and not has_channel and not rejected_columns.intersection(channel_columns):
        reasons.append(_no_channel_reason(channel_columns))

    if reasons:
        return reasons
    return ValidContact(data=data)


def _column_kinds(schema: ContactListSchema) -> dict[str, ValueKind]:
    kinds: dict[str, ValueKind] = {}
    for column in schema.email_columns:
        kinds[column] = "email"
    # A column listed as both a phone and an e-mail column is checked as a phone column.
    for column in schema.phone_columns:
        kinds[column] = "phone"
    return kinds


def _validate_value(
    raw: str | None, kind: ValueKind, options: ValidationOptions
) -> tuple[str, tuple[ValueProblem, ...]]:
    if raw is None:
        return "", ()

    cleaned = clean_text(raw, newline_policy=options.newline_policy)
    if cleaned.problems or not cleaned.value:
        return cleaned.value, cleaned.problems

    if kind == "phone":
        result = normalize_phone(cleaned.value, options.phone_region)
    elif kind == "email":
        result = normalize_email(cleaned.value)
    else:
        return cleaned.value, ()

    if isinstance(result, ValueProblem):
        return cleaned.value, (result,)
    return result, ()


def _unknown_column_reasons(
    mapped_fields: Mapping[str, str | None], schema: ContactListSchema
) -> list[Reason]:
    known = set(schema.column_names)
    return [
        Reason(
            field=column,
            value_masked=None if value is None else mask_text(value),
            rule=Rule.COLUMN_UNKNOWN,
            message=f"Contact list {schema.name!r} has no column with this name.",
            fix=(
                "Add the column to the contact list, or change the column names in the "
                "field-mapping file. Column names are case-sensitive here."
            ),
        )
        for column, value in mapped_fields.items()
        if column not in known
    ]


def _id_missing_reason(id_column: str) -> Reason:
    return Reason(
        field=id_column,
        value_masked="",
        rule=Rule.ID_MISSING,
        message="The id column is empty, so the contact could not be updated or deleted later.",
        fix="Send the contact's stable source id in the field that maps to this column.",
    )


def _no_channel_reason(channel_columns: list[str]) -> Reason:
    listed = ", ".join(channel_columns)
    return Reason(
        field=None,
        rule=Rule.CONTACT_NO_CHANNEL,
        message=f"The contact has no phone number or e-mail address (columns: {listed}).",
        fix="Send at least one phone number or e-mail address for the contact.",
    )
