"""The pure helpers behind the worker's metrics: batch outcome, consumer lag, operation names."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from schemas.import_result import ImportCounts
from stream_app.observability.metrics import batch_outcome, consumer_lag, genesys_operation


def _counts(received: int, rejected: int = 0, duplicates: int = 0, failed: int = 0) -> ImportCounts:
    valid = received - rejected - duplicates
    return ImportCounts(
        received=received,
        valid=valid,
        rejected=rejected,
        duplicates=duplicates,
        submitted=valid,
        imported=valid - failed,
        failed=failed,
    )


@pytest.mark.parametrize(
    ("counts", "outcome"),
    [
        (_counts(10), "imported"),
        (_counts(10, duplicates=10), "imported"),
        (_counts(10, duplicates=4), "imported"),
        (_counts(10, rejected=2), "partial"),
        (_counts(10, rejected=2, duplicates=8), "partial"),
        (_counts(10, rejected=10), "failed"),
        (_counts(10, failed=10), "failed"),
        (_counts(10, rejected=3, failed=7), "failed"),
    ],
)
def test_batch_outcome(counts: ImportCounts, outcome: str) -> None:
    assert batch_outcome(counts) == outcome


class _TP(NamedTuple):
    topic: str
    partition: int


def test_consumer_lag_per_partition() -> None:
    assignment = {
        _TP("events", 2),
        _TP("events", 0),
        _TP("events", 1),
        _TP("events", 3),
        _TP("results", 0),
    }
    highwater = {_TP("events", 0): 120, _TP("events", 1): 50, _TP("events", 2): None}
    committed = {0: 100, 1: 50, 2: 7, 3: None}

    lags = consumer_lag(assignment, "events", highwater.get, committed.get)

    assert lags == [("events", 0, 20), ("events", 1, 0)]


def test_consumer_lag_never_negative() -> None:
    lags = consumer_lag([_TP("events", 0)], "events", lambda _: 10, lambda _: 12)
    assert lags == [("events", 0, 0)]


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("POST", "/api/v2/outbound/contactlists/{contactListId}/contacts", "contacts.add"),
        ("PUT", "{presignedUploadUrl}", "import.upload"),
        ("POST", "/oauth/token", "oauth.token"),
        ("PATCH", "/api/v2/outbound/other", "PATCH /api/v2/outbound/other"),
    ],
)
def test_genesys_operation_names(method: str, path: str, operation: str) -> None:
    assert genesys_operation(method, path) == operation
