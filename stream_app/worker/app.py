"""The faust application: the intake agent, the time-based flush, and the webhook relay.

The agents are thin. The intake agent decodes each record, routes it to a contact list, maps and
validates its fields, takes the dedupe decision and adds it to an open batch. Closed batches go to
`BatchFlusher`, through a `FlushQueue` that flushes each partition's batches in order while the
intake reads on. Offsets are acknowledged by hand (`noack`), only after the record's outcome is
durable, and in offset order (`OffsetTracker`), so faust never commits an offset whose record
could still be lost. The relay agent posts each import result to the CRM webhook and dead-letters
it after the retry time.

Three changelogged tables, co-partitioned with the contact events:
- `dedupe`: the last accepted content per contact (see `stream_app.pipeline.dedupe`);
- `dedupe-channels` (global, optional): seed-style identity on phones and e-mails;
- `batches`: each batch's plan and progress (see `stream_app.pipeline.progress`), so records read
  again after a crash or rebalance form the same batches, and a resumed batch skips the steps
  that were done.

Design notes that follow from faust 0.15 behaviour:
- Table writes need a current event. Dedupe entries are written while the record's own event is
  current; batch progress and restores after a failed batch use `event_context`.
- Dedupe entries go through `ChangelogWriter`, which sends their changelog records in bulk. Before
  a batch's first side effect, Kafka has acknowledged the dedupe entries written so far and the
  batch's plan.
- faust streams skip (and acknowledge) events around rebalances and restarts, and a skipped event
  is not delivered again. The ack gate keeps those acknowledgements from reaching the commit, and
  the continuity guard seeks a partition back to its first offset that was never processed.
- On rebalance and shutdown faust waits until every event it delivered is acknowledged. A record
  must not be acknowledged before its outcome is durable, and a batch planned by an earlier run must
  not be flushed before all its records are back. So during a rebalance the flush timer abandons
  the open batches and releases their events unacknowledged (`_release_unfinished`); faust then
  seeks to the committed offsets and the records are read again. On shutdown the open batches
  that no earlier run planned are flushed, and the rest is released the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from schemas.contact_event import ContactEvent
from schemas.import_result import ImportResult
from schemas.reason import Reason
from schemas.rejected_record import RejectedRecord, Stage
from stream_app.archive import BatchArchive
from stream_app.errors import ConfigurationError
from stream_app.genesys.client import GenesysClient
from stream_app.intake.decode import DebeziumOptions
from stream_app.mapping import FieldMapping, ListMapping, load_mapping
from stream_app.observability import metrics, spans
from stream_app.observability.outcomes import OutcomeRecorder
from stream_app.observability.propagation import headers_for_span_context, inject_headers
from stream_app.pipeline import dedupe, progress
from stream_app.pipeline.batching import Batch, BatchBuffer, BatchRecord, Outcome
from stream_app.pipeline.flush import BatchFlusher, FlushReport, record_request_id
from stream_app.pipeline.offsets import Continuity, ContinuityGuard, OffsetTracker
from stream_app.pipeline.progress import BatchProgress
from stream_app.settings import DedupeSettings, Settings
from stream_app.validation.contact_list import ContactListSchema
from stream_app.webhook import WebhookSender
from stream_app.webhook_resend import kafka_client_options
from stream_app.worker.changelog import ChangelogWriter
from stream_app.worker.event_context import event_context
from stream_app.worker.fetch_loop import WorkerApp
from stream_app.worker.flush_queue import FlushQueue
from stream_app.worker.lists import ContactListCache
from stream_app.worker.prepare import Checked, Prepared, check_contact, prepare

logger = logging.getLogger(__name__)

# The messages a batch's flush sent to Kafka (dead letters), awaited before its result counts.
_batch_sends: contextvars.ContextVar[list[Any]] = contextvars.ContextVar("batch_sends")


TAKE_MAX_EVENTS = 500
TAKE_WITHIN_SECONDS = 0.02


def kafka_broker_url(settings: Settings) -> str:
    return ";".join(
        f"kafka://{server.strip()}" for server in settings.kafka.bootstrap_servers.split(",")
    )


def broker_credentials(settings: Settings) -> Any:
    """faust credentials for SASL and TLS, or None for PLAINTEXT."""
    kafka = settings.kafka
    ssl_context = None
    if kafka.security_protocol in {"SSL", "SASL_SSL"}:
        ssl_context = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        )
        if kafka.ssl_certfile:
            ssl_context.load_cert_chain(
                str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None
            )
    if kafka.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            mechanism=kafka.sasl_mechanism or "PLAIN",
            ssl_context=ssl_context,
        )
    if ssl_context is not None:
        return faust.SSLCredentials(ssl_context)
    return None


# A partition with records beyond its next expected offset that delivers none for this long is
# sought back to that offset (see StreamWorker._seek_stalled_tails).
TAIL_STALL_SECONDS = 10.0

# A batch whose plan Kafka has not accepted within this many seconds logs a warning, then waits on.
PRODUCER_FLUSH_WARN_SECONDS = 30.0

# Keys longer than this are replaced by their SHA-256 in dead-letter messages, so that a huge key
# cannot push the message over the producer's maximum request size.
MAX_DEAD_LETTER_KEY_BYTES = 1024


def dedupe_store_options(dedupe_settings: DedupeSettings) -> dict[str, Any]:
    """Return the RocksDB options of the dedupe tables, for faust's `options` argument.

    faust's RocksDB default is a 2 GiB block cache per table partition, so the cache is set
    here. The stores have no TTL: with rocksdict 0.3.29, compacting TTL databases that one
    process opened together dropped live entries (tests/worker/test_store_options.py), which
    would let duplicates through.
    Without a TTL an expired entry stays on disk until its identity is written again, and
    `dedupe.decide` checks the expiry itself.
    """
    return {
        "block_cache_size": dedupe_settings.block_cache_bytes,
        "write_buffer_size": dedupe_settings.write_buffer_bytes,
        "max_write_buffer_number": 2,
    }


def _write_table(table: Any, key: str, value: str) -> Any:
    """Set `table[key] = value` for the current event's partition; return the changelog send.

    This is what faust's `Table.__setitem__` does (changelog message, then the store), except
    that it keeps the message's future. A batch then waits for its own messages to reach Kafka.
    A producer flush would also wait for the changelog of every record the intake reads
    meanwhile.
    """
    sent = table.send_changelog(table.partition_for_key(key), key, value)
    table.data[key] = value
    return sent


async def _wait_for_kafka(sends: list[Any], batch_id: str) -> None:
    """Wait until Kafka has acknowledged every message of `sends` (faust message futures).

    Raises the first send's error, if any.
    """
    pending = {sent for sent in sends if not sent.done()}
    while pending:
        _, pending = await asyncio.wait(pending, timeout=PRODUCER_FLUSH_WARN_SECONDS)
        if pending:
            logger.warning(
                "Batch %s waits for Kafka to accept %d messages; still waiting after %.0f s",
                batch_id,
                len(pending),
                PRODUCER_FLUSH_WARN_SECONDS,
            )
    for sent in sends:
        sent.result()


def _dead_letter_key(key: bytes | None) -> bytes | None:
    if key is None or len(key) <= MAX_DEAD_LETTER_KEY_BYTES:
        return key
    return b"sha256:" + hashlib.sha256(key).hexdigest().encode()


def _apply(record: BatchRecord, checked: Checked) -> None:
    """Give `record` its clean data, or reject it with the reasons of `checked`."""
    if checked.data is not None:
        record.data = checked.data
        return
    record.outcome = Outcome.REJECTED
    record.reasons = checked.reasons
    record.rejected_stage = checked.stage


@dataclass
class Runtime:
    """Clients and buffers the agents share; built when the intake agent starts."""

    genesys: GenesysClient
    archive: BatchArchive
    lists: ContactListCache
    flusher: BatchFlusher
    buffer: BatchBuffer
    offsets: OffsetTracker
    lock: asyncio.Lock
    changelog: ChangelogWriter
    # Closed batches flushed in the background; None when batches are flushed inline.
    flushes: FlushQueue | None = None


class StreamWorker:
    """Build the faust app for `settings` and keep the state its agents share."""

    def __init__(self, settings: Settings, mapping: FieldMapping | None = None) -> None:
        self.settings = settings
        if mapping is None and settings.mapping_file is None:
            raise ConfigurationError("a mapping file is required; set STREAM_APP_MAPPING_FILE")
        self.mapping = mapping or load_mapping(settings.mapping_file)  # type: ignore[arg-type]
        self.debezium = (
            DebeziumOptions(
                table=settings.debezium.table,
                id_column=settings.debezium.id_column,
                source=settings.debezium.source,
            )
            if settings.debezium.table
            else None
        )
        self.runtime: Runtime | None = None
        self._list_mappings: dict[str, ListMapping] = {}
        self._dead_letter_counts: dict[str, int] = {}
        # The `batches` table's entries per partition and contact list id, read on first use.
        self._plans: dict[int, dict[str, list[BatchProgress]]] = {}
        self._runtime_ready = asyncio.Event()
        self._ack_gate_installed = False
        self._acking = False
        self._original_add_gap: Callable[[TP, int, int], Awaitable[None]] | None = None
        self._stopping = False
        self._continuity = ContinuityGuard()
        self._seeks: set[asyncio.Future[None]] = set()
        self._offsets_client: AIOKafkaConsumer | None = None
        self._offsets_client_lock = asyncio.Lock()
        # When each partition last delivered a record, or began to lag without one.
        self._progress_at: dict[TP, float] = {}
        # The consumer generation whose records the background flushes belong to.
        self._flush_generation: int | None = None
        self.outcomes = OutcomeRecorder.from_settings(settings)
        self.app = self._build_app()

    def _build_app(self) -> faust.App:
        settings = self.settings
        topics = settings.topics
        app = WorkerApp(
            settings.app_id,
            broker=kafka_broker_url(settings),
            broker_credentials=broker_credentials(settings),
            store="rocksdb://",
            datadir=str(settings.data_dir),
            processing_guarantee="at_least_once",
            topic_partitions=topics.partitions,
            topic_replication_factor=topics.replication_factor,
            web_enabled=True,
            web_port=settings.web_port,
            web_bind=settings.web_host,
            consumer_auto_offset_reset="earliest",
            # At least the contact-events topic's max.message.bytes: aiokafka 0.14 skips a record
            # that is larger than this per-partition fetch size instead of returning it.
            consumer_max_fetch_size=topics.contact_events_max_message_bytes,
            broker_commit_interval=1.0,
            # faust would otherwise wait on stop for every delivered event to be acknowledged,
            # before `on_before_shutdown` can release the ones that must be read again. Every
            # record is safe to read again, so stopping without that wait loses nothing.
            stream_wait_empty=False,
            table_cleanup_interval=60.0,
            producer_linger_ms=5,
        )
        self.events_topic = app.topic(
            topics.contact_events,
            key_serializer="raw",
            value_serializer="raw",
            partitions=topics.partitions,
        )
        self.dead_letter_topic = app.topic(
            topics.dead_letter,
            key_serializer="raw",
            value_serializer="raw",
            partitions=topics.partitions,
        )
        self.results_topic = app.topic(
            topics.import_results,
            key_serializer="raw",
            value_serializer="raw",
            partitions=topics.partitions,
        )
        self.webhook_dead_letter_topic = app.topic(
            topics.webhook_dead_letter, key_serializer="raw", value_serializer="raw", partitions=1
        )
        dedupe_settings = settings.dedupe
        rocksdb_options = dedupe_store_options(dedupe_settings)
        self.dedupe_table = app.Table(
            "dedupe",
            key_type=str,
            value_type=str,
            partitions=topics.partitions,
            options=rocksdb_options,
        )
        # Contacts that share phones and e-mails usually sit in different partitions, so the
        # channel table is global: every worker reads all of its partitions.
        # NOTE: with several workers a claim made on one worker reaches the others through the
        # changelog, so two claims within that delay can both be accepted.
        self.channel_table = (
            app.GlobalTable(
                "dedupe-channels",
                key_type=str,
                value_type=str,
                partitions=topics.partitions,
                options=rocksdb_options,
            )
            if dedupe_settings.channel_identity
            else None
        )

        # Entries are small and few (the batches not yet committed), so no TTL and a small cache.
        self.batch_table = app.Table(
            "batches",
            key_type=str,
            value_type=str,
            partitions=topics.partitions,
            options={
                "block_cache_size": 8 * 1024 * 1024,
                "write_buffer_size": 4 * 1024 * 1024,
                "max_write_buffer_number": 2,
            },
        )

        app.agent(self.events_topic, name="intake")(self._intake_agent)
        app.agent(self.results_topic, name="webhook-relay")(self._relay_agent)
        app.timer(0.5, name="flush-due")(self._flush_due)
        metrics.add_metrics_page(app)
        metrics.watch_consumer_lag(self._consumer_lag)
        app.on_before_shutdown.connect(self._on_before_shutdown)  # type: ignore[arg-type]
        app.on_partitions_revoked.connect(self._on_partitions_revoked)  # type: ignore[arg-type]
        app.on_partitions_assigned.connect(self._on_partitions_assigned)  # type: ignore[arg-type]
        self.outcomes.install(
            app,
            topics.contact_events,
            lambda: self.runtime.genesys.rate_limiter if self.runtime else None,
        )
        return app

    # Runtime lifecycle

    async def _start_runtime(self) -> Runtime:
        if self.runtime is not None:
            return self.runtime
        settings = self.settings
        genesys = await GenesysClient(settings.genesys, on_response=record_request_id).__aenter__()
        metrics.watch_rate_limit_headroom(genesys.rate_limiter.available)
        archive = await BatchArchive(settings.s3).__aenter__()
        changelog = ChangelogWriter(self.app, kafka_client_options(settings.kafka))
        await changelog.start()
        flusher = BatchFlusher(
            settings,
            genesys,
            archive,
            self._publish_rejected_batch_record,
            self._publish_result,
        )
        self.runtime = Runtime(
            genesys=genesys,
            archive=archive,
            lists=ContactListCache(genesys),
            flusher=flusher,
            buffer=BatchBuffer(settings.topics.contact_events, settings.batch, time.monotonic),
            offsets=OffsetTracker(),
            lock=asyncio.Lock(),
            changelog=changelog,
        )
        if self._flushes_in_background():
            runtime = self.runtime
            self.runtime.flushes = FlushQueue(
                lambda batch: self._flush_in_background(runtime, batch),
                settings.batch.max_waiting_flushes,
            )
        self._runtime_ready.set()
        logger.info("Worker runtime started")
        return self.runtime

    async def _on_before_shutdown(self, app: Any = None, **_: Any) -> None:
        self._stopping = True
        if self._offsets_client is not None:
            await self._offsets_client.stop()
            self._offsets_client = None
        runtime = self.runtime
        if runtime is None:
            return
        if runtime.flushes is not None:
            # Closed batches have all their records: let them finish before the open ones.
            try:
                await runtime.flushes.join()
            except Exception:  # logged by the queue; the waiting batches stay unacknowledged
                runtime.flushes.cancel_waiting()
        async with runtime.lock:
            batches = runtime.buffer.pop_all()
            fresh = [batch for batch in batches if batch.plan is None]
            if batches:
                logger.info(
                    "Shutting down: flushing %d open batches, leaving %d planned ones to be "
                    "read again",
                    len(fresh),
                    len(batches) - len(fresh),
                )
            for batch in fresh:
                await self._flush(runtime, batch)
            self._release_unfinished(runtime)
        # Sends what is left, such as the entries of the records just released.
        await runtime.changelog.stop()

    def _abandon_open_batches(self, runtime: Runtime, occasion: str) -> None:
        """Drop the open and waiting batches and every record in flight, to be read again.

        A batch whose flush already runs goes on to its end, but its records are no longer
        tracked, so they are not acknowledged.
        """
        abandoned = runtime.buffer.pop_all()
        if runtime.flushes is not None:
            abandoned += runtime.flushes.cancel_waiting()
        released = self._release_unfinished(runtime)
        if released:
            logger.info(
                "%s: left %d records (%d open or waiting batches) to be read again",
                occasion,
                released,
                len(abandoned),
            )

    def _release_unfinished(self, runtime: Runtime) -> int:
        """Drop every record in flight without acknowledging it, and return how many.

        faust waits for delivered events to be acknowledged before it rebalances or stops.
        Removing them from its private set of unacknowledged messages is the only way to let it
        go on without committing them. The records stay uncommitted, so this worker or the partition's next owner reads
        them again.
        """
        handles = runtime.offsets.drain()
        self._drop(handles)
        return len(handles)

    def _drop(self, handles: list[Any]) -> None:
        """Forget these faust events without acknowledging them, so they are read again."""
        unacked = getattr(self.app.consumer, "_unacked_messages", None)
        if unacked is None:
            return
        for handle in handles:
            unacked.discard(handle.message)

    async def _admit(self, event: Any) -> bool:
        """Return True if `event` may be processed now; otherwise drop it, seeking back if needed.

        Dropped are events delivered during a rebalance or shutdown, events of an older
        consumer generation, and copies that arrive while the partition seeks back. faust delivers
        the dropped records again from the committed offset, or after the seek.
        """
        if self._stopping or self.app.rebalancing or self._is_stale(event):
            self._drop([event])
            return False
        message = event.message
        tp = message.tp
        guard = self._continuity
        if not guard.started(tp):
            guard.start(tp, await self._start_offset(tp))
        now = time.monotonic()
        expected = guard.expected(tp)
        verdict = guard.check(tp, message.offset, now)
        if verdict is Continuity.ACCEPT:
            self._progress_at[tp] = now
            if message.offset > expected:
                await self._record_gap(tp, expected, message.offset - 1)
            return True
        self._drop([event])
        if verdict is Continuity.SEEK:
            expected = guard.expected(tp)
            logger.warning(
                "%s delivered offset %d while offset %d was never processed; seeking back to %d",
                tp,
                message.offset,
                expected,
                expected,
            )
            self._seek(tp, expected)
        return False

    def _seek_stalled_tails(self, now: float) -> None:
        """Seek back partitions whose skipped records are the last ones they have.

        The continuity guard notices a skipped record when a later one arrives. When the skipped
        records are the newest of the partition, nothing later arrives, so a partition that has
        records beyond the next expected offset but delivered none for TAIL_STALL_SECONDS is
        sought back here.
        """
        if self.app.rebalancing or self._stopping or self._ack_gate_installed is False:
            return
        consumer = self.app.consumer
        committed_offsets = getattr(consumer, "_committed_offset", {})
        gated = {self.settings.topics.contact_events, self.settings.topics.import_results}
        guard = self._continuity
        for tp in consumer.assignment():
            if tp.topic not in gated or guard.seeking(tp):
                continue
            if guard.started(tp):
                expected: int | None = guard.expected(tp)
            else:
                committed = committed_offsets.get(tp)
                expected = committed if isinstance(committed, int) else None
            highwater = consumer.highwater(tp)
            if expected is None or highwater is None or highwater <= expected:
                self._progress_at.pop(tp, None)
                continue
            waiting_since = self._progress_at.setdefault(tp, now)
            if now - waiting_since < TAIL_STALL_SECONDS:
                continue
            logger.warning(
                "%s has records up to offset %d but delivered none from offset %d for %.0f s; "
                "seeking back to %d",
                tp,
                highwater - 1,
                expected,
                now - waiting_since,
                expected,
            )
            guard.note_seek(tp, expected, now)
            self._progress_at[tp] = now
            self._seek(tp, expected)

    def _seek(self, tp: TP, offset: int) -> None:
        """Start a seek of `tp` to `offset` without waiting for it.

        The consumer thread may be blocked handing this agent more records, and it performs the
        seek once the agent has taken (and dropped) them.
        """
        self._seeks.add(asyncio.ensure_future(self.app.consumer.seek_wait({tp: offset})))
        self._seeks = {task for task in self._seeks if not task.done()}

    async def _start_offset(self, tp: TP) -> int:
        """Return the offset faust sought `tp` to: the committed one, or else the log start.

        The log start comes from a consumer of this module's own, without a group: a request
        through faust's consumer thread could wait forever while that thread is blocked handing
        this agent records.
        """
        committed = getattr(self.app.consumer, "_committed_offset", {}).get(tp)
        if isinstance(committed, int):
            return committed
        client = await self._offsets_consumer()
        partition = TopicPartition(tp.topic, tp.partition)
        starts = await client.beginning_offsets([partition])
        return int(starts.get(partition) or 0)

    async def _offsets_consumer(self) -> AIOKafkaConsumer:
        """Return the started group-less consumer of `_start_offset`, starting it on first use.

        Both agents call this, so the lock keeps the second from using the consumer before it
        has started.
        """
        async with self._offsets_client_lock:
            if self._offsets_client is None:
                client = AIOKafkaConsumer(
                    **kafka_client_options(self.settings.kafka), enable_auto_commit=False
                )
                await client.start()
                self._offsets_client = client
            return self._offsets_client

    def _is_stale(self, event: Any) -> bool:
        """Return True for an event fetched before the latest rebalance.

        faust seeks every partition back to its committed offset after a rebalance, so such an
        event is delivered again. Processing the old copy would start the partition's offset
        run past the committed offset: faust 0.15 lets one missing offset pass its check, so
        the next commit could then skip a record.
        """
        generation = getattr(event.message, "generation_id", None)
        return generation is not None and generation != self.app.consumer_generation_id

    def _on_partitions_revoked(self, app: Any, revoked: set[TP], **_: Any) -> None:
        """Forget the in-flight offsets and cached plans of revoked partitions.

        Their new owner reads the uncommitted records again and finds the plans in the table.
        """
        self._continuity.reset()
        numbers = self._own_partitions(revoked)
        for number in numbers:
            self._plans.pop(number, None)
        if self.runtime is not None:
            self.runtime.offsets.forget(numbers)
            if self.runtime.flushes is not None:
                self.runtime.flushes.cancel_waiting(numbers)

    def _on_partitions_assigned(self, app: Any, assigned: set[TP], **_: Any) -> None:
        """Start over from the committed offsets, as faust does after every rebalance.

        faust seeks every assigned partition back to its committed offset, so the records of
        the open batches and those still in flight come again, as events of the new generation.
        The old ones are dropped here, in case the flush timer did not run during the
        rebalance: acknowledged later, they would be dropped as stale and leave a hole that
        faust's commit never passes. Cached plans are dropped too, because another worker may
        have written newer ones.
        """
        self._continuity.reset()
        self._progress_at.clear()
        if self.runtime is not None:
            self._abandon_open_batches(self.runtime, "Assigned partitions")
        for number in self._own_partitions(assigned):
            self._plans.pop(number, None)

    def _own_partitions(self, partitions: set[TP]) -> set[int]:
        topic = self.settings.topics.contact_events
        return {tp.partition for tp in partitions if tp.topic == topic}

    # Agents

    async def _intake_agent(self, stream: Any) -> None:
        self._install_ack_gate()
        runtime = await self._start_runtime()
        flushes = runtime.flushes
        async for events in stream.noack_take(TAKE_MAX_EVENTS, within=TAKE_WITHIN_SECONDS):
            # Looked up once per chunk: without tracing, no record pays for its span.
            recording = spans.recording()
            prepared = await self._prepare(runtime, events, validate=not recording)
            for event, ready in zip(events, prepared, strict=True):
                if flushes is not None:
                    await self._wait_for_flushes(flushes)
                span = (
                    spans.process_span(event, self.settings.app_id)
                    if recording
                    else contextlib.nullcontext()
                )
                async with runtime.lock:
                    # faust sets the current event only for streams that iterate event by event.
                    with event_context(event), span:
                        closed = await self._classify(runtime, event, ready)
                    await self._dispatch(runtime, closed)

    def _flushes_in_background(self) -> bool:
        """Return True when closed batches are flushed while the intake reads on.

        Channel identity keeps the inline flush: its claims span partitions, so a record of
        another partition classified during a flush could depend on a claim the flush undoes.
        """
        return self.settings.batch.max_waiting_flushes > 0 and self.channel_table is None

    async def _wait_for_flushes(self, flushes: FlushQueue) -> None:
        """Hold the next record while too many batches wait, or while older flushes run.

        After a rebalance the records of a batch whose flush still runs come again, covered by
        its plan. They must be classified after that flush has saved its last progress, or a
        second flush of the same batch could repeat its steps.
        """
        generation = self.app.consumer_generation_id
        if generation != self._flush_generation:
            await flushes.join()
            self._flush_generation = generation
        await flushes.wait_for_room()

    async def _dispatch(self, runtime: Runtime, closed: list[Batch]) -> None:
        """Queue the closed batches for the background flush, or flush them now."""
        for batch in closed:
            if runtime.flushes is not None:
                runtime.flushes.submit(batch)
            else:
                await self._flush(runtime, batch)

    async def _flush_due(self) -> None:
        now = time.monotonic()
        for tp, offset in self._continuity.due_seeks(now):
            logger.info("%s still lacks offset %d; seeking back to it again", tp, offset)
            self._seek(tp, offset)
        self._seek_stalled_tails(now)
        runtime = self.runtime
        if runtime is None:
            return
        async with runtime.lock:
            if self.app.rebalancing:
                self._abandon_open_batches(runtime, "Rebalancing")
                return
            await self._dispatch(runtime, runtime.buffer.due())

    async def _relay_agent(self, stream: Any) -> None:
        self._install_ack_gate()
        if not self.settings.webhook.url:
            async for event in stream.noack().events():
                if await self._admit(event):
                    self._ack([event])
            return
        async with WebhookSender(self.settings.webhook) as sender:
            async for event in stream.noack().events():
                if not await self._admit(event):
                    continue
                with spans.process_span(event, self.settings.app_id):
                    await self._relay(sender, event.value)
                self._ack([event])

    async def _relay(self, sender: WebhookSender, value: bytes | str) -> None:
        """Deliver one import result, or send it to the webhook dead-letter topic."""
        body = value.decode() if isinstance(value, bytes) else str(value)
        batch_id = json.loads(body).get("batch_id", "")
        outcome = await sender.deliver(batch_id, body)
        self.outcomes.webhook_finished(batch_id, outcome)
        if outcome.delivered:
            return
        dead_letter = {
            "batch_id": batch_id,
            "attempts": outcome.attempts,
            "last_status": outcome.last_status,
            "last_error": outcome.last_error,
            "failed_at": datetime.now(tz=UTC).isoformat(),
            "result": json.loads(body),
        }
        await self.webhook_dead_letter_topic.send(
            key=batch_id.encode(), value=json.dumps(dead_letter).encode()
        )
        metrics.record_webhook_delivery("dead_lettered")

    def _install_ack_gate(self) -> None:
        """Let only `_ack` acknowledge records of the contact-events and results topics.

        faust 0.15 streams acknowledge an event they skip. They skip the events fetched for an
        older consumer generation, and those dequeued while flow control is suspended: around a
        rebalance, and between the seek to the committed offsets and the resume after recovery. Such an
        acknowledgement would let the next commit pass a record that was never processed. The gate
        wraps the consumer's `ack` and ignores every acknowledgement of these topics that does not
        come from `_ack`. A gated message stays unacknowledged, so the record is read again.

        The gate also stops faust recording gaps in these topics. faust's fetch loop takes any
        jump in offsets for a gap with no records. After a seek back, records it fetched before
        the seek make such a jump, so it recorded offsets that were never processed as a gap.
        Its commit counts a gap as acknowledged, which could pass unprocessed records. When the
        same offsets were acknowledged later, the duplicates in its list let each commit advance
        by one offset only. `_record_gap` records the real gaps the continuity guard accepts.
        """
        if self._ack_gate_installed:
            return
        consumer = self.app.consumer
        original_ack = consumer.ack
        gated_topics = {self.settings.topics.contact_events, self.settings.topics.import_results}

        def gated_ack(message: Any) -> bool:
            if message.topic in gated_topics and not self._acking:
                return False
            return bool(original_ack(message))

        consumer.ack = gated_ack  # type: ignore[method-assign]
        # faust 0.15.3's private gap recorder; the fetch loop looks it up on the instance.
        original_add_gap: Callable[[TP, int, int], Awaitable[None]] = consumer._add_gap  # type: ignore[attr-defined]
        self._original_add_gap = original_add_gap

        async def gated_add_gap(tp: TP, offset_from: int, offset_to: int) -> None:
            if tp.topic not in gated_topics:
                await original_add_gap(tp, offset_from, offset_to)

        consumer._add_gap = gated_add_gap  # type: ignore[attr-defined]
        self._ack_gate_installed = True

    async def _record_gap(self, tp: TP, first: int, last: int) -> None:
        """Tell faust that offsets `first` to `last` of `tp` have no record, so commits pass them.

        The continuity guard accepts such a gap (transaction markers, compaction) only after
        seeking back to it has delivered nothing for a while.
        """
        logger.warning(
            "%s has no records at offsets %d to %d; committing past them", tp, first, last
        )
        if self._original_add_gap is not None:
            await self._original_add_gap(tp, first, last)

    def _ack(self, handles: list[Any]) -> None:
        """Acknowledge these faust events through the gate; the caller keeps offset order."""
        if any(self._is_stale(handle) for handle in handles):
            self._drop(handles)
            return
        self._acking = True
        try:
            for handle in handles:
                handle.ack()
        finally:
            self._acking = False

    # Steps

    async def _prepare(
        self, runtime: Runtime, events: list[Any], *, validate: bool
    ) -> list[Prepared]:
        """Decode and validate a chunk of events step by step (see `stream_app.worker.prepare`)."""
        return await prepare(
            [event.value for event in events],
            mapping=self.mapping,
            validation=self.settings.validation,
            debezium=self.debezium,
            lookup=runtime.lists.get,
            validate=validate,
        )

    async def _classify(self, runtime: Runtime, event: Any, ready: Prepared) -> list[Batch]:
        """Admit `event` and route, deduplicate and batch it, with what `_prepare` found for it."""
        message = event.message
        raw_value: bytes | None = event.value
        key: bytes | None = event.key
        if not await self._admit(event):
            return []
        runtime.offsets.track(message.partition, message.offset, event)
        metrics.record_admitted(message.topic)
        if ready.decode_error is not None:
            await self._dead_letter_now(event, "decode", ready.decode_error.reasons)
            return []
        decoded = ready.decoded
        if decoded is None:
            self._done(runtime, message.partition, [message.offset])  # a tombstone
            return []

        reference = ready.reference
        list_mapping = ready.list_mapping
        if reference is None or list_mapping is None:
            reason = Reason(
                field="contact_list",
                value_masked=reference,
                rule="contact_list.missing" if reference is None else "contact_list.unknown",
                message="the event names no contact list and the mapping file has no default"
                if reference is None
                else f"the mapping file has no [lists.{reference}] section",
                fix="set contact_list in the event or add the list to the mapping file",
            )
            await self._dead_letter_now(event, "routing", [reason], decoded=decoded)
            return []

        schema = ready.schema
        if schema is None:
            reason = Reason(
                field="contact_list",
                value_masked=reference,
                rule="contact_list.unknown",
                message=str(ready.list_error),
                fix="create the contact list in Genesys Cloud or correct the mapping file",
            )
            await self._dead_letter_now(event, "routing", [reason], decoded=decoded)
            return []

        self._list_mappings[schema.list_id] = list_mapping
        record = BatchRecord(
            partition=message.partition,
            offset=message.offset,
            outcome=Outcome.SUBMIT,
            operation=decoded.operation,
            event_id=decoded.event_id,
            contact_id=decoded.contact_id,
            occurred_at=decoded.occurred_at.timestamp(),
            key=key,
            raw_value=raw_value,
            size=len(raw_value or b""),
            handle=event,
            span_context=spans.current_span_context(),
        )
        if decoded.operation == "upsert":
            checked = ready.checked
            if checked is None:
                with spans.validation_span() as span:
                    checked = check_contact(decoded, list_mapping, schema, self.settings.validation)
                    spans.set_validation_result(span, checked.reasons)
            _apply(record, checked)
        else:
            record.data = {}
        if record.outcome is Outcome.SUBMIT:
            self._dedupe(record, schema)
        metrics.record_classified(record.outcome)
        plan = progress.covering(self._plans_for(record.partition, schema.list_id), record.offset)
        return runtime.buffer.add(record, schema.list_id, schema.name, plan)

    def _dedupe(self, record: BatchRecord, schema: ContactListSchema) -> None:
        list_id = schema.list_id
        key = dedupe.identity_key(list_id, record.contact_id or "")
        content_fingerprint = dedupe.fingerprint(record.operation, record.data or {})
        previous_text = self._changelog().get(self.dedupe_table, record.partition, key)
        previous = dedupe.DedupeEntry.decode(previous_text) if previous_text else None
        now = time.time()
        decision = dedupe.decide(
            previous,
            content_fingerprint,
            partition=record.partition,
            offset=record.offset,
            now=now,
            expire_seconds=self.settings.dedupe.expire_seconds,
        )
        if decision is dedupe.Decision.DUPLICATE or self._channels_taken(record, schema, now):
            record.outcome = Outcome.DUPLICATE
            return
        entry = dedupe.DedupeEntry(
            content_fingerprint, record.partition, record.offset, now
        ).encode()
        record.dedupe_key = key
        record.dedupe_entry = entry
        record.previous_entry = previous_text if decision is not dedupe.Decision.REPLAY else None
        self._changelog().set(self.dedupe_table, record.partition, key, entry)

    def _channels_taken(self, record: BatchRecord, schema: ContactListSchema, now: float) -> bool:
        """Apply seed-style identity: return True if another contact claimed these channels.

        Otherwise claim them for this record's contact. Only upserts with at least one phone or
        e-mail value take part, and only when `dedupe.channel_identity` is on.
        """
        if self.channel_table is None or record.operation != "upsert" or not record.data:
            return False
        channels = dedupe.channel_values(record.data, schema.phone_columns + schema.email_columns)
        if not channels:
            return False

        key = dedupe.channel_key(schema.list_id, channels)
        owner_text = self._changelog().get(self.channel_table, record.partition, key)
        owner = dedupe.ChannelOwner.decode(owner_text) if owner_text else None
        contact_id = record.contact_id or ""
        if dedupe.channels_taken(
            owner,
            contact_id,
            partition=record.partition,
            offset=record.offset,
            now=now,
            expire_seconds=self.settings.dedupe.expire_seconds,
        ):
            return True

        record.channel_key = key
        record.previous_channel_entry = owner_text
        owner_entry = dedupe.ChannelOwner(contact_id, record.partition, record.offset, now)
        self._changelog().set(self.channel_table, record.partition, key, owner_entry.encode())
        return False

    def _changelog(self) -> ChangelogWriter:
        """Return the dedupe tables' changelog writer; the runtime has started."""
        if self.runtime is None:
            raise RuntimeError("the worker runtime has not started")
        return self.runtime.changelog

    def _restore_dedupe_entries(self, record: BatchRecord) -> None:
        """Undo the table writes of a record whose batch Genesys Cloud did not accept.

        Deleting an entry errs towards submitting the next equal record again, which the upsert
        by contact id makes harmless.
        """
        restores = [(self.dedupe_table, record.dedupe_key, record.previous_entry)]
        if self.channel_table is not None:
            restores.append((self.channel_table, record.channel_key, record.previous_channel_entry))
        changelog = self._changelog()
        with event_context(record.handle):
            for table, key, previous in restores:
                if key is None:
                    continue
                if previous is None:
                    changelog.delete(table, record.partition, key)
                else:
                    changelog.set(table, record.partition, key, previous)

    async def _flush_steps(self, runtime: Runtime, batch: Batch) -> FlushReport:
        """Archive, import and publish `batch` (see `BatchFlusher.flush`) and return its report."""
        schema = await runtime.lists.get(batch.contact_list_id)
        list_mapping = self._list_mappings[batch.contact_list_id]
        plan = batch.plan or BatchProgress(batch.first_offset, batch.last_offset)
        handle = batch.records[-1].handle

        async def save(entry: BatchProgress, durable: bool) -> None:
            plans = progress.put(self._plans_for(batch.partition, batch.contact_list_id), entry)
            plans = progress.prune(plans, self._committed_offset(batch.partition))
            self._plans.setdefault(batch.partition, {})[batch.contact_list_id] = plans
            with event_context(handle):
                sent = _write_table(
                    self.batch_table,
                    progress.slot_key(batch.partition, batch.contact_list_id),
                    progress.encode_plans(plans),
                )
            if durable:
                # Kafka must have the dedupe entries written so far and the plan before the
                # batch's first side effect.
                await runtime.changelog.flush()
                await _wait_for_kafka([sent], batch.batch_id)

        token = _batch_sends.set([])
        try:
            with spans.batch_span(batch) as span:
                report = await runtime.flusher.flush(
                    batch, schema, list_mapping.id_column, plan, save
                )
                spans.set_batch_result(span, report.result)
        finally:
            _batch_sends.reset(token)
        return report

    async def _flush(self, runtime: Runtime, batch: Batch) -> None:
        """Flush `batch` now. The caller has acquired `runtime.lock`."""
        report = await self._flush_steps(runtime, batch)
        self._finish_flush(runtime, batch, report)

    async def _flush_in_background(self, runtime: Runtime, batch: Batch) -> None:
        """Flush `batch` from its partition's runner, while the intake agent reads on.

        The steps run without the lock. Their end takes it, so that records read again after a
        failure are not being classified at that moment.
        """
        try:
            report = await self._flush_steps(runtime, batch)
        except Exception:
            async with runtime.lock:
                self._read_again_after_error(runtime, batch)
            raise
        async with runtime.lock:
            self._finish_flush(runtime, batch, report)

    def _read_again_after_error(self, runtime: Runtime, failed: Batch) -> None:
        """Leave a batch whose flush raised, and its partition's later records, to be read again.

        The error then stops the intake agent once, as an inline flush would, and faust starts
        it again. The batch and the partition's records not flushed yet are dropped without
        being acknowledged, and the partition is sought back to the batch's first offset, so the
        flush is tried again once the records come back. Their dedupe entries stay: each has
        its record's own position, which the records read again take for a replay.
        """
        partition = failed.partition
        first = failed.first_offset
        self._leave_unflushed(runtime, partition, first)
        if self._stopping or self.app.rebalancing or self._is_stale(failed.records[-1].handle):
            return
        logger.warning(
            "Batch %s could not be flushed; reading partition %d again from offset %d",
            failed.batch_id,
            partition,
            first,
        )
        self._seek_back(partition, first)

    def _leave_unflushed(self, runtime: Runtime, partition: int, first: int) -> None:
        """Drop the partition's waiting and open batches and its records from `first` on.

        The records stay unacknowledged, so they are read again.
        """
        if runtime.flushes is not None:
            runtime.flushes.cancel_waiting([partition])
        runtime.buffer.pop_partition(partition)
        self._drop(runtime.offsets.release_from(partition, first))

    def _seek_back(self, partition: int, offset: int) -> None:
        """Seek the contact-events partition back to `offset`, and tell the continuity guard."""
        tp = TP(self.settings.topics.contact_events, partition)
        self._continuity.note_seek(tp, offset, time.monotonic())
        self._seek(tp, offset)

    def _finish_flush(self, runtime: Runtime, batch: Batch, report: FlushReport) -> None:
        """Record the batch's outcome, undo the dedupe writes of its failed records, and
        acknowledge its records."""
        metrics.record_flush(batch, report)
        self.outcomes.batch_finished(batch, report)
        if report.failed_records:
            self._reread_after_failure(runtime, batch)
        for record in reversed(report.failed_records):
            if record.handle is not None:
                self._restore_dedupe_entries(record)
        self._done(runtime, batch.partition, [record.offset for record in batch.records])

    def _reread_after_failure(self, runtime: Runtime, failed: Batch) -> None:
        """Read again the later records of a failed batch's partition that may depend on it.

        A later record of the same contact list was deduplicated against the entries the
        failed batch wrote, which are about to be undone. If there is such a record, every
        record of the partition not yet flushed is dropped unacknowledged, and its dedupe writes
        are undone newest first. The partition is then sought back to the oldest of them, so
        they are classified again as if the failed batch had never been accepted.
        """
        partition = failed.partition
        waiting = runtime.flushes.waiting(partition) if runtime.flushes is not None else []
        later_batches = [*waiting, *runtime.buffer.open_batches(partition)]
        later = [record for batch in later_batches for record in batch.records]
        dependent = any(
            record.dedupe_key is not None or record.outcome is Outcome.DUPLICATE
            for batch in later_batches
            if batch.contact_list_id == failed.contact_list_id
            for record in batch.records
        )
        if (
            not dependent
            or self._stopping
            or self.app.rebalancing
            or self._is_stale(failed.records[-1].handle)
        ):
            return
        later.sort(key=lambda record: record.offset)
        for record in reversed(later):
            if record.handle is not None:
                self._restore_dedupe_entries(record)
        first = later[0].offset
        self._leave_unflushed(runtime, partition, first)
        logger.warning(
            "Batch %s failed; reading partition %d again from offset %d, because %d later "
            "records may have been deduplicated against it",
            failed.batch_id,
            partition,
            first,
            len(later),
        )
        self._seek_back(partition, first)

    def _done(self, runtime: Runtime, partition: int, offsets: list[int]) -> None:
        """Acknowledge, in offset order, the records whose outcome is now durable."""
        self._ack(runtime.offsets.done(partition, offsets))

    def _plans_for(self, partition: int, contact_list_id: str) -> list[BatchProgress]:
        lists = self._plans.setdefault(partition, {})
        plans = lists.get(contact_list_id)
        if plans is None:
            text = self.batch_table.get(progress.slot_key(partition, contact_list_id))
            try:
                plans = progress.decode_plans(text)
            except (ValueError, TypeError, KeyError) as exc:
                logger.error(
                    "Ignoring an unreadable batch plan entry for partition %d, list %s: %s",
                    partition,
                    contact_list_id,
                    exc,
                )
                plans = []
            lists[contact_list_id] = plans
        return plans

    def _committed_offset(self, partition: int) -> int | None:
        """Return the offset the consumer group resumes `partition` from, as faust committed it."""
        # faust 0.15 keeps it in a private mapping; None (keep every plan) if that ever changes.
        committed = getattr(self.app.consumer, "_committed_offset", None)
        if committed is None:
            return None
        value = committed.get(TP(self.settings.topics.contact_events, partition))
        return value if isinstance(value, int) else None

    def _consumer_lag(self) -> list[tuple[str, int, int]]:
        """Return (topic, partition, lag) of the assigned contact-events partitions, for metrics."""
        consumer = self.app.consumer
        return metrics.consumer_lag(
            consumer.assignment(),
            self.settings.topics.contact_events,
            consumer.highwater,
            self._committed_offset,
        )

    # Publishing

    async def _dead_letter_now(
        self,
        event: Any,
        stage: Stage,
        reasons: list[Reason] | tuple[Reason, ...],
        decoded: ContactEvent | None = None,
    ) -> None:
        message = event.message
        rejected = RejectedRecord.from_message(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=event.key,
            value=event.value or b"",
            reasons=reasons,
            stage=stage,
            rejected_at=datetime.now(tz=UTC),
            event=decoded,
            contact_list=decoded.contact_list if decoded else None,
        )
        await self.dead_letter_topic.send(
            key=_dead_letter_key(event.key),
            value=rejected.model_dump_json().encode(),
            headers=inject_headers(),
        )
        metrics.record_rejected(reasons)
        if self.runtime is not None:
            self._done(self.runtime, message.partition, [message.offset])
        self.outcomes.record_dead_lettered(rejected, decoded)
        self._log_dead_letter(stage, reasons[0], message.partition, message.offset)

    def _log_dead_letter(self, stage: Stage, reason: Reason, partition: int, offset: int) -> None:
        """Log dead-lettered records at 1, 10, 100, ... per rule, so a bad feed cannot flood the log."""
        count = self._dead_letter_counts[reason.rule] = (
            self._dead_letter_counts.get(reason.rule, 0) + 1
        )
        if count == 10 ** (len(str(count)) - 1):
            logger.warning(
                "Dead-lettered %d record(s) with rule %s at stage %s so far; latest at partition %d "
                "offset %d: %s",
                count,
                reason.rule,
                stage,
                partition,
                offset,
                reason.message,
            )

    async def _publish_rejected_batch_record(
        self, record: BatchRecord, rejected: RejectedRecord
    ) -> None:
        sent = await self.dead_letter_topic.send(
            key=_dead_letter_key(record.key),
            value=rejected.model_dump_json().encode(),
            headers=headers_for_span_context(record.span_context),
        )
        _batch_sends.get().append(sent)
        metrics.record_rejected(rejected.reasons)
        self.outcomes.batch_record_dead_lettered(record, rejected)

    async def _publish_result(self, result: ImportResult) -> None:
        """Send a batch's result and wait until Kafka has it and the batch's dead letters.

        The flusher marks the batch published right after this returns. Without the wait, that
        table write could reach Kafka before the result does, and after a crash the batch
        would count as published while its result and rejections were lost.
        """
        with spans.publish_span(self.settings.topics.import_results) as headers:
            sent = await self.results_topic.send(
                key=result.batch_id.encode(),
                value=result.model_dump_json().encode(),
                headers=headers,
            )
        await _wait_for_kafka([*_batch_sends.get(), sent], result.batch_id)
