"""The dead-letter record: a message that the service could not import, with every reason.

The worker publishes one `RejectedRecord` to the dead-letter topic per rejected Kafka message
and then commits its offset, so that a bad record does not block its partition. An operator or
a replay job reads the record, fixes the data and publishes a new contact event.

The record carries personal data: `value_base64` and `event` contain the original contact fields,
so replay stays possible. Only `reasons` are masked and safe to copy into logs and spans.

Consumers must ignore keys that they do not know, because later versions may add fields.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.contact_event import ContactEvent
from schemas.reason import Reason

Stage = Literal["decode", "routing", "mapping", "validation", "import"]


class RejectedRecord(BaseModel):
    """One rejected Kafka message, where it came from, and why it was rejected."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = Field(default=1, description="Version of this message format.")
    rejected_at: AwareDatetime = Field(description="When the service rejected the message.")
    stage: Stage = Field(
        description=(
            "The step that rejected it: decode (bytes to event), routing (choosing the contact "
            "list), mapping (source fields to columns), validation (column values) or import "
            "(Genesys Cloud refused it)."
        ),
    )
    topic: str = Field(description="The topic that the message was read from.")
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key: str | None = Field(
        default=None,
        description=(
            "The message key as text, normally the source contact id. Key bytes that are not "
            "valid UTF-8 are replaced with U+FFFD."
        ),
    )
    value_base64: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9+/]*={0,2}$",
        description=(
            "The original message value, base64 encoded (RFC 4648, no line breaks). Set when "
            "the value could not be decoded into a contact event."
        ),
    )
    event: ContactEvent | None = Field(
        default=None,
        description="The decoded contact event, when decoding succeeded.",
    )
    contact_list: str | None = Field(
        default=None,
        description="The target contact list id or name, when it is known.",
    )
    reasons: list[Reason] = Field(min_length=1, description="Every reason found, never empty.")

    @model_validator(mode="after")
    def _check_payload_present(self) -> Self:
        if self.value_base64 is None and self.event is None:
            raise ValueError("a rejected record needs value_base64 or event, so it can be replayed")
        return self

    @classmethod
    def from_message(
        cls,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        reasons: Sequence[Reason],
        stage: Stage,
        rejected_at: datetime,
        event: ContactEvent | None = None,
        contact_list: str | None = None,
    ) -> RejectedRecord:
        """Build the dead-letter record for a Kafka message.

        The original `value` is kept as base64 only when `event` is None, because a decoded
        event already contains everything needed for a replay.

        Raises:
            pydantic.ValidationError: `reasons` is empty, a number is negative or
                `rejected_at` has no time zone.
        """
        value_base64 = None if event is not None else base64.b64encode(value).decode("ascii")
        return cls(
            rejected_at=rejected_at,
            stage=stage,
            topic=topic,
            partition=partition,
            offset=offset,
            key=None if key is None else key.decode("utf-8", errors="replace"),
            value_base64=value_base64,
            event=event,
            contact_list=contact_list,
            reasons=list(reasons),
        )

    def original_value(self) -> bytes | None:
        """Decode `value_base64`; return None when only the decoded event was kept."""
        if self.value_base64 is None:
            return None
        return base64.b64decode(self.value_base64, validate=True)
