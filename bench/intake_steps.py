"""The worker's pure intake steps, for the reference runs of the performance benchmark.

`classify` runs one message through the functions that the worker's `stream_app.worker.prepare`
runs over a chunk, in the same order and with the same arguments: `decode_message`, the mapping
file's list look-up and `check_contact` (mapping and validation). The contact list comes from a
`ContactListSchema` read once before the timed run, where the worker reads it from its cache.
`bench.ceiling` and `bench.peer_quix` use it, and `ReferenceConfig` is what `bench.run` hands
them: the input topic's end offsets and the contact list, next to the worker's STREAM_APP_*
settings in the environment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from schemas.reason import Reason
from stream_app.errors import DecodeError
from stream_app.intake.decode import DebeziumOptions, decode_message
from stream_app.mapping import FieldMapping
from stream_app.settings import Settings
from stream_app.validation.contact_list import ContactListSchema
from stream_app.worker.prepare import check_contact


class Verdict(StrEnum):
    VALID = "valid"
    DELETE = "delete"
    REJECTED = "rejected"
    UNDECODABLE = "undecodable"
    UNROUTABLE = "unroutable"
    TOMBSTONE = "tombstone"


@dataclass(frozen=True)
class Classified:
    """The intake steps' verdict on one message, with the contact id, operation and clean data."""

    verdict: Verdict
    contact_id: str | None = None
    operation: str | None = None
    data: dict[str, str] = field(default_factory=dict)
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True)
class ReferenceConfig:
    """Input of a reference run: where to read, up to which offsets, and the contact list."""

    topic: str
    # Partition -> offset after the last record to read.
    end_offsets: dict[int, int]
    schema: dict[str, Any]
    work_dir: str

    def write(self, path: Path) -> None:
        path.write_text(
            json.dumps(
                {
                    "topic": self.topic,
                    "end_offsets": {str(p): end for p, end in self.end_offsets.items()},
                    "schema": self.schema,
                    "work_dir": self.work_dir,
                }
            )
        )

    @classmethod
    def read(cls, path: Path) -> ReferenceConfig:
        body = json.loads(path.read_text())
        return cls(
            topic=body["topic"],
            end_offsets={int(p): int(end) for p, end in body["end_offsets"].items()},
            schema=body["schema"],
            work_dir=body["work_dir"],
        )

    def contact_list(self) -> ContactListSchema:
        return ContactListSchema.model_validate(self.schema)

    @property
    def records(self) -> int:
        return sum(self.end_offsets.values())


def debezium_options(settings: Settings) -> DebeziumOptions | None:
    """Return the Debezium options the worker builds from the same settings."""
    if not settings.debezium.table:
        return None
    return DebeziumOptions(
        table=settings.debezium.table,
        id_column=settings.debezium.id_column,
        source=settings.debezium.source,
    )


def classify(
    value: bytes | None,
    settings: Settings,
    mapping: FieldMapping,
    schema: ContactListSchema,
    debezium: DebeziumOptions | None,
) -> Classified:
    """Decode, route, map and validate one message value as the worker's intake does."""
    try:
        decoded = decode_message(
            value, max_bytes=settings.validation.max_message_bytes, debezium=debezium
        )
    except DecodeError:
        return Classified(Verdict.UNDECODABLE)
    if decoded is None:
        return Classified(Verdict.TOMBSTONE)

    reference = decoded.contact_list or mapping.default_contact_list
    list_mapping = mapping.for_list(reference) if reference else None
    if list_mapping is None:
        return Classified(Verdict.UNROUTABLE)

    if decoded.operation != "upsert":
        return Classified(Verdict.DELETE, decoded.contact_id, decoded.operation)

    checked = check_contact(decoded, list_mapping, schema, settings.validation)
    if checked.data is not None:
        return Classified(Verdict.VALID, decoded.contact_id, decoded.operation, checked.data)
    return Classified(
        Verdict.REJECTED, decoded.contact_id, decoded.operation, reasons=checked.reasons
    )
