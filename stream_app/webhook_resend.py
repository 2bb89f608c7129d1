"""Re-send import results from the webhook dead-letter topic to the CRM webhook.

The relay agent gives up on a result after `webhook.retry_seconds` and writes the envelope
{batch_id, attempts, last_status, last_error, failed_at, result} to the webhook dead-letter topic.
`stream-app webhook-resend` reads those envelopes and posts each result again with
`WebhookSender`, so an operator can recover after a CRM outage. The `webhook-id` is the envelope's
batch_id, as on the first attempt, so the CRM can drop a result it already has. The body is the
result encoded as compact JSON (see `result_body`), signed with the current secret.

Progress is kept in a Kafka consumer group (`ResendOptions.group`, by default
`<app_id>-webhook-resend`), so a second run starts after what the first one delivered instead of
re-sending the whole topic. In each partition the group's offset is committed only up to the first
message that is not done. A message is done when its batch was delivered in this run, when it
repeats a batch delivered earlier in this run, or when it is not a valid envelope, because no later
run could deliver it either. It follows that:

- a failed delivery stays uncommitted and the next run sends it again, together with every later
  message of its partition, including those this run delivered;
- a message that the `since` or `batch_ids` filter leaves out also stops the commit there, so a
  filtered run never marks an unsent result as done;
- a group name that has no committed offsets starts at the beginning of the topic, which is how an
  operator re-sends everything.

A run reads up to the end offsets the topic had when it started. It stops at the first failed
delivery unless `keep_going` is set, because a CRM that failed one delivery for `retry_seconds`
is likely to fail the next one too.

NOTE: the consumer assigns the partitions itself and uses the group only to store offsets, so
Kafka does not stop two runs with the same group from sending the same batches at the same time.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from stream_app.errors import ConfigurationError
from stream_app.settings import KafkaSettings, Settings
from stream_app.webhook import DeliveryOutcome, WebhookSender

logger = logging.getLogger(__name__)

# A run that receives no message for this long before reaching the end offsets stops and counts
# the rest as remaining. A broker that has the messages returns them within one poll, so this only
# fires when the broker stops responding.
IDLE_TIMEOUT_SECONDS = 30.0
POLL_TIMEOUT_MS = 1000
# aiokafka 0.14 raises RecordTooLargeError for a record larger than the fetch size per partition,
# unless the broker returns it as the first batch of a fetch. The relay writes each envelope with
# faust's producer, whose max request size defaults to 1,000,000 bytes, so 8 MiB leaves headroom.
MAX_PARTITION_FETCH_BYTES = 8 * 1024 * 1024


class InvalidEnvelopeError(ValueError):
    """A webhook dead-letter message that contains no result that could be delivered."""


@dataclass(frozen=True)
class DeadLetterEnvelope:
    """The parts of a webhook dead-letter envelope that a re-send needs."""

    batch_id: str
    body: str
    failed_at: datetime | None


class Status(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"
    INVALID = "invalid"


@dataclass(frozen=True)
class MessageReport:
    """The outcome of one message of the dead-letter topic in a run."""

    partition: int
    offset: int
    batch_id: str | None
    status: Status
    detail: str

    def format(self) -> str:
        return (
            f"{self.status:<9} {self.batch_id or '-'} "
            f"(partition {self.partition}, offset {self.offset}): {self.detail}"
        )


@dataclass(frozen=True)
class ResendSummary:
    """Message counts of one run.

    `remaining` counts the offsets left unread when the run stopped before the end offsets.
    """

    topic: str
    group: str
    read: int
    delivered: int
    failed: int
    skipped: int
    invalid: int
    remaining: int

    @property
    def complete(self) -> bool:
        """True when every message up to the end offsets was read and none failed or was invalid."""
        return self.failed == 0 and self.invalid == 0 and self.remaining == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        return (
            f"{self.topic} (group {self.group}): {self.read} read, {self.delivered} delivered, "
            f"{self.failed} failed, {self.skipped} skipped, {self.invalid} invalid, "
            f"{self.remaining} remaining"
        )


@dataclass(frozen=True)
class ResendFilter:
    """The selection of envelopes a run re-sends. The default selects every envelope."""

    since: datetime | None = None
    batch_ids: frozenset[str] = frozenset()

    def exclusion_reason(self, batch_id: str, failed_at: datetime) -> str | None:
        """Return why the envelope is left out, or None when the filter selects it."""
        if self.batch_ids and batch_id not in self.batch_ids:
            return "not one of the --batch-id values"
        if self.since is not None and failed_at < self.since:
            return f"failed at {failed_at.isoformat()}, before --since"
        return None


@dataclass(frozen=True)
class ResendOptions:
    """Options of one run. A `retry_seconds` of None keeps the `webhook.retry_seconds` setting."""

    group: str
    resend_filter: ResendFilter = ResendFilter()
    retry_seconds: float | None = None
    keep_going: bool = False


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 date or time, taking a value without a UTC offset as UTC.

    Raises ValueError for text that is not ISO 8601.
    """
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def result_body(result: Mapping[str, Any]) -> str:
    """Encode a result as the webhook body, in compact JSON with non-ASCII characters unescaped.

    The envelope contains the result as a parsed JSON value, not the bytes the relay posted. The
    relay posted pydantic's `model_dump_json()` output, which this encoding reproduces byte for
    byte except for some floats (pydantic writes 1e-7 where json writes 1e-07). ImportResult has
    no float field.
    """
    return json.dumps(result, separators=(",", ":"), ensure_ascii=False)


