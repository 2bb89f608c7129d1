"""The dead-letter record: a message that the service could not import, with every reason.

The worker publishes one `RejectedRecord` to the dead-letter topic per rejected Kafka message
and then commits its offset, so that a bad record does not block its partition. An operator or
a replay job reads the record, fixes the data and publishes a new contact event.

The record carries personal data: `value_base64` and `event` contain the original contact fields,
so replay stays possible. Only `reasons` are masked and safe to copy into logs and spans.

A record must fit in one Kafka message, so `from_message` keeps its JSON under `MAX_RECORD_BYTES`.
A value over `MAX_VALUE_BYTES` keeps only its first `MAX_VALUE_BYTES` bytes and sets
`value_truncated`. Then `value_size` and `value_sha256` identify the whole value, which stays in
the source topic at `partition` and `offset` until that topic's retention deletes it.

Consumers must ignore keys that they do not know, because later versions may add fields.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.contact_event import ContactEvent
from schemas.reason import Reason

Stage = Literal["decode", "routing", "mapping", "validation", "import"]

# The faust producer rejects requests over 1,000,000 bytes (producer_max_request_size default in
# faust-streaming 0.15.3). A Kafka broker rejects messages over 1,048,588 bytes by default
# (message.max.bytes in 3.9.1 and 4.1.1). The margin leaves room for the key and record overhead.
# NOTE: the worker publishes the record under the original message key, which this bound leaves
# out, so a key of more than 100 kB can still make that message too large for the producer.
MAX_RECORD_BYTES = 900_000
# Base64 turns this into 699,052 characters, which leaves about 200 kB for the other fields.
MAX_VALUE_BYTES = 512 * 1024
MAX_REASONS = 100
# Applies to key, contact_list and each text field of a reason. A cut text ends with U+2026 (…).
MAX_TEXT_CHARS = 1000


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
            f"valid UTF-8 are replaced with U+FFFD. A key over {MAX_TEXT_CHARS} characters is "
            "cut and ends with an ellipsis (U+2026)."
        ),
    )
    value_base64: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9+/]*={0,2}$",
        description=(
            "The original message value, base64 encoded (RFC 4648, no line breaks). Set when "
            "the value could not be decoded into a contact event, or when the decoded event "
            f"would make the record too large. Only the first {MAX_VALUE_BYTES} bytes when "
            "value_truncated is true."
        ),
    )
    value_truncated: bool = Field(
        default=False,
        description=(
            f"True when value_base64 holds only the first {MAX_VALUE_BYTES} bytes of the value, "
            "because the whole value would not fit in a dead-letter message. The whole value "
            "stays in `topic` at `partition` and `offset` until that topic's retention deletes it."
        ),
    )
    value_size: int | None = Field(
        default=None,
        ge=0,
        description="Size of the whole original message value in bytes. Set with value_base64.",
    )
    value_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description=(
            "SHA-256 of the whole original message value in lowercase hex, set with "
            "value_base64, to check a value read back from the source topic."
        ),
    )
    event: ContactEvent | None = Field(
        default=None,
        description=(
            "The decoded contact event, when decoding succeeded and the record stays small "
            "enough with it."
        ),
    )
    contact_list: str | None = Field(
        default=None,
        description=(
            "The target contact list id or name, when it is known. A name over "
            f"{MAX_TEXT_CHARS} characters is cut and ends with an ellipsis (U+2026)."
        ),
    )
    reasons: list[Reason] = Field(
        min_length=1,
        description=(
            "The reasons found, never empty. All of them unless reasons_omitted is above 0. "
            f"Text longer than {MAX_TEXT_CHARS} characters is cut and ends with an ellipsis "
            "(U+2026)."
        ),
    )
    reasons_omitted: int = Field(
        default=0,
        ge=0,
        description=(
            "Number of reasons left out after the listed ones, because the record would not "
            f"fit in a dead-letter message or there were more than {MAX_REASONS}."
        ),
    )

    @model_validator(mode="after")
    def _check_payload_present(self) -> Self:
        if self.value_base64 is None and self.event is None:
            raise ValueError("a rejected record needs value_base64 or event, so it can be replayed")
        if self.value_truncated and (self.value_size is None or self.value_sha256 is None):
            raise ValueError("a truncated value needs value_size and value_sha256")
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
        """Build the dead-letter record for a Kafka message, with JSON under MAX_RECORD_BYTES.

        The original `value` is kept as base64 only when `event` is None, because a decoded
        event already contains everything needed for a replay. When the record with `event`
        would be too large, the value is kept in its place. A value over MAX_VALUE_BYTES keeps
        only its first MAX_VALUE_BYTES bytes. Texts over MAX_TEXT_CHARS are cut. Reasons after
        the first MAX_REASONS, and after the first ones that fit, are counted in
        `reasons_omitted`.

        Raises:
            pydantic.ValidationError: `reasons` is empty, a number is negative or
                `rejected_at` has no time zone.
        """
        all_reasons = list(reasons)
        kept_reasons = [_shortened_reason(reason) for reason in all_reasons[:MAX_REASONS]]
        key_text = None if key is None else key.decode("utf-8", errors="replace")
        payload = {"event": event} if event is not None else _value_fields(value)
        record = cls(
            rejected_at=rejected_at,
            stage=stage,
            topic=topic,
            partition=partition,
            offset=offset,
            key=_shortened(key_text),
            contact_list=_shortened(contact_list),
            reasons=kept_reasons,
            reasons_omitted=len(all_reasons) - len(kept_reasons),
            **payload,
        )

        if record.event is not None and record.json_size() > MAX_RECORD_BYTES:
            record = record.model_copy(update={"event": None, **_value_fields(value)})

        # Without the event, the value prefix, one reason and the cut texts stay far below
        # MAX_RECORD_BYTES, so halving the reasons always ends under it.
        while len(record.reasons) > 1 and record.json_size() > MAX_RECORD_BYTES:
            first_reasons = record.reasons[: len(record.reasons) // 2]
            record = record.model_copy(
                update={
                    "reasons": first_reasons,
                    "reasons_omitted": len(all_reasons) - len(first_reasons),
                }
            )
        return record

    def json_size(self) -> int:
        """Return the size in bytes of the record's JSON, as the worker publishes it."""
        return len(self.model_dump_json().encode("utf-8"))

    def original_value(self) -> bytes | None:
        """Decode `value_base64`; return None when only the event or a truncated value was kept."""
        if self.value_base64 is None or self.value_truncated:
            return None
        return base64.b64decode(self.value_base64, validate=True)


def _value_fields(value: bytes) -> dict[str, Any]:
    kept = value[:MAX_VALUE_BYTES]
    return {
        "value_base64": base64.b64encode(kept).decode("ascii"),
        "value_truncated": len(kept) < len(value),
        "value_size": len(value),
        "value_sha256": hashlib.sha256(value).hexdigest(),
    }


def _shortened(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT_CHARS:
        return text
    return text[: MAX_TEXT_CHARS - 1] + "\u2026"


def _shortened_reason(reason: Reason) -> Reason:
    texts = {
        "field": reason.field,
        "value_masked": reason.value_masked,
        "message": reason.message,
        "fix": reason.fix,
    }
    cut_texts = {
        name: _shortened(text)
        for name, text in texts.items()
        if text is not None and len(text) > MAX_TEXT_CHARS
    }
    return reason.model_copy(update=cut_texts) if cut_texts else reason
