from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.contact_event import ContactEvent


def _event_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "event_id": "evt-1",
        "source": "crm",
        "operation": "upsert",
        "contact_list": "cms-hospitals",
        "contact_id": "010001",
        "fields": {"Phone Number": "3347938701", "Hospital Name": None},
        "occurred_at": "2024-05-01T12:00:00Z",
    }
    data.update(overrides)
    return data


def _error_locations(error: ValidationError) -> list[tuple[int | str, ...]]:
    return [tuple(details["loc"]) for details in error.errors()]


def test_contact_event_valid_fields() -> None:
    event = ContactEvent.model_validate(_event_data())

    assert event.fields == {"Phone Number": "3347938701", "Hospital Name": None}
    assert event.occurred_at == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_contact_event_offset_kept() -> None:
    event = ContactEvent.model_validate(_event_data(occurred_at="2024-05-01T08:00:00-04:00"))

    assert event.occurred_at.utcoffset() == timedelta(hours=-4)


def test_contact_event_defaults() -> None:
    data = _event_data()
    del data["contact_list"]
    del data["fields"]

    event = ContactEvent.model_validate(data)

    assert event.contact_list is None
    assert event.fields == {}


@pytest.mark.parametrize(
    ("overrides", "location"),
    [
        ({"fields": {"Phone Number": 3347938701}}, ("fields", "Phone Number")),
        ({"fields": {"Active": True}}, ("fields", "Active")),
        ({"fields": {"Rating": 4.5}}, ("fields", "Rating")),
        ({"fields": {"Nested": {"a": "b"}}}, ("fields", "Nested")),
        ({"contact_id": 10001}, ("contact_id",)),
        ({"contact_id": ""}, ("contact_id",)),
        ({"event_id": ""}, ("event_id",)),
        ({"operation": "insert"}, ("operation",)),
        ({"occurred_at": "2024-05-01T12:00:00"}, ("occurred_at",)),
        ({"occurred_at": 1714564800}, ("occurred_at",)),
        ({"occurred_at": "yesterday"}, ("occurred_at",)),
        ({"contatc_list": "typo"}, ("contatc_list",)),
    ],
)
def test_contact_event_rejects(overrides: dict[str, Any], location: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        ContactEvent.model_validate(_event_data(**overrides))

    assert _error_locations(caught.value) == [location]


def test_contact_event_accepts_python_datetime() -> None:
    moment = datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))

    event = ContactEvent.model_validate(_event_data(occurred_at=moment))

    assert event.occurred_at == moment


def test_contact_event_json_round_trip() -> None:
    event = ContactEvent.model_validate(_event_data())

    assert ContactEvent.model_validate_json(event.model_dump_json()) == event


def test_contact_event_is_frozen() -> None:
    event = ContactEvent.model_validate(_event_data())

    with pytest.raises(ValidationError):
        event.contact_id = "other"  # type: ignore[misc]
