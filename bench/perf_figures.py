"""Pure computations of the performance benchmark: percentiles, time windows, joins and targets.

`bench.run` and `bench.scale` collect raw data (emulator write and request logs, produce
timestamps, worker log lines, /proc status text) and hand it to these functions. Nothing here
reads a clock, a file or the network, so tests/bench/test_run_figures.py checks every figure with
small hand-made inputs.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The worker logs this line while it classifies its first record, because the contact list is
# loaded on first use (stream_app.worker.lists.ContactListCache).
FIRST_RECORD_MARKER = "Loaded contact list"
# faust logs this once recovery is done and it starts fetching records (faust-streaming 0.15.3).
FETCHER_START_MARKER = "[^---Fetcher]: Starting"
# faust logs this after recovery, right before it starts fetching (faust-streaming 0.15.3).
WORKER_READY_MARKER = "[^---Recovery]: Worker ready"
# Part of the line the worker logs after it published a batch's import result
# (stream_app.pipeline.flush: "Batch ... (partition 0, offsets 0-999): 1000 received, ...").
BATCH_DONE_MARKER = " received, "

# "[2026-12-04 23:37:08,843] [5044] [INFO] ..." (faust) or "2026-12-04 23:37:06,244 INFO ..."
# (the stream-app CLI before faust takes over logging). Both are local time.
_LOG_TIME = re.compile(r"^\[?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]?")

# The emulator write-log method of a contact delete. The other methods create or change a contact.
DELETE_METHOD = "delete"


@dataclass(frozen=True)
class ProducedEvent:
    """A record that must lead to one emulator write: its contact id and Kafka timestamp."""

    contact_id: str
    timestamp_ms: int


@dataclass(frozen=True)
class LatencyJoin:
    """Latencies from Kafka timestamp to emulator write, and the events without a write."""

    latencies_ms: list[float]
    unmatched: int


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile: the smallest value with `fraction` of values at or below.

    Returns None for no values. Raises ValueError unless 0 < fraction <= 1.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(fraction * len(ordered))
    return ordered[rank - 1]


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float | int | None]:
    """Return count, p50, p99 and max of the latencies, in milliseconds rounded to 0.1."""
    p50 = percentile(latencies_ms, 0.50)
    p99 = percentile(latencies_ms, 0.99)
    return {
        "count": len(latencies_ms),
        "p50_ms": _round(p50),
        "p99_ms": _round(p99),
        "max_ms": _round(max(latencies_ms)) if latencies_ms else None,
    }


def parse_emulator_time(text: str) -> float:
    """Return Unix seconds for an emulator log time such as 2026-12-04T23:37:08.843Z."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_log_time(line: str) -> float | None:
    """Return Unix seconds of a worker log line's local-time stamp, or None if it has none."""
    match = _LOG_TIME.match(line)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def first_consumed_time(lines: Iterable[str]) -> tuple[float, str] | None:
    """Return when the worker took its first record, and which log line shows it.

    The first record loads the contact list, so the first FIRST_RECORD_MARKER line is the best
    mark. Without it, the faust fetcher start is used, which comes a little earlier and so makes
    the throughput window longer, not shorter. Returns None when neither line is found.
    """
    fetcher_start: float | None = None
    for line in lines:
        if FIRST_RECORD_MARKER in line:
            moment = parse_log_time(line)
            if moment is not None:
                return moment, "first contact-list load (first record)"
        elif fetcher_start is None and FETCHER_START_MARKER in line:
            fetcher_start = parse_log_time(line)
    if fetcher_start is not None:
        return fetcher_start, "faust fetcher start"
    return None


def last_log_time(lines: Iterable[str], marker: str) -> float | None:
    """Return the time of the last line that contains `marker`, or None."""
    found: float | None = None
    for line in lines:
        if marker in line:
            moment = parse_log_time(line)
            if moment is not None:
                found = moment
    return found


