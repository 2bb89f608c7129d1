from typing import Any

import pytest

from schemas.reason import Rule
from stream_app.errors import ConfigurationError
from stream_app.validation.contact import ValidationOptions, ValidContact, validate_contact
from stream_app.validation.contact_list import ContactListSchema

SCHEMA = ContactListSchema(
    list_id="list-1",
    name="cms-hospitals",
    column_names=("provider_id", "name", "phone", "mobile", "email", "city"),
    phone_columns=("phone", "mobile"),
    email_columns=("email",),
)
OPTIONS = ValidationOptions(phone_region="US", id_column="provider_id")


def _fields(**overrides: str | None) -> dict[str, str | None]:
    fields: dict[str, str | None] = {
        "provider_id": "010001",
        "name": "Southeast Alabama Medical Center",
        "phone": "(334) 793-8701",
        "mobile": None,
        "email": "Info@SAMC.org",
        "city": " Dothan ",
    }
    fields.update(overrides)
    return fields


def _reasons(fields: dict[str, Any], options: ValidationOptions = OPTIONS) -> list[Any]:
    result = validate_contact(fields, SCHEMA, options)
    assert isinstance(result, list), f"expected reasons, got {result}"
    return result


def test_validate_contact_cleans_values() -> None:
    result = validate_contact(_fields(), SCHEMA, OPTIONS)

    assert isinstance(result, ValidContact)
    assert result.data == {
        "provider_id": "010001",
        "name": "Southeast Alabama Medical Center",
        "phone": "+13347938701",
        "mobile": "",
        "email": "info@samc.org",
        "city": "Dothan",
    }


def test_validate_contact_keeps_list_order() -> None:
    shuffled = dict(reversed(list(_fields().items())))

    result = validate_contact(shuffled, SCHEMA, OPTIONS)

    assert isinstance(result, ValidContact)
    assert list(result.data) == list(SCHEMA.column_names)


def test_validate_contact_missing_column_is_empty() -> None:
    fields = _fields()
    del fields["city"]
    del fields["mobile"]

    result = validate_contact(fields, SCHEMA, OPTIONS)

    assert isinstance(result, ValidContact)
    assert result.data["city"] == ""
    assert result.data["mobile"] == ""


@pytest.mark.parametrize(
    ("overrides", "rule", "field"),
    [
        ({"phone": "+1 800 FLOWERS"}, Rule.PHONE_LETTERS, "phone"),
        ({"mobile": "334-793-8701xx"}, Rule.PHONE_LETTERS, "mobile"),
        ({"phone": "0000000000"}, Rule.PHONE_INVALID, "phone"),
        ({"email": "jane doe@example.com"}, Rule.EMAIL_INVALID, "email"),
        ({"email": "jane@example"}, Rule.EMAIL_INVALID, "email"),
        ({"name": "x" * 513}, Rule.VALUE_TOO_LONG, "name"),
        ({"name": "Southeast\nAlabama"}, Rule.VALUE_NEWLINE, "name"),
        ({"name": "O\x92BRIEN"}, Rule.VALUE_ENCODING, "name"),
        ({"provider_id": ""}, Rule.ID_MISSING, "provider_id"),
        ({"provider_id": None}, Rule.ID_MISSING, "provider_id"),
        ({"provider_id": "  "}, Rule.ID_MISSING, "provider_id"),
        ({"fax": "3347938702"}, Rule.COLUMN_UNKNOWN, "fax"),
        ({"Phone": "3347938701"}, Rule.COLUMN_UNKNOWN, "Phone"),
        ({"phone": None, "email": ""}, Rule.CONTACT_NO_CHANNEL, None),
    ],
)
def test_validate_contact_rule(
    overrides: dict[str, str | None], rule: Rule, field: str | None
) -> None:
    reasons = _reasons(_fields(**overrides))

    assert [(reason.rule, reason.field) for reason in reasons] == [(rule, field)]
    assert reasons[0].fix
    assert reasons[0].message


def test_validate_contact_reports_all_reasons() -> None:
    fields = _fields(phone="+1 800 FLOWERS", email="jane doe@example.com", name="x" * 600)

    reasons = _reasons(fields)

    assert [(reason.rule, reason.field) for reason in reasons] == [
        (Rule.VALUE_TOO_LONG, "name"),
        (Rule.PHONE_LETTERS, "phone"),
        (Rule.EMAIL_INVALID, "email"),
    ]


def test_validate_contact_masks_values() -> None:
    fields = _fields(phone="334-793-8701xx", email="jane doe@example.com", name="x" * 600)

    reasons = _reasons(fields)

    masked = {reason.field: reason.value_masked for reason in reasons}
    assert masked == {"name": "x***(600)", "phone": "***-***-**01**", "email": "j***@e***.com"}


def test_no_channel_skipped_for_invalid_phone() -> None:
    reasons = _reasons(_fields(phone="12", email=None))

    assert [reason.rule for reason in reasons] == [Rule.PHONE_INVALID]


def test_validate_contact_email_alone_is_a_channel() -> None:
    result = validate_contact(_fields(phone=None), SCHEMA, OPTIONS)

    assert isinstance(result, ValidContact)


def test_validate_contact_second_phone_alone_is_a_channel() -> None:
    result = validate_contact(_fields(phone="", email=None, mobile="205 555 0100"), SCHEMA, OPTIONS)

    assert isinstance(result, ValidContact)
    assert result.data["mobile"] == "+12055550100"


def test_validate_contact_newline_replaced_by_option() -> None:
    options = ValidationOptions(phone_region="US", newline_policy="replace")

    result = validate_contact(_fields(name="Southeast\r\nAlabama"), SCHEMA, options)

    assert isinstance(result, ValidContact)
    assert result.data["name"] == "Southeast Alabama"


def test_validate_contact_region_from_options() -> None:
    options = ValidationOptions(phone_region="GB")

    result = validate_contact(_fields(phone="020 7946 0958"), SCHEMA, options)

    assert isinstance(result, ValidContact)
    assert result.data["phone"] == "+442079460958"


def test_validate_contact_list_without_channels() -> None:
    schema = ContactListSchema(list_id="l", name="ids", column_names=("provider_id",))

    result = validate_contact({"provider_id": "1"}, schema, OPTIONS)

    assert isinstance(result, ValidContact)


def test_validate_contact_without_id_column_option() -> None:
    options = ValidationOptions(phone_region="US")

    result = validate_contact(_fields(provider_id=None), SCHEMA, options)

    assert isinstance(result, ValidContact)


def test_validate_contact_id_column_not_in_list() -> None:
    options = ValidationOptions(phone_region="US", id_column="customer_id")

    with pytest.raises(ConfigurationError, match="customer_id"):
        validate_contact(_fields(), SCHEMA, options)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"phone_region": "USA"}, "unknown phone region"),
        ({"phone_region": "US", "newline_policy": "drop"}, "unknown newline policy"),
    ],
)
def test_validation_options_rejects(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ValidationOptions(**arguments)
