"""The field-mapping file: which source field fills which contact-list column, per list.

Source systems name their fields freely ("Phone Number"), while a Genesys Cloud contact list
has fixed column names ("phone"). An operator writes one TOML file that maps list columns to
source fields for each contact list, names the routing default, and sets the phone region for
numbers written without a country code::

    [defaults]
    contact_list = "cms-hospitals"   # used when an event names no contact list
    phone_region = "US"

    [lists.cms-hospitals]
    contact_list = "cms-hospitals"   # optional: Genesys Cloud list id or name; default: the key
    id_column = "provider_id"        # the list column that contains the stable contact id
    phone_region = "US"              # optional: overrides [defaults]

    [lists.cms-hospitals.columns]    # list column = source field
    provider_id = "Provider ID"
    name = "Hospital Name"
    phone = "Phone Number"

A list without a ``columns`` table uses identity mapping: each source field becomes the column
of the same name, so every source field must be a list column (validation rejects the others
as column.unknown). With a ``columns`` table, source fields that the mapping does not name are
ignored, so a CRM can send more fields than the list has columns. Names are matched exactly,
including case.

The file is read once at start-up. This module does not check the columns against the contact
list in Genesys Cloud, which `stream_app.validation.validate_contact` does per record.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.reason import Reason, Rule
from stream_app.errors import MappingFileError
from stream_app.validation.columns import check_column_names


class ListMapping(BaseModel):
    """The mapping of one contact list, with defaults already applied."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="The key of the list in the [lists] table.")
    contact_list: str = Field(description="The Genesys Cloud contact list id or name.")
    id_column: str = Field(description="The list column that contains the stable contact id.")
    phone_region: str = Field(description="Region for phone numbers without a country code.")
    columns: dict[str, str] | None = Field(
        description="List column -> source field; None means identity mapping.",
    )


class FieldMapping(BaseModel):
    """The whole field-mapping file."""

    model_config = ConfigDict(frozen=True)

    default_contact_list: str | None = Field(
        description="The [lists] key used when an event names no contact list; None if unset.",
    )
    lists: dict[str, ListMapping]

    def for_list(self, reference: str) -> ListMapping | None:
        """Return the mapping for a contact list; None when the file has none.

        `reference` is matched first against the keys of [lists], then against each list's
        `contact_list` (the Genesys Cloud id or name), so both an event's list name and a
        batch's list id find the mapping.
        """
        found = self.lists.get(reference)
        if found is not None:
            return found
        for list_mapping in self.lists.values():
            if list_mapping.contact_list == reference:
                return list_mapping
        return None


class _RawDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    contact_list: str | None = None
    phone_region: str | None = None


