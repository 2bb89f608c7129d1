"""Pure validation of contacts for Genesys Cloud contact lists.

Nothing in this package does I/O. The worker passes in the mapped fields, the contact-list
schema it read from Genesys Cloud and the per-list options, and gets back either the row to
import or the reasons to reject the contact.
"""

from stream_app.validation.columns import MAX_COLUMN_NAME_LENGTH, MAX_COLUMNS, check_column_names
from stream_app.validation.contact import ValidationOptions, ValidContact, validate_contact
from stream_app.validation.contact_list import ContactListSchema
from stream_app.validation.email_address import normalize_email
from stream_app.validation.phone import check_region, normalize_phone
from stream_app.validation.problems import ValueProblem
from stream_app.validation.text import MAX_VALUE_LENGTH, CleanedText, NewlinePolicy, clean_text

__all__ = [
    "MAX_COLUMNS",
    "MAX_COLUMN_NAME_LENGTH",
    "MAX_VALUE_LENGTH",
    "CleanedText",
    "ContactListSchema",
    "NewlinePolicy",
    "ValidContact",
    "ValidationOptions",
    "ValueProblem",
    "check_column_names",
    "check_region",
    "clean_text",
    "normalize_email",
    "normalize_phone",
    "validate_contact",
]
