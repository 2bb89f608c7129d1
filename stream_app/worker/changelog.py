"""Write the dedupe tables' changelogs in bulk, instead of one faust send per record.

A faust `Table.__setitem__` queues one changelog message in faust's producer buffer, and a task
sends the buffered messages one at a time. The intake writes a dedupe entry for nearly every
record, so that buffer filled up, and faust then paused every stream until it drained message
by message (its "producer buffer full" warning).

`ChangelogWriter` takes the same writes, and the reads that go with them. It puts each value
into the partition's RocksDB database at once, with faust's key and value encoding, so that the
next record's look-up finds it, and keeps the changelog message. A background task sends the
messages kept so far through a producer of its own (idempotent, `acks=all`). It sends them at
most LINGER_SECONDS after the first of them, or as soon as a flush waits, as record batches per
changelog partition in the order they were written. Then it stores each partition's last offset
as the store's persisted offset, as faust does after each changelog send. `flush()` waits until
Kafka has every message written before the call.

The messages are what faust would have sent: the same topic, partition, key and value bytes (the
table's own serializers), and a tombstone for a deletion, so faust's recovery reads them as
its own. All writes to a table must go through one writer, or their order is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from faust.serializers.codecs import get_codec
from faust.types import TP
from mode.utils.compat import want_str

logger = logging.getLogger(__name__)

# How long `stop` waits for Kafka to acknowledge what is left.
STOP_TIMEOUT_SECONDS = 30.0

# How long the sender waits before it sends again the messages Kafka did not acknowledge.
RETRY_SECONDS = 1.0

# How long the sender lets writes gather before it sends them, when no flush waits for them.
LINGER_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class _StrCodecs:
    key: Any
    value: Any


@dataclass(slots=True)
class _Pending:
    table: Any
    partition: int
    key: bytes
    value: bytes | None


class ChangelogWriter:
    """Local store writes now, their changelog messages in bulk, in write order."""

    def __init__(self, app: Any, producer_options: dict[str, Any]) -> None:
        self._app = app
        self._producer = AIOKafkaProducer(
            **producer_options, acks="all", enable_idempotence=True, linger_ms=5
        )
        self._pending: list[_Pending] = []
        self._written = 0  # messages written so far
        self._acknowledged = 0  # of those, the ones Kafka has acknowledged
        self._wake = asyncio.Event()  # something to send
        self._urgent = asyncio.Event()  # a flush waits: send now
        self._progress = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._codecs: dict[int, _StrCodecs | None] = {}

    async def start(self) -> None:
        await self._producer.start()
        self._sender = asyncio.ensure_future(self._send_loop())

    async def stop(self) -> None:
        """Send what is left, waiting at most STOP_TIMEOUT_SECONDS for Kafka, then stop."""
        timeout = STOP_TIMEOUT_SECONDS
        if self._sender is not None:
            try:
                await asyncio.wait_for(self.flush(), timeout)
            except TimeoutError:
                logger.warning(
                    "Stopping with %d dedupe changelog messages that Kafka did not acknowledge "
                    "within %.0f s; the local store has them",
                    self._written - self._acknowledged,
                    timeout,
                )
            finally:
                self._sender.cancel()
                self._sender = None
        await self._producer.stop()

    def get(self, table: Any, partition: int, key: str) -> str | None:
        """Return the value of `key` for a record of `partition`, or None.

        A global table's key can sit in any partition's database, so it is looked up as faust
        does, in all of them.
        """
        if table.is_global:
            found: str | None = table.get(key)
            return found
        key_bytes, _ = self._encode(table, key, None)
        value_bytes = _database(table, partition).get(key_bytes)
        if value_bytes is None:
            return None
        return self._decode_value(table, value_bytes)

    def set(self, table: Any, partition: int, key: str, value: str) -> None:
        """Set `key` to `value` for a record of `partition`; send the change later.

        A global table is written through faust's store, which needs the current faust event to
        belong to `partition`.
        """
        key_bytes, value_bytes = self._encode(table, key, value)
        if table.is_global:
            table.data[key] = value
        else:
            _database(table, partition).put(key_bytes, value_bytes)
        self._keep(_Pending(table, partition, key_bytes, value_bytes))

    def delete(self, table: Any, partition: int, key: str) -> None:
        """Remove `key` for a record of `partition`; send a tombstone later."""
        key_bytes, _ = self._encode(table, key, None)
        if table.is_global:
            table.data.pop(key, None)
        else:
            _database(table, partition).delete(key_bytes)
        self._keep(_Pending(table, partition, key_bytes, None))

    async def flush(self) -> None:
        """Return once Kafka has acknowledged every change written before the call."""
        target = self._written
        while self._acknowledged < target:
            self._raise_error()
            self._wake.set()
            self._urgent.set()
            self._progress.clear()
            await self._progress.wait()
        self._raise_error()

    def _encode(self, table: Any, key: str, value: str | None) -> tuple[bytes, bytes | None]:
        codecs = self._codecs_for(table)
        if codecs is not None:
            return codecs.key.dumps(key), None if value is None else codecs.value.dumps(value)
        serializers = self._app.serializers
        key_bytes = serializers.dumps_key(table.key_type, key, serializer=table.key_serializer)
        if value is None:
            return key_bytes, None
        value_bytes = serializers.dumps_value(
            table.value_type, value, serializer=table.value_serializer
        )
        return key_bytes, value_bytes

    def _decode_value(self, table: Any, value_bytes: bytes) -> str:
        codecs = self._codecs_for(table)
        if codecs is not None:
            decoded: str = want_str(codecs.value.loads(value_bytes))
            return decoded
        value: str = self._app.serializers.loads_value(
            table.value_type, value_bytes, serializer=table.value_serializer
        )
        return value

    def _codecs_for(self, table: Any) -> _StrCodecs | None:
        """Return the codecs of a table with str keys and values, resolved once, or None.

        faust's serializer registry resolves the codec on every call, which cost a few
        microseconds per record. For str keys and values it picks the codec as done here: the
        table's serializer, else the app's, else raw. tests/worker/test_changelog.py checks that
        the bytes are equal.
        """
        try:
            return self._codecs[id(table)]
        except KeyError:
            codecs = None
            if table.key_type is str and table.value_type is str:
                registry = self._app.serializers
                codecs = _StrCodecs(
                    get_codec(table.key_serializer or registry.key_serializer or "raw"),
                    get_codec(table.value_serializer or registry.value_serializer or "raw"),
                )
            self._codecs[id(table)] = codecs
            return codecs

    def _keep(self, pending: _Pending) -> None:
        self._raise_error()
        self._pending.append(pending)
        self._written += 1
        self._wake.set()

    async def _send_loop(self) -> None:
        try:
            while True:
                await self._wake.wait()
                if not self._urgent.is_set():
                    # Let writes gather into larger batches, unless a flush waits.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._urgent.wait(), LINGER_SECONDS)
                self._wake.clear()
                self._urgent.clear()
                while self._pending:
                    await self._send_pending()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.error("Sending the dedupe changelog failed: %r", exc)
            self._error = exc
            self._progress.set()

    async def _send_pending(self) -> None:
        """Send everything kept so far, as record batches per changelog partition.

        Order matters only within a partition, which is what recovery reads, so the messages
        of each partition are sent together, in write order. A partition whose messages Kafka
        does not acknowledge is sent again, all of them, after RETRY_SECONDS, until Kafka has
        them: a message may then be in the changelog twice, which recovery reads as the same
        write repeated.
        """
        to_send, self._pending = self._pending, []
        groups: dict[tuple[int, int], list[_Pending]] = {}
        for pending in to_send:
            groups.setdefault((id(pending.table), pending.partition), []).append(pending)
        remaining = list(groups.values())
        while remaining:
            sent: list[tuple[list[_Pending], list[tuple[asyncio.Future[Any], int]]]] = []
            failed: list[list[_Pending]] = []
            error: BaseException | None = None
            for group in remaining:
                try:
                    sent.append((group, await self._send_group(group)))
                except (KafkaError, TimeoutError) as exc:
                    failed.append(group)
                    error = exc
            for group, futures in sent:
                try:
                    await self._await_group(group, futures)
                except (KafkaError, TimeoutError) as exc:
                    failed.append(group)
                    error = exc
            if failed:
                logger.warning(
                    "Kafka did not acknowledge %d dedupe changelog messages (%r); sending them "
                    "again in %.0f s",
                    sum(len(group) for group in failed),
                    error,
                    RETRY_SECONDS,
                )
                await asyncio.sleep(RETRY_SECONDS)
            remaining = failed
        self._acknowledged += len(to_send)
        self._progress.set()

    async def _send_group(self, group: list[_Pending]) -> list[tuple[asyncio.Future[Any], int]]:
        """Hand one partition's messages to the producer as record batches, in order."""
        first = group[0]
        topic = first.table.changelog_topic.get_topic_name()
        futures: list[tuple[asyncio.Future[Any], int]] = []
        start = 0
        while start < len(group):
            batch = self._producer.create_batch()
            end = start
            while end < len(group):
                pending = group[end]
                if batch.append(key=pending.key, value=pending.value, timestamp=None) is None:
                    break
                end += 1
            if end == start:
                raise ValueError("a changelog message does not fit in a Kafka record batch")
            batch.close()
            future = await self._producer.send_batch(batch, topic, partition=first.partition)
            futures.append((future, end - start))
            start = end
        return futures

    async def _await_group(
        self, group: list[_Pending], futures: list[tuple[asyncio.Future[Any], int]]
    ) -> None:
        """Wait for Kafka to acknowledge a partition's batches; store the last offset."""
        last_offset = -1
        for future, count in futures:
            metadata = await future
            last_offset = metadata.offset + count - 1
        first = group[0]
        tp = TP(first.table.changelog_topic.get_topic_name(), first.partition)
        first.table.data.set_persisted_offset(tp, last_offset)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error


def _database(table: Any, partition: int) -> Any:
    """Return the RocksDB database of `table`'s store for `partition`, opening it on first use.

    faust's RocksDB store keeps one database per partition. Its own `__getitem__` searches every
    partition's database for a key it has not indexed, and its `__setitem__` takes the partition
    from the current event. Going to the partition's database directly costs one look-up. This
    is faust-streaming 0.15.3's private `_db_for_partition`, which the package pins.
    """
    return table.data._db_for_partition(partition)
