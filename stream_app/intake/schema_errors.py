"""Translation of pydantic validation errors into dead-letter reasons.

A producer that sends a malformed message needs to know which key is wrong, what type was
expected and what was sent, in JSON terms rather than Python terms. This module builds those
reasons. It does not decide what is valid; the models in `schemas` do.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from schemas.reason import Reason, Rule
from stream_app.masking import mask_text

_EXPECTED_BY_ERROR_TYPE = {
    "string_type": "a string",
    "dict_type": "an object",
    "model_type": "an object",
    "list_type": "an array",
    "int_type": "an integer",
    "bool_type": "a boolean",
}

_FIELDS_FIX = (
    'Send every field value as a JSON string, such as "3347938701", or null for no value. '
    "Numbers are rejected because they lose leading zeros and plus signs."
)


def json_type_name(value: Any) -> str:
    """Return the JSON type of a value parsed by `json.loads`, with an article: "a number"."""
    # bool is a subclass of int, so it is tested first.
    json_types: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (type(None), "null"),
        (bool, "a boolean"),
        ((int, float, Decimal), "a number"),
        (str, "a string"),
        (list, "an array"),
        (dict, "an object"),
    )
    for python_type, name in json_types:
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def reasons_from_validation_error(
    error: ValidationError,
    *,
    model: type[BaseModel],
    message_name: str,
    schema_file: str,
) -> list[Reason]:
    """Return one decode.schema reason per error in `error`, naming the JSON path.

    `message_name` ("contact event") and `schema_file` (the JSON Schema file to follow) are
    used in messages and fixes. Scalar inputs are masked as text; objects and arrays are left
    out.
    """
    allowed_keys = ", ".join(sorted(model.model_fields))
    return [
        _reason_from_error_details(details, message_name, schema_file, allowed_keys)
        for details in error.errors(include_url=False)
    ]


def _reason_from_error_details(
    details: ErrorDetails, message_name: str, schema_file: str, allowed_keys: str
) -> Reason:
    location: Sequence[int | str] = details["loc"]
    field = ".".join(str(part) for part in location) or None
    error_type = details["type"]
    value = details.get("input")

    if error_type == "missing":
        message = f"The required key is missing from the {message_name}."
        fix = f"Add the key, as {schema_file} describes."
        return Reason(field=field, rule=Rule.DECODE_SCHEMA, message=message, fix=fix)

    if error_type == "extra_forbidden":
        message = f"The key is not part of the {message_name}."
        fix = f"Remove the key or correct its spelling. Allowed keys: {allowed_keys}."
        return Reason(field=field, rule=Rule.DECODE_SCHEMA, message=message, fix=fix)

    expected = _EXPECTED_BY_ERROR_TYPE.get(error_type)
    if expected is not None:
        message = f"Expected {expected}, got {json_type_name(value)}."
    else:
        message = f"{details['msg']}; got {json_type_name(value)}."

    in_fields = len(location) == 2 and location[0] == "fields"
    fix = _FIELDS_FIX if in_fields else f"Send a value of the type that {schema_file} describes."
    return Reason(
        field=field,
        value_masked=_mask_scalar(value),
        rule=Rule.DECODE_SCHEMA,
        message=message,
        fix=fix,
    )


def _mask_scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str | int | float | Decimal):
        return mask_text(str(value))
    return None
