from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.import_result import (
    GenesysImport,
    ImportCounts,
    ImportResult,
    ImportTimings,
    RecordOutcome,
    S3Object,
)
from schemas.reason import Reason, Rule

STARTED = datetime(2024, 5, 1, 12, tzinfo=UTC)
FINISHED = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
REASON = Reason(
    field="phone", value_masked="+1***01", rule=Rule.PHONE_INVALID, message="m", fix="f"
)


def _counts(**overrides: int) -> dict[str, int]:
    counts = {
        "received": 10,
        "valid": 7,
        "rejected": 2,
        "duplicates": 1,
        "submitted": 7,
        "imported": 6,
        "failed": 1,
    }
    counts.update(overrides)
    return counts


def test_counts_consistent_accepted() -> None:
    counts = ImportCounts(**_counts())

    assert counts.received == 10


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"received": 11}, "must equal valid"),
        ({"submitted": 8}, "exceeds valid"),
        ({"imported": 7}, "exceeds submitted"),
        ({"failed": -1}, "greater than or equal"),
    ],
)
def test_counts_checked(overrides: dict[str, int], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ImportCounts(**_counts(**overrides))


def test_rejected_outcome_needs_reason() -> None:
    with pytest.raises(ValidationError, match="at least one reason"):
        RecordOutcome(source_id="1", event_id="e", operation="upsert", outcome="rejected")


def _result(**overrides: Any) -> ImportResult:
    data: dict[str, Any] = {
        "batch_id": "batch-1",
        "contact_list": "3f1c0d6e-0000-4000-8000-000000000001",
        "counts": ImportCounts(**_counts()),
        "s3": S3Object(bucket="archive", key="lists/a/batch-1.csv", manifest_key="m.json"),
        "genesys": GenesysImport(method="upload", upload_key="uk-1", request_ids=["r1"]),
        "timings": ImportTimings(
            started_at=STARTED,
            finished_at=FINISHED,
            event_to_accepted_ms_p50=1200,
            event_to_accepted_ms_max=4000,
        ),
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "records": [
            RecordOutcome(
                source_id="010001",
                event_id="e1",
                genesys_contact_id="010001",
                operation="upsert",
                outcome="accepted",
            ),
            RecordOutcome(
                source_id="010002",
                event_id="e2",
                operation="upsert",
                outcome="rejected",
                reasons=[REASON],
            ),
        ],
    }
    data.update(overrides)
    return ImportResult(**data)


def test_import_result_json_round_trip() -> None:
    result = _result()

    assert ImportResult.model_validate_json(result.model_dump_json()) == result


def test_import_result_json_has_schema_version() -> None:
    assert _result().model_dump(mode="json")["schema_version"] == 1


@pytest.mark.parametrize(
    "traceparent", ["00-abc-def-01", "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"]
)
def test_import_result_rejects_bad_traceparent(traceparent: str) -> None:
    with pytest.raises(ValidationError):
        _result(traceparent=traceparent)


def test_import_result_optional_parts() -> None:
    result = _result(s3=None, genesys=None, traceparent=None, records=[])

    assert result.s3 is None
    assert result.genesys is None
