"""`stream-app webhook-resend` against the local stack's Kafka broker and CRM receiver.

Each test writes relay-style envelopes to its own uuid-named webhook dead-letter topic and runs
`python -m stream_app.cli webhook-resend --json` as a user runs it. The CRM receiver is shared by
the session, so the checks look only at deliveries with the test's batch ids.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from local_stack.stack import LocalStack
from schemas.import_result import ImportCounts, ImportResult, ImportTimings

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@dataclass(frozen=True)
class ResendTopic:
    """A webhook dead-letter topic of one test, and the environment that points the CLI at it."""

    name: str
    group: str
    env: dict[str, str]
    bootstrap_servers: str


@pytest.fixture
def resend_topic(local_stack: LocalStack) -> Iterator[ResendTopic]:
    suffix = uuid.uuid4().hex[:12]
    app_id = f"resend-{suffix}"
    env = {
        **os.environ,
        **local_stack.env(),
        "STREAM_APP_APP_ID": app_id,
        "STREAM_APP_TOPICS__WEBHOOK_DEAD_LETTER": f"webhook-dead-letter-{suffix}",
        "STREAM_APP_WEBHOOK__BACKOFF_INITIAL_SECONDS": "0.2",
    }
    topic = ResendTopic(
        name=env["STREAM_APP_TOPICS__WEBHOOK_DEAD_LETTER"],
        group=f"{app_id}-webhook-resend",
        env=env,
        bootstrap_servers=local_stack.kafka.bootstrap_servers,
    )
    asyncio.run(_create_topic(topic))
    yield topic


def import_result_body(batch_id: str) -> str:
    """Return an ImportResult as the worker publishes it, with a non-ASCII list name."""
    finished_at = datetime.now(tz=UTC)
    return ImportResult(
        batch_id=batch_id,
        contact_list=str(uuid.uuid4()),
        contact_list_name="Hôpital São José",
        counts=ImportCounts(
            received=2, valid=2, rejected=0, duplicates=0, submitted=2, imported=2, failed=0
        ),
        timings=ImportTimings(
            started_at=finished_at - timedelta(seconds=3), finished_at=finished_at
        ),
    ).model_dump_json()


def relay_envelope(body: str, failed_at: datetime | None = None) -> bytes:
    """Return the envelope the relay agent (stream_app/worker/app.py) writes for a failed `body`."""
    return json.dumps(
        {
            "batch_id": json.loads(body)["batch_id"],
            "attempts": 9,
            "last_status": 503,
            "last_error": "HTTP 503",
            "failed_at": (failed_at or datetime.now(tz=UTC)).isoformat(),
            "result": json.loads(body),
        }
    ).encode()


async def _create_topic(topic: ResendTopic) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=topic.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic.name, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


def publish(topic: ResendTopic, values: list[bytes]) -> None:
    async def send_all() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=topic.bootstrap_servers)
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(topic.name, value)
        finally:
            await producer.stop()

    asyncio.run(send_all())


def committed_offset(topic: ResendTopic) -> int | None:
    async def read() -> int | None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=topic.bootstrap_servers,
            group_id=topic.group,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            partition = TopicPartition(topic.name, 0)
            consumer.assign([partition])
            offset: int | None = await consumer.committed(partition)
            return offset
        finally:
            await consumer.stop()

    return asyncio.run(read())


def run_resend(topic: ResendTopic, *args: str) -> tuple[int, dict[str, Any], str]:
    """Run the command and return its exit code, its JSON summary and its stderr."""
    completed = subprocess.run(
        [sys.executable, "-m", "stream_app.cli", "webhook-resend", "--json", *args],
        env=topic.env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    assert lines, f"no summary on stdout (exit code {completed.returncode}):\n{completed.stderr}"
    return completed.returncode, json.loads(lines[-1]), completed.stderr


def deliveries_for(local_stack: LocalStack, batch_ids: set[str]) -> list[dict[str, Any]]:
    return [d for d in local_stack.crm.deliveries() if d["webhook_id"] in batch_ids]


def test_resend_after_crm_outage(local_stack: LocalStack, resend_topic: ResendTopic) -> None:
    bodies = {
        batch_id: import_result_body(batch_id) for batch_id in (str(uuid.uuid4()) for _ in range(3))
    }
    first, second, third = bodies
    # The relay dead-lettered the first batch twice, as after a replay of the results topic.
    publish(
        resend_topic,
        [relay_envelope(bodies[batch_id]) for batch_id in (first, second, first, third)],
    )
    batch_ids = set(bodies)

    local_stack.crm.fail_with(503)
    try:
        stop_code, stopped, _ = run_resend(resend_topic, "--retry-seconds", "1")
        keep_code, kept_going, keep_err = run_resend(
            resend_topic, "--retry-seconds", "1", "--keep-going"
        )
        offset_after_outage = committed_offset(resend_topic)
    finally:
        local_stack.crm.recover()
    during_outage = deliveries_for(local_stack, batch_ids)

    # By default the run stops at the first failed delivery.
    assert stop_code == 1
    assert stopped["read"] == 1
    assert stopped["failed"] == 1
    assert stopped["delivered"] == 0
    assert stopped["remaining"] == 3
    assert stopped["group"] == resend_topic.group
    # --keep-going tries each batch once and skips the repeat of a failed batch.
    assert keep_code == 1
    assert kept_going["read"] == 4
    assert kept_going["failed"] == 3
    assert kept_going["skipped"] == 1
    assert kept_going["delivered"] == 0
    assert kept_going["remaining"] == 0
    assert f"failed    {first} (partition 0, offset 0): HTTP 503" in keep_err
    assert f"skipped   {first} (partition 0, offset 2): failed earlier in this run" in keep_err
    assert offset_after_outage is None
    assert during_outage
    assert all(d["status"] == 503 for d in during_outage)

    code, recovered, err = run_resend(resend_topic)

    assert code == 0, err
    assert recovered == {
        "topic": resend_topic.name,
        "group": resend_topic.group,
        "read": 4,
        "delivered": 3,
        "failed": 0,
        "skipped": 1,
        "invalid": 0,
        "remaining": 0,
    }
    assert committed_offset(resend_topic) == 4
    accepted = [d for d in deliveries_for(local_stack, batch_ids) if d["status"] == 204]
    assert Counter(d["webhook_id"] for d in accepted) == dict.fromkeys(batch_ids, 1)
    for delivery in accepted:
        assert delivery["signature_valid"], delivery
        assert delivery["body"] == json.loads(bodies[delivery["webhook_id"]])

    received_before = len(deliveries_for(local_stack, batch_ids))
    code, again, err = run_resend(resend_topic)

    assert code == 0, err
    assert again["read"] == 0
    assert again["delivered"] == 0
    assert len(deliveries_for(local_stack, batch_ids)) == received_before


def test_resend_since_blocks_commit(local_stack: LocalStack, resend_topic: ResendTopic) -> None:
    old, new_first, new_second = (str(uuid.uuid4()) for _ in range(3))
    now = datetime.now(tz=UTC)
    publish(
        resend_topic,
        [
            relay_envelope(import_result_body(old), failed_at=now - timedelta(days=2)),
            relay_envelope(import_result_body(new_first), failed_at=now),
            relay_envelope(import_result_body(new_second), failed_at=now),
        ],
    )
    since = (now - timedelta(hours=1)).isoformat()

    code, filtered, err = run_resend(resend_topic, "--since", since)

    assert code == 0, err
    assert filtered["delivered"] == 2
    assert filtered["skipped"] == 1
    assert f"skipped   {old} (partition 0, offset 0): failed at" in err
    # The left-out first message stops the commit at offset 0, so the group commits nothing.
    assert committed_offset(resend_topic) is None

    code, full, err = run_resend(resend_topic)

    assert code == 0, err
    assert full["delivered"] == 3
    assert committed_offset(resend_topic) == 3
    received = Counter(
        d["webhook_id"]
        for d in deliveries_for(local_stack, {old, new_first, new_second})
        if d["signature_valid"]
    )
    # The full run sends the filtered run's two batches again, which a CRM drops by webhook-id.
    assert received == {old: 1, new_first: 2, new_second: 2}


def test_resend_batch_id_and_invalid(local_stack: LocalStack, resend_topic: ResendTopic) -> None:
    selected, other = str(uuid.uuid4()), str(uuid.uuid4())
    publish(
        resend_topic,
        [
            b"not a dead-letter envelope",
            relay_envelope(import_result_body(other)),
            relay_envelope(import_result_body(selected)),
        ],
    )

    code, summary, err = run_resend(resend_topic, "--batch-id", selected)

    # The invalid message is reported and committed, and the left-out batch stops the commit.
    assert code == 1
    assert summary["read"] == 3
    assert summary["invalid"] == 1
    assert summary["skipped"] == 1
    assert summary["delivered"] == 1
    assert "invalid   - (partition 0, offset 0): the value is not JSON" in err
    assert committed_offset(resend_topic) == 1
    received = [d["webhook_id"] for d in deliveries_for(local_stack, {selected, other})]
    assert received == [selected]


def test_resend_missing_topic_exits_2(local_stack: LocalStack) -> None:
    missing = f"webhook-dead-letter-missing-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        **local_stack.env(),
        "STREAM_APP_TOPICS__WEBHOOK_DEAD_LETTER": missing,
    }

    completed = subprocess.run(
        [sys.executable, "-m", "stream_app.cli", "webhook-resend"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 2
    assert f"stream-app webhook-resend: error: topic {missing!r} not found" in completed.stderr
    assert "Traceback" not in completed.stderr
