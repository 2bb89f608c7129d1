import pytest
from pydantic import ValidationError

from stream_app.validation.contact_list import ContactListSchema

GENESYS_BODY = {
    "id": "3f1c0d6e-0000-4000-8000-000000000001",
    "name": "cms-hospitals",
    "version": 1,
    "columnNames": ["provider_id", "name", "phone", "email"],
    "phoneColumns": [{"columnName": "phone", "type": "work"}],
    "emailColumns": [{"columnName": "email", "type": "work"}],
    "selfUri": "/api/v2/outbound/contactlists/3f1c0d6e-0000-4000-8000-000000000001",
}


def test_from_genesys_reads_columns() -> None:
    schema = ContactListSchema.from_genesys(GENESYS_BODY)

    assert schema.list_id == GENESYS_BODY["id"]
    assert schema.name == "cms-hospitals"
    assert schema.column_names == ("provider_id", "name", "phone", "email")
    assert schema.phone_columns == ("phone",)
    assert schema.email_columns == ("email",)


def test_from_genesys_without_email_columns() -> None:
    body = {key: value for key, value in GENESYS_BODY.items() if key != "emailColumns"}
    body["columnNames"] = ["provider_id", "phone"]

    schema = ContactListSchema.from_genesys(body)

    assert schema.email_columns == ()


def test_schema_is_hashable_for_caching() -> None:
    schema = ContactListSchema.from_genesys(GENESYS_BODY)

    assert {schema: 1}[ContactListSchema.from_genesys(GENESYS_BODY)] == 1


@pytest.mark.parametrize(
    ("changes", "message_part"),
    [
        ({"id": None}, "list_id"),
        ({"columnNames": None}, "column_names"),
        ({"columnNames": []}, "column_names"),
        ({"phoneColumns": [{"columnName": "mobile", "type": "cell"}]}, "mobile"),
        ({"columnNames": ["provider_id", "name", "phone", "email", "Phone"]}, "repeats"),
    ],
)
def test_from_genesys_rejects(changes: dict[str, object], message_part: str) -> None:
    with pytest.raises(ValidationError, match=message_part):
        ContactListSchema.from_genesys({**GENESYS_BODY, **changes})
