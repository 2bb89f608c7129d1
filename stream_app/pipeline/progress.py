"""The plan and progress of each batch, as kept in a changelogged table.

A batch's plan is its source partition, contact list and offset range. The worker stores it, and
waits until the changelog has it, before the batch's first side effect. After a crash or a
rebalance, the records read again fall into the planned ranges, so they form the same batches with
the same ids and S3 keys, and the archive never contains two objects for one offset.

The progress tells a worker that resumes a batch which steps are already done:

    planned -> archived -> uploaded -> resolved -> published

- planned: the range is fixed; nothing left the worker yet;
- archived: the CSV and manifest are in S3 (`s3`);
- uploaded: the CSV went to the presigned URL (`upload_key`); the import may still run, so a
  resumed batch polls the import status instead of uploading again;
- resolved: Genesys Cloud accepted the batch, or failed it with `failure`;
- published: the dead-letter records and the import result are sent. Replaying such a batch only
  acknowledges its records.

The table holds, per (partition, contact list), a JSON list of the batches whose records may still
be read again. A published batch is dropped once the committed offset of its partition passes its
last offset.

This module is pure: the worker reads and writes the table, and the flusher advances the stage.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any

from schemas.reason import Reason

# ASCII unit separator between the parts of a table key, as in the dedupe keys.
_SEPARATOR = "\x1f"


class Step(IntEnum):
    PLANNED = 0
    ARCHIVED = 1
    UPLOADED = 2
    RESOLVED = 3
    PUBLISHED = 4


@dataclass
class BatchProgress:
    """One batch's plan and how far its flush got."""

    first_offset: int
    last_offset: int
    stage: Step = Step.PLANNED
    s3: dict[str, str] | None = None  # bucket, key, manifest_key
    method: str | None = None  # "contacts" or "upload"
    upload_key: str | None = None
    import_state: str | None = None
    import_failure: str | None = None  # Genesys Cloud's failure reason of a failed import
    failure: dict[str, Any] | None = None  # a Reason, as JSON
    request_ids: list[str] = field(default_factory=list)
    # True when the entry came from the table, so an earlier run may have made some of the
    # batch's writes. Not stored.
    resumed: bool = field(default=False, compare=False)

    def covers(self, offset: int) -> bool:
        return self.first_offset <= offset <= self.last_offset

    @property
    def failure_reason(self) -> Reason | None:
        return Reason.model_validate(self.failure) if self.failure else None

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("resumed")
        body["stage"] = self.stage.name.lower()
        return {key: value for key, value in body.items() if value not in (None, [])}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> BatchProgress:
        values = dict(body)
        values["stage"] = Step[str(values.get("stage", "planned")).upper()]
        return cls(**values, resumed=True)


def slot_key(partition: int, contact_list_id: str) -> str:
    """Return the table key of the batches of one partition and contact list."""
    return f"{partition}{_SEPARATOR}{contact_list_id}"


def decode_plans(text: str | None) -> list[BatchProgress]:
    """Parse a table value; raise ValueError on anything that is not one."""
    if not text:
        return []
    body = json.loads(text)
    if not isinstance(body, list):
        raise ValueError(f"a batch plan list must be a JSON array, got {type(body).__name__}")
    return [BatchProgress.from_json(item) for item in body]


def encode_plans(plans: list[BatchProgress]) -> str:
    return json.dumps([plan.to_json() for plan in plans], separators=(",", ":"))


def covering(plans: list[BatchProgress], offset: int) -> BatchProgress | None:
    """Return the planned batch whose range contains `offset`, if any."""
    for plan in plans:
        if plan.covers(offset):
            return plan
    return None


def put(plans: list[BatchProgress], progress: BatchProgress) -> list[BatchProgress]:
    """Return `plans` with `progress` replacing the entry of the same first offset, sorted."""
    kept = [plan for plan in plans if plan.first_offset != progress.first_offset]
    kept.append(progress)
    kept.sort(key=lambda plan: plan.first_offset)
    return kept


def prune(plans: list[BatchProgress], committed: int | None) -> list[BatchProgress]:
    """Drop the published batches that lie wholly before the committed offset `committed`.

    `committed` is the next offset the consumer group reads after a restart. Records before it
    are never read again, so their plans are no longer needed. None keeps everything.
    """
    if committed is None:
        return plans
    return [
        plan for plan in plans if plan.stage is not Step.PUBLISHED or plan.last_offset >= committed
    ]
