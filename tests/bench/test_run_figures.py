"""The performance benchmark's pure figures on hand-made inputs: percentiles, windows, joins."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.intake_steps import ReferenceConfig
from bench.perf_figures import (
    FETCHER_START_MARKER,
    FIRST_RECORD_MARKER,
    ProducedEvent,
    Target,
    check_targets,
    end_offsets,
    first_consumed_time,
    last_write_time,
    latency_summary,
    offsets_reached,
    parse_emulator_time,
    parse_log_time,
    parse_proc_status,
    per_thousand,
    percentile,
    ratio,
    run_targets,
    steady_state_requests,
    throughput_rps,
    write_latencies,
)


def _write(
    seq: int, contact_id: str, seconds: float, method: str = "contacts POST"
) -> dict[str, Any]:
    """Return an emulator write-log entry for `seconds` after the Unix epoch."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return {"seq": seq, "contact_id": contact_id, "time": stamp, "method": method}


# Percentiles


def test_percentile_nearest_rank() -> None:
    values = [float(number) for number in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose

    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile(values, 0.001) == 1.0


def test_percentile_small_inputs() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.99) == 7.0
    # Four values: rank ceil(0.5 * 4) = 2 and ceil(0.99 * 4) = 4.
    assert percentile([40.0, 10.0, 30.0, 20.0], 0.5) == 20.0
    assert percentile([40.0, 10.0, 30.0, 20.0], 0.99) == 40.0


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_percentile_rejects_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        percentile([1.0], fraction)


def test_latency_summary_fields() -> None:
    summary = latency_summary([40.0, 10.0, 30.0, 20.0])

    assert summary["count"] == 4
    assert summary["p50_ms"] == 20.0
    assert summary["p99_ms"] == 40.0
    assert summary["max_ms"] == 40.0


def test_latency_summary_empty() -> None:
    summary = latency_summary([])

    assert summary["count"] == 0
    assert summary["p50_ms"] is None
    assert summary["p99_ms"] is None
    assert summary["max_ms"] is None


# Time stamps and the throughput window


def test_emulator_time_is_utc() -> None:
    assert parse_emulator_time("1970-01-01T00:00:01.500Z") == 1.5
    assert parse_emulator_time("2026-12-04T23:37:08.843Z") == pytest.approx(
        datetime.fromisoformat("2026-12-04T23:37:08.843+00:00").timestamp()
    )


def test_log_time_formats() -> None:
    expected = datetime(2026, 12, 4, 23, 37, 8, 843_000).timestamp()

    assert parse_log_time("[2026-12-04 23:37:08,843] [5044] [INFO] Loaded") == expected
    assert parse_log_time("2026-12-04 23:37:08,843 INFO __main__ Settings: {}") == expected
    assert parse_log_time("+Topic Partition Set----+") is None


def test_first_consumed_prefers_first_record() -> None:
    lines = [
        "[2026-12-04 23:37:08,638] [1] [INFO] " + FETCHER_START_MARKER + "... ",
        "[2026-12-04 23:37:08,843] [1] [INFO] " + FIRST_RECORD_MARKER + " abc (list): 5 columns",
        "[2026-12-04 23:39:00,000] [1] [INFO] " + FIRST_RECORD_MARKER + " abc (list): 5 columns",
    ]

    found = first_consumed_time(lines)

    assert found is not None
    assert found[0] == datetime(2026, 12, 4, 23, 37, 8, 843_000).timestamp()
    assert "first record" in found[1]


def test_first_consumed_falls_back_to_fetcher() -> None:
    lines = ["[2026-12-04 23:37:08,638] [1] [INFO] " + FETCHER_START_MARKER + "... "]

    found = first_consumed_time(lines)

    assert found is not None
    assert found[0] == datetime(2026, 12, 4, 23, 37, 8, 638_000).timestamp()
    assert "fetcher" in found[1]


def test_first_consumed_missing() -> None:
    assert first_consumed_time(["[2026-12-04 23:37:08,638] [1] [INFO] Starting"]) is None


def test_throughput_window() -> None:
    assert throughput_rps(1000, 10.0, 20.0) == 100.0
    assert throughput_rps(1000, 20.0, 20.0) is None
    assert throughput_rps(1000, 21.0, 20.0) is None


def test_last_write_of_named_contacts() -> None:
    writes = [
        _write(1, "a", 100.0),
        _write(2, "b", 105.0),
        _write(3, "other", 200.0),
        _write(4, "a", 300.0, method="delete"),
    ]

    assert last_write_time(writes, {"a", "b"}) == pytest.approx(105.0)
    assert last_write_time(writes, {"missing"}) is None


