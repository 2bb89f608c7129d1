"""The shape of a Genesys Cloud contact list, as far as validation needs it.

The worker reads the contact list from Genesys Cloud (GET /api/v2/outbound/contactlists/{id}:
``columnNames``, ``phoneColumns[].columnName``, ``emailColumns[].columnName``), builds a
`ContactListSchema` with `ContactListSchema.from_genesys` and caches it. This module makes no
HTTP calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stream_app.validation.columns import check_column_names


class ContactListSchema(BaseModel):
    """Column names in list order, and which of them hold phone numbers and e-mail addresses.

    Raises pydantic.ValidationError on construction when a phone or e-mail column is not in
    `column_names`, or when the column names break a Genesys Cloud limit (see
    `stream_app.validation.columns`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    list_id: str = Field(min_length=1)
    name: str
    column_names: tuple[str, ...] = Field(min_length=1)
    phone_columns: tuple[str, ...] = ()
    email_columns: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check_columns(self) -> Self:
        problems = [f"{r.field}: {r.message}" for r in check_column_names(self.column_names)]
        known = set(self.column_names)
        for kind, columns in (("phone", self.phone_columns), ("e-mail", self.email_columns)):
            problems.extend(
                f"{column}: the {kind} column is not in column_names"
                for column in columns
                if column not in known
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def from_genesys(cls, contact_list: Mapping[str, Any]) -> ContactListSchema:
        """Build the schema from a ContactList body returned by the Genesys Cloud API.

        Raises:
            pydantic.ValidationError: a required key (``id``, ``columnNames``) is missing or
                the columns are inconsistent.
        """
        return cls.model_validate(
            {
                "list_id": contact_list.get("id"),
                "name": contact_list.get("name") or "",
                "column_names": contact_list.get("columnNames"),
                "phone_columns": _column_names_of(contact_list.get("phoneColumns")),
                "email_columns": _column_names_of(contact_list.get("emailColumns")),
            }
        )


def _column_names_of(columns: Any) -> list[Any]:
    if not columns:
        return []
    return [
        column.get("columnName") if isinstance(column, Mapping) else column for column in columns
    ]
