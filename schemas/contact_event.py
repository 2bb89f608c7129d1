"""The contact event: what producers publish to the contact-events topic.

Producers key each message by `contact_id`, so all events of one contact land in one partition
and keep their order. The model is strict on purpose. Unknown keys are rejected so that a
producer learns of a misspelt key at once, and values are never coerced between JSON types.

This module only describes the message. Decoding Kafka bytes, Debezium change events and
dead-letter routing live in `stream_app.intake`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field


def _require_iso_datetime(value: Any) -> Any:
    # Lax pydantic would read a JSON number as Unix time in seconds or milliseconds, guessing
    # the unit from its size. Only an ISO 8601 string (or a datetime from Python code) is
    # unambiguous, so anything else is rejected here.
    if isinstance(value, str | datetime):
        return value
    raise ValueError("expected an ISO 8601 date-time string with a UTC offset")


IsoDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_require_iso_datetime),
    Field(strict=False),
]


class ContactEvent(BaseModel):
    """A change to one contact in the CRM, addressed to one Genesys Cloud contact list.

    Every value in `fields` must be a JSON string or null. A number is rejected, because a
    phone number or id sent as a number has already lost its leading zeros and plus sign, and
    a large id may have lost precision in the producer's JSON library.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    event_id: str = Field(
        min_length=1,
        description=(
            "Unique id of this event, set by the producer. A redelivered or replayed event "
            "keeps its id, which is how duplicates are detected."
        ),
    )
    source: str = Field(min_length=1, description="Name of the source system, such as crm.")
    operation: Literal["upsert", "delete"] = Field(
        description="upsert creates or replaces the contact; delete removes it from the list.",
    )
    contact_list: str | None = Field(
        default=None,
        description=(
            "Target contact list id or name. Null means the routing default from the "
            "field-mapping file."
        ),
    )
    contact_id: str = Field(
        min_length=1,
        description="Stable id of the contact in the source system; also the message key.",
    )
    fields: dict[str, str | None] = Field(
        default_factory=dict,
        description=(
            "The contact's source fields by source field name. Values are strings or null; "
            "numbers and booleans are rejected. May be empty for a delete."
        ),
    )
    occurred_at: IsoDatetime = Field(
        description="When the change happened in the source system: ISO 8601 with a UTC offset.",
    )