def contact_writes(writes: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return the emulator writes that created or changed a contact, in write order."""
    return sorted(
        (write for write in writes if write.get("method") != DELETE_METHOD),
        key=lambda write: int(write["seq"]),
    )


def write_latencies(
    events: Sequence[ProducedEvent], writes: Iterable[Mapping[str, Any]]
) -> LatencyJoin:
    """Join each event with its contact's emulator write and return the latencies.

    The n-th event of a contact (in produce order) is matched with the n-th write of that contact
    (in the emulator's write order), and deletes are left out. Writes of contacts that no event
    names are ignored, so writes of an earlier phase do not disturb the join. The latency is the
    write time minus the event's Kafka timestamp.
    """
    writes_by_contact: dict[str, list[float]] = defaultdict(list)
    for write in contact_writes(writes):
        writes_by_contact[str(write["contact_id"])].append(parse_emulator_time(write["time"]))

    used: dict[str, int] = defaultdict(int)
    latencies: list[float] = []
    unmatched = 0
    for event in events:
        times = writes_by_contact.get(event.contact_id, [])
        position = used[event.contact_id]
        if position >= len(times):
            unmatched += 1
            continue
        used[event.contact_id] = position + 1
        latencies.append(times[position] * 1000 - event.timestamp_ms)
    return LatencyJoin(latencies, unmatched)


def last_write_time(writes: Iterable[Mapping[str, Any]], contact_ids: set[str]) -> float | None:
    """Return the Unix time of the last write of any of `contact_ids`, or None if there is none."""
    times = [
        parse_emulator_time(write["time"])
        for write in contact_writes(writes)
        if str(write["contact_id"]) in contact_ids
    ]
    return max(times) if times else None


def throughput_rps(records: int, start: float, end: float) -> float | None:
    """Return records per second over [start, end], or None when the window is empty or negative."""
    if end <= start:
        return None
    return records / (end - start)


def per_thousand(count: int, total: int) -> float | None:
    """Return `count` per 1000 of `total`, or None when `total` is 0."""
    if total <= 0:
        return None
    return count * 1000 / total


def steady_state_requests(requests: Iterable[Mapping[str, Any]]) -> int:
    """Count the requests a running worker repeats per batch: all but token and list reads.

    A worker requests a token and reads each contact list once at start (and again when they
    expire, after hours), so those requests are not part of the steady state.
    """
    return sum(
        1
        for request in requests
        if request.get("path") != "/oauth/token" and request.get("method") != "GET"
    )


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def end_offsets(positions: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Return, per partition, the offset after the last of these (partition, offset) pairs."""
    ends: dict[int, int] = {}
    for partition, offset in positions:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    return ends


def offsets_reached(committed: Mapping[int, int], ends: Mapping[int, int]) -> bool:
    """Return True when every partition's committed offset is at or past its end offset."""
    return all(committed.get(partition, 0) >= end for partition, end in ends.items())


def parse_proc_status(text: str) -> dict[str, int]:
    """Return the kB fields of /proc/PID/status (VmRSS, VmHWM, ...) as integers."""
    fields: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            fields[name] = int(parts[0])
    return fields


@dataclass(frozen=True)
class Target:
    """One performance target: a figure, how it compares to a limit, and the limit."""

    name: str
    figure: str
    comparison: str  # ">=" or "<="
    limit: float
    description: str

    def check(self, figures: Mapping[str, Any]) -> dict[str, Any]:
        """Return the target's outcome, where `holds` is None when the figure was not measured."""
        value = figures.get(self.figure)
        holds: bool | None = None
        if isinstance(value, int | float):
            holds = value >= self.limit if self.comparison == ">=" else value <= self.limit
        return {
            "target": self.description,
            "figure": self.figure,
            "value": value,
            "limit": self.limit,
            "holds": holds,
        }


def run_targets(batch_max_seconds: float) -> list[Target]:
    """Return the targets that `python -m bench.run` measures."""
    return [
        Target(
            "throughput_vs_ceiling",
            "ratio_to_ceiling",
            ">=",
            0.70,
            "throughput at least 70 % of the ceiling",
        ),
        Target(
            "throughput_vs_peer", "ratio_to_peer", ">=", 1.5, "throughput at least 1.5x the peer"
        ),
        Target(
            "p99_at_half_max",
            "p99_ms",
            "<=",
            (batch_max_seconds + 1.0) * 1000,
            f"p99 latency at half the maximum throughput at most the batch time limit + 1 s "
            f"({batch_max_seconds + 1.0:g} s)",
        ),
        Target(
            "api_calls",
            "api_calls_per_1000_steady",
            "<=",
            1.02,
            "at most 1.02 Genesys API calls per 1000 contacts in steady state",
        ),
    ]


def scale_targets() -> list[Target]:
    """Return the targets that `python -m bench.scale` measures (meant for 10M entries)."""
    return [
        Target("peak_rss", "peak_rss_mb", "<=", 400.0, "worker peak RSS at most 400 MB"),
        Target(
            "state_bytes",
            "disk_bytes_per_entry",
            "<=",
            100.0,
            "at most 100 bytes on disk per dedupe entry",
        ),
        Target(
            "restart",
            "kill_to_processing_s",
            "<=",
            20.0,
            "processing again within 20 s after kill -9",
        ),
    ]


def check_targets(targets: Sequence[Target], figures: Mapping[str, Any]) -> dict[str, Any]:
    """Return each target's outcome by name."""
    return {target.name: target.check(figures) for target in targets}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
