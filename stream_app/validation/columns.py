"""Checks of contact-list column names against the limits of Genesys Cloud.

Genesys Cloud documents at most 50 columns per contact list and at most 128 characters per
column name, and does not import a CSV file whose header repeats a name or contains special
characters such as a backslash. It matches column names case-insensitively when appending a
file, so names that differ only in case count as duplicates here.

The checks run on the field-mapping file at start-up and on contact-list schemas read from
Genesys Cloud. They do not run per record.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.reason import Reason, Rule

MAX_COLUMNS = 50
MAX_COLUMN_NAME_LENGTH = 128


def check_column_names(column_names: Sequence[str]) -> list[Reason]:
    """Return one reason per problem in `column_names`; an empty list means they are usable."""
    reasons: list[Reason] = []

    if len(column_names) > MAX_COLUMNS:
        reasons.append(
            Reason(
                field=None,
                rule=Rule.COLUMNS_TOO_MANY,
                message=(
                    f"There are {len(column_names)} columns, but a Genesys Cloud contact list "
                    f"has at most {MAX_COLUMNS}."
                ),
                fix=f"Map at most {MAX_COLUMNS} columns.",
            )
        )

    seen: dict[str, str] = {}
    for name in column_names:
        reasons.extend(_check_column_name(name))
        folded = name.casefold()
        if folded in seen:
            reasons.append(
                Reason(
                    field=name,
                    rule=Rule.COLUMN_DUPLICATE,
                    message=(
                        f"The column name repeats {seen[folded]!r}; Genesys Cloud compares "
                        "column names without regard to case."
                    ),
                    fix="Give every column a distinct name.",
                )
            )
        else:
            seen[folded] = name

    return reasons


def _check_column_name(name: str) -> list[Reason]:
    reasons: list[Reason] = []

    if len(name) > MAX_COLUMN_NAME_LENGTH:
        reasons.append(
            Reason(
                field=name,
                rule=Rule.COLUMN_NAME_TOO_LONG,
                message=(
                    f"The column name is {len(name)} characters long, but Genesys Cloud "
                    f"accepts at most {MAX_COLUMN_NAME_LENGTH}."
                ),
                fix=f"Shorten the column name to {MAX_COLUMN_NAME_LENGTH} characters or fewer.",
            )
        )

    if not name.strip() or name != name.strip():
        reasons.append(
            Reason(
                field=name,
                rule=Rule.COLUMN_NAME_INVALID,
                message="The column name is empty or starts or ends with whitespace.",
                fix="Remove the surrounding whitespace from the column name.",
            )
        )
    elif "\\" in name or any(not char.isprintable() for char in name):
        reasons.append(
            Reason(
                field=name,
                rule=Rule.COLUMN_NAME_INVALID,
                message="The column name contains a backslash or a control character.",
                fix="Use letters, digits, spaces, hyphens and underscores in column names.",
            )
        )

    return reasons
