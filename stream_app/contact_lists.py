"""Create the Genesys Cloud contact list that a mapping file describes.

The worker never creates lists: an operator creates them, with `stream-app create-list` or in
Genesys Cloud. The demo uses the same function for its list. Phone and e-mail columns are inferred
from the column names, which is enough for a first list and can be changed in Genesys Cloud later
only by creating a new list, since Genesys Cloud rejects changes to phone columns.
"""

from __future__ import annotations

from stream_app.errors import ConfigurationError
from stream_app.genesys.client import GenesysClient
from stream_app.genesys.models import ContactList
from stream_app.mapping import FieldMapping


def list_definition(
    mapping: FieldMapping, reference: str
) -> tuple[list[str], list[str], list[str]]:
    """Return the columns, phone columns and e-mail columns of the list to create for `reference`.

    The columns are the mapping's list columns in file order. A column whose name contains "phone"
    is a phone column, and one whose name contains "email" is an e-mail column.
    """
    list_mapping = mapping.for_list(reference)
    if list_mapping is None:
        raise ConfigurationError(f"the mapping file has no [lists.{reference}] section")
    if list_mapping.columns is None:
        raise ConfigurationError(
            f"creating contact list {reference!r} needs explicit [lists.{reference}.columns] in "
            "the mapping file, because the columns come from there"
        )
    columns = list(list_mapping.columns)
    phones = [column for column in columns if "phone" in column.lower()]
    emails = [column for column in columns if "email" in column.lower()]
    return columns, phones, emails


async def ensure_contact_list(
    genesys: GenesysClient, mapping: FieldMapping, reference: str
) -> tuple[ContactList, bool]:
    """Return the list named by the mapping for `reference`, creating it if needed.

    The second value is True when the list was created. Raises ConfigurationError when the
    mapping cannot describe the list, and the client's errors for API failures.
    """
    list_mapping = mapping.for_list(reference)
    name = list_mapping.contact_list if list_mapping else reference
    existing = await genesys.find_contact_list(name)
    if existing is not None:
        return existing, False

    columns, phones, emails = list_definition(mapping, reference)
    created = await genesys.create_contact_list(
        name=name, column_names=columns, phone_columns=phones, email_columns=emails
    )
    return created, True