class _RawList(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    contact_list: str | None = Field(default=None, min_length=1)
    id_column: str = Field(min_length=1)
    phone_region: str | None = None
    columns: dict[str, str] | None = None


class _RawFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    defaults: _RawDefaults = Field(default_factory=_RawDefaults)
    lists: dict[str, _RawList]


def load_mapping(path: str | Path) -> FieldMapping:
    """Read and validate a field-mapping file.

    Raises:
        MappingFileError: the file cannot be read, is not valid TOML, or breaks a rule. The
            error lists every problem found, each naming the list and the key.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MappingFileError(path, [f"cannot read the file: {exc.strerror or exc}"]) from exc

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MappingFileError(path, [f"the file is not UTF-8 ({exc.reason})"]) from exc
    return parse_mapping(text, source=str(path))


def parse_mapping(text: str, *, source: str = "<string>") -> FieldMapping:
    """Parse and validate the text of a field-mapping file; `source` names it in errors.

    Raises:
        MappingFileError: the text is not valid TOML or breaks a rule.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingFileError(source, [f"invalid TOML: {exc}"]) from exc

    try:
        raw = _RawFile.model_validate(document)
    except ValidationError as exc:
        raise MappingFileError(source, _structure_problems(exc)) from exc

    problems = _rule_problems(raw)
    if problems:
        raise MappingFileError(source, problems)
    return _resolve(raw)


def map_fields(
    source_fields: Mapping[str, str | None], list_mapping: ListMapping
) -> tuple[dict[str, str | None], list[Reason]]:
    """Map an event's source fields to list columns; return the mapped fields and problems.

    With identity mapping every source field is copied under its own name. Otherwise each
    mapped column takes the value of its source field. A source field that the event does not
    contain gives a field.missing reason naming the field and the column, and that column is
    left out of the result. A present field whose value is None maps to None. Source fields
    that no column names are ignored.
    """
    if list_mapping.columns is None:
        return dict(source_fields), []

    mapped: dict[str, str | None] = {}
    problems: list[Reason] = []
    for column, source_field in list_mapping.columns.items():
        if source_field in source_fields:
            mapped[column] = source_fields[source_field]
        else:
            problems.append(_field_missing_reason(source_field, column, list_mapping.name))
    return mapped, problems


def _field_missing_reason(source_field: str, column: str, list_name: str) -> Reason:
    return Reason(
        field=source_field,
        rule=Rule.FIELD_MISSING,
        message=(
            f"The event has no field {source_field!r}, which the mapping of list "
            f"{list_name!r} needs for column {column!r}."
        ),
        fix=(
            f"Send the field {source_field!r} (null for no value), or change the source "
            f"field of column {column!r} in the field-mapping file."
        ),
    )


def _structure_problems(error: ValidationError) -> list[str]:
    problems: list[str] = []
    for details in error.errors(include_url=False):
        location = ".".join(str(part) for part in details["loc"]) or "(top level)"
        if details["type"] == "extra_forbidden":
            problems.append(f"{location}: unknown key; check its spelling")
        elif details["type"] == "missing":
            problems.append(f"{location}: required key is missing")
        else:
            problems.append(f"{location}: {details['msg']}")
    return problems


def _rule_problems(raw: _RawFile) -> list[str]:
    problems: list[str] = []
    if not raw.lists:
        problems.append("lists: at least one [lists.<name>] table is required")

    default_list = raw.defaults.contact_list
    if default_list is not None and default_list not in raw.lists:
        problems.append(
            f"defaults.contact_list: {default_list!r} is not a key of [lists] "
            f"(known: {', '.join(sorted(raw.lists)) or 'none'})"
        )

    default_region = raw.defaults.phone_region
    if default_region is not None:
        problems.extend(_region_problems("defaults.phone_region", default_region))

    for name, raw_list in raw.lists.items():
        problems.extend(_list_problems(name, raw_list, default_region))
    return problems


def _list_problems(name: str, raw_list: _RawList, default_region: str | None) -> list[str]:
    prefix = f"lists.{name}"
    problems: list[str] = []

    if raw_list.phone_region is not None:
        problems.extend(_region_problems(f"{prefix}.phone_region", raw_list.phone_region))
    elif default_region is None:
        problems.append(f"{prefix}.phone_region: missing, and [defaults] sets no phone_region")

    if raw_list.columns is None:
        return problems

    if not raw_list.columns:
        problems.append(
            f"{prefix}.columns: the table is empty; remove it to map source fields to "
            "columns of the same name"
        )
        return problems

    for reason in check_column_names(list(raw_list.columns)):
        column = f".{reason.field}" if reason.field is not None else ""
        problems.append(f"{prefix}.columns{column}: {reason.message}")

    for column, source_field in raw_list.columns.items():
        if not source_field.strip():
            problems.append(f"{prefix}.columns.{column}: the source field name is empty")

    if raw_list.id_column not in raw_list.columns:
        problems.append(
            f"{prefix}.id_column: {raw_list.id_column!r} is not a key of "
            f"[{prefix}.columns]; add a column for the contact id"
        )
    return problems


def _region_problems(location: str, region: str) -> list[str]:
    if region in phonenumbers.SUPPORTED_REGIONS:
        return []
    return [f"{location}: unknown region {region!r}; use an ISO 3166-1 alpha-2 code such as US"]


def _resolve(raw: _RawFile) -> FieldMapping:
    lists: dict[str, ListMapping] = {}
    for name, raw_list in raw.lists.items():
        region = raw_list.phone_region or raw.defaults.phone_region
        # _rule_problems has rejected a list without any region, so this holds.
        assert region is not None
        lists[name] = ListMapping(
            name=name,
            contact_list=raw_list.contact_list or name,
            id_column=raw_list.id_column,
            phone_region=region,
            columns=None if raw_list.columns is None else dict(raw_list.columns),
        )
    return FieldMapping(default_contact_list=raw.defaults.contact_list, lists=lists)