def parse_envelope(value: bytes | None) -> DeadLetterEnvelope:
    """Parse one message value of the webhook dead-letter topic.

    Raises InvalidEnvelopeError when the value is not a JSON object with a non-empty batch_id and
    a result object whose own batch_id is the same. An unreadable failed_at becomes None.
    """
    if value is None:
        raise InvalidEnvelopeError("the message has no value")
    try:
        envelope = json.loads(value)
    except ValueError as exc:
        raise InvalidEnvelopeError(f"the value is not JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise InvalidEnvelopeError("the value is not a JSON object")

    batch_id = envelope.get("batch_id")
    if not isinstance(batch_id, str) or not batch_id:
        raise InvalidEnvelopeError("batch_id is missing or empty")
    result = envelope.get("result")
    if not isinstance(result, dict):
        raise InvalidEnvelopeError("result is missing or not a JSON object")
    if result.get("batch_id") != batch_id:
        raise InvalidEnvelopeError(
            f"result.batch_id {result.get('batch_id')!r} differs from batch_id {batch_id!r}"
        )

    failed_at: datetime | None = None
    if isinstance(envelope.get("failed_at"), str):
        try:
            failed_at = parse_time(envelope["failed_at"])
        except ValueError:
            failed_at = None
    return DeadLetterEnvelope(batch_id=batch_id, body=result_body(result), failed_at=failed_at)


class ResendProgress:
    """The counts, the batch ids seen and the offset each partition may commit, for one run.

    `start_offsets` maps each partition to the offset the run starts reading at. The messages of a
    partition must be recorded in offset order, because a partition's commit offset only moves
    past a message when every earlier message of the run is done.
    """

    def __init__(self, start_offsets: Mapping[int, int], resend_filter: ResendFilter) -> None:
        self.resend_filter = resend_filter
        self._commit_offsets = dict(start_offsets)
        self._blocked_partitions: set[int] = set()
        self._delivered_ids: set[str] = set()
        self._failed_ids: set[str] = set()
        self._counts = dict.fromkeys(Status, 0)

    def commit_offset(self, partition: int) -> int:
        """Return the offset the consumer group may commit for `partition`."""
        return self._commit_offsets[partition]

    def check_skip(
        self, partition: int, offset: int, envelope: DeadLetterEnvelope, failed_at: datetime
    ) -> MessageReport | None:
        """Record and return a skip when the envelope is not to be sent, or return None to send it.

        `failed_at` is the envelope's failed_at, or the message timestamp when it has none.
        """
        batch_id = envelope.batch_id
        if batch_id in self._delivered_ids:
            return self._record(
                MessageReport(
                    partition, offset, batch_id, Status.SKIPPED, "delivered earlier in this run"
                ),
                done=True,
            )
        if batch_id in self._failed_ids:
            # Sending it again would most likely fail again and take another retry_seconds.
            return self._record(
                MessageReport(
                    partition, offset, batch_id, Status.SKIPPED, "failed earlier in this run"
                ),
                done=False,
            )
        reason = self.resend_filter.exclusion_reason(batch_id, failed_at)
        if reason is not None:
            return self._record(
                MessageReport(partition, offset, batch_id, Status.SKIPPED, reason), done=False
            )
        return None

    def record_delivery(
        self, partition: int, offset: int, batch_id: str, outcome: DeliveryOutcome
    ) -> MessageReport:
        attempts = f"{outcome.attempts} attempt{'s' if outcome.attempts != 1 else ''}"
        if outcome.delivered:
            self._delivered_ids.add(batch_id)
            detail = f"HTTP {outcome.last_status} after {attempts}"
            report = MessageReport(partition, offset, batch_id, Status.DELIVERED, detail)
        else:
            self._failed_ids.add(batch_id)
            detail = f"{outcome.last_error} after {attempts}"
            report = MessageReport(partition, offset, batch_id, Status.FAILED, detail)
        return self._record(report, done=outcome.delivered)

    def record_invalid(self, partition: int, offset: int, error: str) -> MessageReport:
        return self._record(
            MessageReport(partition, offset, None, Status.INVALID, error), done=True
        )

    def summary(self, topic: str, group: str, remaining: int) -> ResendSummary:
        return ResendSummary(
            topic=topic,
            group=group,
            read=sum(self._counts.values()),
            delivered=self._counts[Status.DELIVERED],
            failed=self._counts[Status.FAILED],
            skipped=self._counts[Status.SKIPPED],
            invalid=self._counts[Status.INVALID],
            remaining=remaining,
        )

    def _record(self, report: MessageReport, *, done: bool) -> MessageReport:
        self._counts[report.status] += 1
        if not done:
            self._blocked_partitions.add(report.partition)
        elif report.partition not in self._blocked_partitions:
            self._commit_offsets[report.partition] = report.offset + 1
        return report


def kafka_client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Return the aiokafka keyword arguments that connect to `kafka`, with its SASL and TLS options.

    NOTE: the tests check these arguments but run only against a PLAINTEXT broker.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in {"SSL", "SASL_SSL"}:
        context = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        )
        if kafka.ssl_certfile:
            context.load_cert_chain(
                str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None
            )
        options["ssl_context"] = context
    if kafka.security_protocol.startswith("SASL"):
        # aiokafka takes the SCRAM credentials in the sasl_plain_* arguments too.
        options["sasl_mechanism"] = kafka.sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = (
            kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        )
    return options


