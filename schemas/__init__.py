"""Pydantic models of every message that crosses a process boundary.

The models describe messages and check their shape. They hold no Kafka, HTTP or S3 code, and
they do not import `stream_app`, so producers and tools can use them on their own. The JSON
Schema files in ``schemas/json/`` are generated from these models by ``python -m schemas.generate``.
"""

from schemas.contact_event import ContactEvent
from schemas.debezium import DebeziumChangeEvent, DebeziumSource
from schemas.import_result import (
    GenesysImport,
    ImportCounts,
    ImportResult,
    ImportTimings,
    RecordOutcome,
    S3Object,
)
from schemas.reason import Reason, Rule
from schemas.rejected_record import RejectedRecord

__all__ = [
    "ContactEvent",
    "DebeziumChangeEvent",
    "DebeziumSource",
    "GenesysImport",
    "ImportCounts",
    "ImportResult",
    "ImportTimings",
    "Reason",
    "RecordOutcome",
    "RejectedRecord",
    "Rule",
    "S3Object",
]
