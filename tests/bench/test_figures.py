"""The fault-run checker on hand-made run data: a clean run scores 0, and each defect is counted."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bench.figures import Collected, compute_figures, max_requests_in_window
from bench.workload import EventKind, Workload, build_workload

BATCH_SIZE = 10
# Figures that count defects, so a clean run has 0 in each.
DEFECT_FIGURES = (
    "lost",
    "counted_twice",
    "written_twice",
    "archive_overlaps",
    "webhook_batches_missing",
    "webhook_id_mismatch",
    "result_conflicts",
    "unexpected_outcomes",
    "dead_letters_missing",
    "manifests_missing",
    "genesys_mismatches",
)


@pytest.fixture(scope="module")
def workload() -> Workload:
    planned = build_workload(400, seed=5)
    # Positions as a 2-partition topic would assign them, without a broker.
    next_offset = [0, 0]
    for number, event in enumerate(planned.events):
        event.partition = number % 2
        event.offset = next_offset[event.partition]
        next_offset[event.partition] += 1
    return planned


def _clean_run(workload: Workload) -> Collected:
    """Return what a faultless service would leave behind for `workload`."""
    results: list[dict[str, Any]] = []
    dead_letters: list[dict[str, Any]] = []
    manifests: dict[str, dict[str, Any]] = {}
    writes: list[dict[str, Any]] = []
    batches = [
        workload.events[start : start + BATCH_SIZE]
        for start in range(0, len(workload.events), BATCH_SIZE)
    ]
    for number, events in enumerate(batches):
        batch_id = f"batch-{number}"
        manifest_key = f"prefix/{batch_id}.manifest.json"
        records = []
        for event in events:
            if event.kind is EventKind.POISON:
                dead_letters.append(
                    {"partition": event.partition, "offset": event.offset, "stage": "decode"}
                )
                continue
            records.append({"event_id": event.event_id, "outcome": event.expected_outcome})
            if event.kind is EventKind.INVALID:
                dead_letters.append(
                    {"partition": event.partition, "offset": event.offset, "stage": "validation"}
                )
            if event.kind in {EventKind.NEW, EventKind.UPDATE}:
                writes.append(
                    {"method": "contacts POST", "contact_id": event.contact_id, "changed": True}
                )
        results.append(
            {"batch_id": batch_id, "records": records, "s3": {"manifest_key": manifest_key}}
        )
        # A manifest lists one partition, so this one lists the batch's partition-0 offsets.
        manifests[manifest_key] = {
            "partition": 0,
            "upsert_offsets": [
                e.offset
                for e in events
                if e.partition == 0 and e.kind in {EventKind.NEW, EventKind.UPDATE}
            ],
            "deletes": [
                {"offset": e.offset}
                for e in events
                if e.partition == 0 and e.kind is EventKind.DELETE
            ],
        }

    contacts = [{"id": cid, "data": {"name": name}} for cid, name in workload.final_names.items()]
    deliveries = [
        {"webhook_id": r["batch_id"], "signature_valid": True, "status": 204, "body": r}
        for r in results
    ]
    return Collected(
        results=results,
        dead_letters=dead_letters,
        manifests=manifests,
        writes=writes,
        contacts=contacts,
        requests=[],
        rate_limit={"limit_per_minute": 300, "max_in_window": 12, "tokens": {}},
        deliveries=deliveries,
    )


def test_clean_run_scores_zero(workload: Workload) -> None:
    figures = compute_figures(workload, _clean_run(workload))

    assert figures.records == 400
    assert figures.accounted == 400
    counts = figures.counts()
    for name in DEFECT_FIGURES:
        assert counts[name] == 0, (name, figures.examples)


def test_missing_outcome_is_lost(workload: Workload) -> None:
    collected = _clean_run(workload)
    dropped = collected.results[0]["records"].pop(0)

    figures = compute_figures(workload, collected)

    assert figures.lost == 1
    assert figures.examples["lost"][0]["event_id"] == dropped["event_id"]


def test_event_in_two_batches_is_counted_twice(workload: Workload) -> None:
    collected = _clean_run(workload)
    repeated = collected.results[0]["records"][0]
    collected.results[1]["records"].append(dict(repeated))

    figures = compute_figures(workload, collected)

    assert figures.counted_twice == 1


def test_unchanged_write_is_written_twice(workload: Workload) -> None:
    collected = _clean_run(workload)
    collected.writes.append({**collected.writes[0], "changed": False})
    collected.writes.append({"method": "delete", "contact_id": "x", "changed": False})

    figures = compute_figures(workload, collected)

    assert figures.written_twice == 1


def test_offset_in_two_manifests_overlaps(workload: Workload) -> None:
    collected = _clean_run(workload)
    first = next(iter(collected.manifests.values()))
    collected.manifests["prefix/replayed.manifest.json"] = copy.deepcopy(first)

    figures = compute_figures(workload, collected)

    listed = len(first["upsert_offsets"]) + len(first["deletes"])
    assert listed > 0
    assert figures.archive_overlaps == listed


def test_undelivered_and_mislabelled_webhooks(workload: Workload) -> None:
    collected = _clean_run(workload)
    collected.deliveries[0]["status"] = 503
    collected.deliveries[1]["body"] = collected.results[2]

    figures = compute_figures(workload, collected)

    assert figures.webhook_batches_missing == 1
    assert figures.webhook_id_mismatch == 1


def test_repeated_result_with_other_outcomes_conflicts(workload: Workload) -> None:
    collected = _clean_run(workload)
    repeat = copy.deepcopy(collected.results[0])
    repeat["records"][0]["outcome"] = "rejected"
    collected.results.append(repeat)

    figures = compute_figures(workload, collected)

    assert figures.result_conflicts == 1
    assert figures.results_published == figures.batches + 1


def test_stale_contact_is_a_genesys_mismatch(workload: Workload) -> None:
    collected = _clean_run(workload)
    collected.contacts[0]["data"]["name"] = "stale"
    collected.contacts.append({"id": "never-sent", "data": {"name": "x"}})

    figures = compute_figures(workload, collected)

    assert figures.genesys_mismatches == 2


def test_rate_window_counts_every_token() -> None:
    requests = [
        {"time": f"2026-01-01T00:00:{second:02d}.000Z", "token_hash": token, "status": 200}
        for second, token in [(0, "a"), (10, "b"), (59, "a"), (59, "b")]
    ] + [{"time": "2026-01-01T00:01:00.000Z", "token_hash": "a", "status": 429}]

    assert max_requests_in_window(requests) == 4