# The latency join


def test_latency_join_matches_in_order() -> None:
    events = [
        ProducedEvent("a", 1000),
        ProducedEvent("b", 2000),
        ProducedEvent("a", 3000),  # an update of a: its second write
    ]
    writes = [
        _write(2, "b", 2.5),
        _write(1, "a", 1.25),
        _write(3, "a", 4.0),
        _write(4, "earlier-phase", 0.5),
    ]

    join = write_latencies(events, writes)

    assert join.unmatched == 0
    assert join.latencies_ms == pytest.approx([250.0, 500.0, 1000.0])


def test_latency_join_counts_unmatched() -> None:
    events = [ProducedEvent("a", 1000), ProducedEvent("a", 2000), ProducedEvent("c", 1000)]
    writes = [_write(1, "a", 1.5), _write(2, "c", 9.0, method="delete")]

    join = write_latencies(events, writes)

    assert join.latencies_ms == pytest.approx([500.0])
    assert join.unmatched == 2


# Offsets, ratios, /proc


def test_end_offsets_per_partition() -> None:
    ends = end_offsets([(0, 0), (1, 0), (0, 5), (0, 3), (2, 9)])

    assert ends == {0: 6, 1: 1, 2: 10}


def test_offsets_reached() -> None:
    ends = {0: 6, 1: 1}

    assert offsets_reached({0: 6, 1: 1}, ends)
    assert offsets_reached({0: 7, 1: 1, 3: 0}, ends)
    assert not offsets_reached({0: 5, 1: 1}, ends)
    assert not offsets_reached({0: 6}, ends)


def test_per_thousand_and_ratio() -> None:
    assert per_thousand(24, 18_000) == pytest.approx(24 * 1000 / 18_000)
    assert per_thousand(3, 0) is None
    assert ratio(50.0, 200.0) == 0.25
    assert ratio(None, 200.0) is None
    assert ratio(50.0, 0.0) is None


def test_proc_status_fields() -> None:
    text = "Name:\tpython\nVmHWM:\t  183296 kB\nVmRSS:\t  150000 kB\nThreads:\t12\n"

    fields = parse_proc_status(text)

    assert fields == {"VmHWM": 183_296, "VmRSS": 150_000}


# Targets


def test_target_comparisons() -> None:
    at_least = Target("t1", "ratio", ">=", 0.7, "at least 0.7")
    at_most = Target("t2", "p99", "<=", 6000.0, "at most 6000")

    assert at_least.check({"ratio": 0.7})["holds"] is True
    assert at_least.check({"ratio": 0.69})["holds"] is False
    assert at_most.check({"p99": 6000.0})["holds"] is True
    assert at_most.check({"p99": 6000.1})["holds"] is False
    assert at_most.check({"p99": None})["holds"] is None
    assert at_most.check({})["holds"] is None


def test_run_targets_use_batch_time() -> None:
    outcomes = check_targets(run_targets(5.0), {"p99_ms": 5999.0, "ratio_to_peer": 1.2})

    assert outcomes["p99_at_half_max"]["limit"] == 6000.0
    assert outcomes["p99_at_half_max"]["holds"] is True
    assert outcomes["throughput_vs_peer"]["holds"] is False
    assert outcomes["throughput_vs_ceiling"]["holds"] is None


def test_reference_config_round_trip(tmp_path: Path) -> None:
    config = ReferenceConfig(
        topic="contact-events",
        end_offsets={0: 10, 3: 4},
        schema={"list_id": "l1", "name": "n", "column_names": ["id", "phone"]},
        work_dir=str(tmp_path),
    )
    path = tmp_path / "config.json"

    config.write(path)
    read = ReferenceConfig.read(path)

    assert read == config
    assert read.records == 14
    assert read.contact_list().column_names == ("id", "phone")


def test_steady_state_requests_skip_start_up() -> None:
    requests = [
        {"method": "POST", "path": "/oauth/token"},
        {"method": "GET", "path": "/api/v2/outbound/contactlists"},
        {"method": "POST", "path": "/api/v2/outbound/contactlists/L/contacts"},
        {"method": "POST", "path": "/api/v2/outbound/contactlists/L/contacts"},
        {"method": "DELETE", "path": "/api/v2/outbound/contactlists/L/contacts"},
    ]

    assert steady_state_requests(requests) == 3
    assert steady_state_requests([]) == 0