async def resend_dead_letters(
    settings: Settings,
    options: ResendOptions,
    on_report: Callable[[MessageReport], None],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ResendSummary:
    """Re-send the webhook dead-letter topic up to its current end offsets, as the module describes.

    Calls `on_report` once per message read. Raises ConfigurationError when the topic does not
    exist, ConnectionError when Kafka cannot be reached, and ValueError without a webhook URL.
    """
    topic = settings.topics.webhook_dead_letter
    webhook_settings = settings.webhook
    if options.retry_seconds is not None:
        webhook_settings = webhook_settings.model_copy(
            update={"retry_seconds": options.retry_seconds}
        )
    # The sender checks the webhook URL and secret, so a missing one fails before any Kafka call.
    async with WebhookSender(webhook_settings, transport=transport) as sender:
        partitions = await _topic_partitions(settings.kafka, topic)
        consumer = AIOKafkaConsumer(
            group_id=options.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES,
            **kafka_client_options(settings.kafka),
        )
        await _start_client(consumer, settings.kafka)
        try:
            consumer.assign(partitions)
            return await _resend_partitions(
                consumer, sender, partitions, topic=topic, options=options, on_report=on_report
            )
        finally:
            await consumer.stop()


async def _resend_partitions(
    consumer: AIOKafkaConsumer,
    sender: WebhookSender,
    partitions: list[TopicPartition],
    *,
    topic: str,
    options: ResendOptions,
    on_report: Callable[[MessageReport], None],
) -> ResendSummary:
    end_offsets: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    # position() is the group's committed offset, or the earliest offset for a new group.
    next_offsets = {tp.partition: await consumer.position(tp) for tp in partitions}
    committed = dict(next_offsets)
    progress = ResendProgress(next_offsets, options.resend_filter)
    logger.info(
        "Reading %s from offsets %s up to %s with consumer group %s",
        topic,
        {tp.partition: next_offsets[tp.partition] for tp in partitions},
        {tp.partition: offset for tp, offset in end_offsets.items()},
        options.group,
    )

    pending = [tp for tp in partitions if next_offsets[tp.partition] < end_offsets[tp]]
    last_message_at = time.monotonic()
    stopped = False
    while pending and not stopped:
        batches = await consumer.getmany(*pending, timeout_ms=POLL_TIMEOUT_MS)
        if batches:
            last_message_at = time.monotonic()
        elif time.monotonic() - last_message_at > IDLE_TIMEOUT_SECONDS:
            logger.warning(
                "No message from %s for %.0f s before its end offsets; stopping",
                topic,
                IDLE_TIMEOUT_SECONDS,
            )
            break

        for tp, messages in batches.items():
            for message in messages:
                if message.offset >= end_offsets[tp]:
                    break
                report = await _resend_message(message, progress, sender)
                next_offsets[tp.partition] = message.offset + 1
                on_report(report)

                commit_offset = progress.commit_offset(tp.partition)
                if commit_offset > committed[tp.partition]:
                    await consumer.commit({tp: commit_offset})
                    committed[tp.partition] = commit_offset
                if report.status is Status.FAILED and not options.keep_going:
                    stopped = True
                    break
            if stopped:
                break

        if not stopped:
            pending = [tp for tp in pending if await consumer.position(tp) < end_offsets[tp]]

    remaining = sum(end_offsets[tp] - next_offsets[tp.partition] for tp in pending)
    return progress.summary(topic, options.group, remaining)


async def _resend_message(
    message: Any, progress: ResendProgress, sender: WebhookSender
) -> MessageReport:
    partition: int = message.partition
    offset: int = message.offset
    try:
        envelope = parse_envelope(message.value)
    except InvalidEnvelopeError as exc:
        return progress.record_invalid(partition, offset, str(exc))

    failed_at = envelope.failed_at or datetime.fromtimestamp(message.timestamp / 1000, tz=UTC)
    skipped = progress.check_skip(partition, offset, envelope, failed_at)
    if skipped is not None:
        return skipped
    outcome = await sender.deliver(envelope.batch_id, envelope.body)
    return progress.record_delivery(partition, offset, envelope.batch_id, outcome)


async def _topic_partitions(kafka: KafkaSettings, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(**kafka_client_options(kafka))
    await _start_client(admin, kafka)
    try:
        # list_topics does not auto-create a missing topic, unlike a metadata request naming it.
        if topic not in await admin.list_topics():
            raise ConfigurationError(
                f"topic {topic!r} not found on {kafka.bootstrap_servers}. Check "
                "STREAM_APP_TOPICS__WEBHOOK_DEAD_LETTER and STREAM_APP_KAFKA_BOOTSTRAP_SERVERS"
            )
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [
        TopicPartition(topic, partition["partition"])
        for item in described
        for partition in item["partitions"]
    ]


async def _start_client(client: Any, kafka: KafkaSettings) -> None:
    try:
        await client.start()
    except KafkaConnectionError as exc:
        raise ConnectionError(
            f"cannot connect to Kafka at {kafka.bootstrap_servers} ({exc}). Check "
            "STREAM_APP_KAFKA_BOOTSTRAP_SERVERS and that the broker is running"
        ) from exc
