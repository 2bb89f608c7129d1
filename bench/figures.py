"""Reliability figures of a fault run, computed from everything the run left behind.

`TopicCollector` reads the results and dead-letter topics from the beginning, without a consumer
group, and keeps a running count of the input messages that have an outcome. `ManifestStore`
collects the batch manifests from S3; it can take snapshots before an outage, because the local S3
server (moto) loses its objects when it restarts. `compute_figures` is pure: it compares the
planned workload with everything collected and returns `RunFigures`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.workload import PlannedEvent, Workload

# Dead-letter stages of records that never joined a batch, so they have no import result.
EARLY_STAGES = frozenset({"decode", "routing"})
EXAMPLES_PER_FIGURE = 5
RATE_WINDOW_SECONDS = 60.0
# Key that TopicCollector adds to each result body: [partition, offset] in the results topic.
RESULT_POSITION_KEY = "_results_topic_position"


@dataclass
class RunFigures:
    """Reliability figures of one run; every count except the rate figures should be 0."""

    records: int
    accounted: int
    lost: int
    counted_twice: int
    written_twice: int
    archive_overlaps: int
    webhook_batches_missing: int
    webhook_id_mismatch: int
    max_requests_per_minute: int
    limit_per_minute: int
    # Results that share a batch id but report different per-record outcomes.
    result_conflicts: int
    # Events whose outcomes differ from what the workload planned (a valid record rejected, ...).
    unexpected_outcomes: int
    # Records rejected in an import result without a record on the dead-letter topic.
    dead_letters_missing: int
    # Results whose S3 manifest was never seen in the bucket.
    manifests_missing: int
    # Contacts missing from the emulator, left over after a delete, or with stale content.
    genesys_mismatches: int
    # The emulator counts requests per access token; this counts every token of the run together.
    max_requests_per_minute_all_tokens: int
    requests_rejected_by_rate_limit: int
    batches: int
    results_published: int
    webhook_deliveries: int
    manifests: int
    emulator_writes: int
    examples: dict[str, list[Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def counts(self) -> dict[str, int]:
        """Return the figures without the examples, for one-line logs and assertion messages."""
        return {name: value for name, value in asdict(self).items() if name != "examples"}


@dataclass
class Collected:
    """Everything a run left in Kafka, S3, the Genesys emulator and the CRM receiver."""

    results: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    manifests: dict[str, dict[str, Any]]
    writes: list[dict[str, Any]]
    contacts: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    rate_limit: dict[str, Any]
    deliveries: list[dict[str, Any]]


class TopicCollector:
    """Reads the results and dead-letter topics and counts the input messages with an outcome."""

    def __init__(
        self,
        bootstrap_servers: str,
        results_topic: str,
        dead_letter_topic: str,
        partitions: int,
        workload: Workload,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.results_topic = results_topic
        self.dead_letter_topic = dead_letter_topic
        self.partitions = [
            TopicPartition(topic, partition)
            for topic in (results_topic, dead_letter_topic)
            for partition in range(partitions)
        ]
        self.results: list[dict[str, Any]] = []
        self.dead_letters: list[dict[str, Any]] = []
        self.accounted_positions: set[tuple[int, int]] = set()
        self.workload = workload
        self._positions_by_event_id: dict[str, tuple[int, int]] = {}
        self._input_positions: set[tuple[int, int]] = set()
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def accounted(self) -> int:
        return len(self.accounted_positions)

    async def start(self) -> None:
        """Start reading; call it once the workload is produced, so its offsets are known."""
        self._positions_by_event_id = {
            event_id: event.position for event_id, event in self.workload.by_event_id().items()
        }
        self._input_positions = set(self.workload.by_position())
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            enable_auto_commit=False,
            # The broker may restart during a run; retry metadata quickly once it is back.
            retry_backoff_ms=500,
        )
        await self._consumer.start()
        self._consumer.assign(self.partitions)
        await self._consumer.seek_to_beginning(*self.partitions)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def poll(self, timeout_ms: int = 300) -> None:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=10_000)
        for tp, messages in batches.items():
            for message in messages:
                self._add(tp.topic, tp.partition, message.offset, json.loads(message.value))

    async def drain(self, within: float = 60.0) -> bool:
        """Read until every partition's position reaches its end offset at the time of the call.

        Returns False when `within` seconds pass first.
        """
        assert self._consumer is not None
        end_offsets = await self._consumer.end_offsets(self.partitions)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            positions = {tp: await self._consumer.position(tp) for tp in self.partitions}
            if all(positions[tp] >= end for tp, end in end_offsets.items()):
                return True
            await self.poll()
        return False

    def _add(self, topic: str, partition: int, offset: int, body: dict[str, Any]) -> None:
        if topic == self.results_topic:
            # Where the result sits in the results topic, for reports on undelivered batches.
            body[RESULT_POSITION_KEY] = [partition, offset]
            self.results.append(body)
            for record in body.get("records", []):
                position = self._positions_by_event_id.get(record.get("event_id"))
                if position is not None:
                    self.accounted_positions.add(position)
            return

        self.dead_letters.append(body)
        position = (body.get("partition", -1), body.get("offset", -1))
        if position in self._input_positions:
            self.accounted_positions.add(position)


class ManifestStore:
    """Batch manifests by object key, merged over any number of bucket listings."""

    def __init__(self, s3_client: Any, bucket: str, prefix: str) -> None:
        self.s3_client = s3_client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/"
        self.manifests: dict[str, dict[str, Any]] = {}

    async def snapshot(self) -> int:
        """Read every manifest under the prefix that is not stored yet; return how many were added."""
        return await asyncio.to_thread(self._snapshot)

    def _snapshot(self) -> int:
        added = 0
        paginator = self.s3_client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if not key.endswith(".manifest.json") or key in self.manifests:
                    continue
                body = self.s3_client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                self.manifests[key] = json.loads(body)
                added += 1
        return added


def compute_figures(workload: Workload, collected: Collected) -> RunFigures:
    """Compare the planned workload with what the run left behind."""
    examples: dict[str, list[Any]] = defaultdict(list)

    def example(figure: str, item: Any) -> None:
        if len(examples[figure]) < EXAMPLES_PER_FIGURE:
            examples[figure].append(item)

    results_by_batch, result_conflicts = _results_by_batch(collected.results, example)
    batches_by_event_id: dict[str, set[str]] = defaultdict(set)
    outcomes_by_event_id: dict[str, set[str]] = defaultdict(set)
    for batch_id, result in results_by_batch.items():
        for record in result.get("records", []):
            batches_by_event_id[record["event_id"]].add(batch_id)
            outcomes_by_event_id[record["event_id"]].add(record["outcome"])

    dead_letters = {(body["partition"], body["offset"]): body for body in collected.dead_letters}
    early_positions = {
        position for position, body in dead_letters.items() if body.get("stage") in EARLY_STAGES
    }

    lost = counted_twice = unexpected = dead_letters_missing = 0
    for event in workload.events:
        outcomes = set(outcomes_by_event_id.get(event.event_id or "", set()))
        batch_ids = batches_by_event_id.get(event.event_id or "", set())
        if event.position in early_positions:
            outcomes.add("dead-letter")
        if not outcomes:
            lost += 1
            example("lost", _describe(event))
            continue
        in_early_dead_letter = event.position in early_positions
        if len(batch_ids) > 1 or (batch_ids and in_early_dead_letter):
            counted_twice += 1
            example("counted_twice", {**_describe(event), "batch_ids": sorted(batch_ids)})
        if outcomes != {event.expected_outcome}:
            unexpected += 1
            example("unexpected_outcomes", {**_describe(event), "outcomes": sorted(outcomes)})
        if "rejected" in outcomes and event.position not in dead_letters:
            dead_letters_missing += 1
            example("dead_letters_missing", _describe(event))

    archive_overlaps = _archive_overlaps(collected.manifests, example)
    manifests_missing = 0
    for result in results_by_batch.values():
        manifest_key = (result.get("s3") or {}).get("manifest_key")
        if manifest_key and manifest_key not in collected.manifests:
            manifests_missing += 1
            example("manifests_missing", manifest_key)

    written_twice = 0
    for write in collected.writes:
        if write["method"] != "delete" and not write["changed"]:
            written_twice += 1
            example("written_twice", write)

    webhook_missing, webhook_mismatch = _webhook_figures(
        results_by_batch, collected.deliveries, example
    )
    genesys_mismatches = _genesys_mismatches(workload.final_names, collected.contacts, example)

    tokens = collected.rate_limit.get("tokens", {})
    return RunFigures(
        records=len(workload.events),
        accounted=len(workload.events) - lost,
        lost=lost,
        counted_twice=counted_twice,
        written_twice=written_twice,
        archive_overlaps=archive_overlaps,
        webhook_batches_missing=webhook_missing,
        webhook_id_mismatch=webhook_mismatch,
        max_requests_per_minute=int(collected.rate_limit.get("max_in_window", 0)),
        limit_per_minute=int(collected.rate_limit.get("limit_per_minute", 0)),
        result_conflicts=result_conflicts,
        unexpected_outcomes=unexpected,
        dead_letters_missing=dead_letters_missing,
        manifests_missing=manifests_missing,
        genesys_mismatches=genesys_mismatches,
        max_requests_per_minute_all_tokens=max_requests_in_window(collected.requests),
        requests_rejected_by_rate_limit=sum(int(t.get("rejected", 0)) for t in tokens.values()),
        batches=len(results_by_batch),
        results_published=len(collected.results),
        webhook_deliveries=len(collected.deliveries),
        manifests=len(collected.manifests),
        emulator_writes=len(collected.writes),
        examples=dict(examples),
    )


def _describe(event: PlannedEvent) -> dict[str, Any]:
    return {
        "kind": event.kind.value,
        "event_id": event.event_id,
        "contact_id": event.contact_id,
        "partition": event.partition,
        "offset": event.offset,
    }


def _results_by_batch(
    results: list[dict[str, Any]], example: Any
) -> tuple[dict[str, dict[str, Any]], int]:
    """Keep the first result per batch id and count the batch ids whose repeats differ."""
    by_batch: dict[str, dict[str, Any]] = {}
    conflicting: set[str] = set()
    for result in results:
        batch_id = result["batch_id"]
        first = by_batch.setdefault(batch_id, result)
        if first is result or batch_id in conflicting:
            continue
        if _record_outcomes(first) != _record_outcomes(result):
            conflicting.add(batch_id)
            example("result_conflicts", batch_id)
    return by_batch, len(conflicting)


def _record_outcomes(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(record["event_id"], record["outcome"]) for record in result.get("records", [])]


def _archive_overlaps(manifests: dict[str, dict[str, Any]], example: Any) -> int:
    """Count the (partition, offset) pairs that two or more manifests list."""
    keys_by_position: dict[tuple[int, int], set[str]] = defaultdict(set)
    for key, manifest in manifests.items():
        partition = manifest["partition"]
        offsets = list(manifest.get("upsert_offsets", []))
        offsets += [delete["offset"] for delete in manifest.get("deletes", [])]
        for offset in offsets:
            keys_by_position[(partition, offset)].add(key)
    overlaps = 0
    for position, keys in sorted(keys_by_position.items()):
        if len(keys) > 1:
            overlaps += 1
            example("archive_overlaps", {"position": list(position), "keys": sorted(keys)})
    return overlaps


def _webhook_figures(
    results_by_batch: dict[str, dict[str, Any]], deliveries: list[dict[str, Any]], example: Any
) -> tuple[int, int]:
    delivered: set[str] = set()
    mismatches = 0
    for delivery in deliveries:
        if not delivery.get("signature_valid"):
            continue
        body = delivery.get("body") or {}
        if body.get("batch_id") != delivery.get("webhook_id"):
            mismatches += 1
            example(
                "webhook_id_mismatch",
                {"webhook_id": delivery.get("webhook_id"), "batch_id": body.get("batch_id")},
            )
        if 200 <= int(delivery.get("status") or 0) < 300:
            delivered.add(str(delivery.get("webhook_id")))
    missing = sorted(set(results_by_batch) - delivered)
    for batch_id in missing:
        position = results_by_batch[batch_id].get(RESULT_POSITION_KEY)
        example("webhook_batches_missing", {"batch_id": batch_id, "results_topic": position})
    return len(missing), mismatches


def _genesys_mismatches(
    final_names: dict[str, str], contacts: list[dict[str, Any]], example: Any
) -> int:
    stored = {contact["id"]: contact.get("data", {}).get("name") for contact in contacts}
    mismatches = 0
    for contact_id, name in final_names.items():
        if stored.get(contact_id) != name:
            mismatches += 1
            example(
                "genesys_mismatches",
                {"contact_id": contact_id, "expected": name, "stored": stored.get(contact_id)},
            )
    for contact_id in sorted(set(stored) - set(final_names)):
        mismatches += 1
        example("genesys_mismatches", {"contact_id": contact_id, "expected": None})
    return mismatches


def max_requests_in_window(requests: list[dict[str, Any]]) -> int:
    """Return the most authenticated, non-429 API requests in any 60 s, over all tokens.

    `requests` are entries of the emulator's request log (GET /_emulator/requests).
    """
    times = sorted(
        _timestamp(request["time"])
        for request in requests
        if request.get("token_hash") and request.get("status") != 429
    )
    best = start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= RATE_WINDOW_SECONDS:
            start += 1
        best = max(best, end - start + 1)
    return best


def _timestamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
