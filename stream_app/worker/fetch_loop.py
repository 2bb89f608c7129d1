"""The consumer's fetch loop, without the four tasks faust starts for every record.

faust 0.15.3's `Consumer._drain_messages` hands each fetched record to the topic conductor
through `Service.wait_first(callback(message), suspend_flow.wait())`. That call starts four
tasks and an `asyncio.wait` per record, so that a rebalance can interrupt a hand-off that waits
for room in a full stream buffer. On the 2-core machine of BENCHMARKS.md, a faust agent that
only acknowledges reached about 6,500 records per second with that loop. Awaiting the hand-off
directly raised it to about 14,800.

`drain_messages` is the same loop except for the hand-off. While flow control is active, the
consumer has not suspended its flow and every stream buffer of the record's topic has room, it
awaits the hand-off directly: each buffer then has room for the record, so the hand-off cannot
wait for room. Otherwise it uses
`wait_first` as faust does, so that a rebalance still interrupts a waiting hand-off. That
matters: a rebalance empties the stream buffers without waking a hand-off that waits for room,
and the agent, finding its buffer empty, would then wait for the blocked loop forever.

When a buffer is full, the loop first waits, interruptible by a suspension, until the fullest
buffer of the topic is half empty, so that the records after it take the direct path again
rather than one `wait_first` each.

Everything else is kept: records older than the partition's read offset are dropped, offset
jumps are recorded as gaps through the consumer's `_add_gap` (which the worker's ack gate
replaces for its own topics), `broker_commit_every` is honoured, and the loop yields to the event
loop every 100 records.

It reads faust 0.15.3 internals (`_read_offset`, `_commit_every`, `_n_acked`, `_add_gap`,
`suspend_flow`, `diag`, and the conductor's `_topic_name_index` for the stream buffers), which
is one reason the package pins that version.
"""

from __future__ import annotations

import asyncio
import logging
import types
from typing import Any

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.types import ConsumerT

from stream_app.worker.standby import keep_standby_events

logger = logging.getLogger(__name__)

# The loop gives other tasks a turn after this many records of one fetch.
YIELD_EVERY = 100

# How often the loop checks a full stream buffer for room.
ROOM_POLL_SECONDS = 0.005


async def drain_messages(consumer: Any, fetcher: Any) -> None:
    """Hand every fetched record to the conductor until the consumer or `fetcher` stops."""
    app = consumer.app
    consumer_stopped = consumer._stopped.is_set
    fetcher_stopped = fetcher._stopped.is_set
    since_yield = 0
    try:
        while not (consumer_stopped() or fetcher_stopped()):
            consumer.diag.set_flag(CONSUMER_FETCHING)
            records = consumer.getmany(timeout=1.0)
            await asyncio.sleep(0)
            if consumer.should_stop:
                break
            async for tp, message in records:
                since_yield += 1
                if since_yield > YIELD_EVERY:
                    await asyncio.sleep(0)
                    since_yield = 0
                await _hand_off(consumer, tp, message)
            consumer.diag.unset_flag(CONSUMER_FETCHING)
    except consumer.consumer_stopped_errors:
        if app.should_stop:
            logger.info("The broker stopped the consumer while the worker stops")
            return
        raise
    except asyncio.CancelledError:
        if app.should_stop:
            return
        raise
    finally:
        consumer.diag.unset_flag(CONSUMER_FETCHING)


async def _hand_off(consumer: Any, tp: Any, message: Any) -> None:
    """Pass one record to the conductor, unless the partition has read past it already."""
    read_offsets = consumer._read_offset
    offset = message.offset
    read_offset = read_offsets[tp]
    if read_offset is not None and offset < read_offset:
        return
    if read_offset and offset - read_offset > 1 and consumer.app.topics.acks_enabled_for(tp.topic):
        await consumer._add_gap(tp, read_offset + 1, offset)
    commit_every = consumer._commit_every
    if commit_every is not None and consumer._n_acked >= commit_every:
        consumer._n_acked = 0
        await consumer.commit()
    queues = [channel.queue for channel in consumer.app.topics._topic_name_index[tp.topic]]
    full = any(queue.full() for queue in queues)
    if full:
        await consumer.wait_first(_room(queues), consumer.suspend_flow.wait())
        full = any(queue.full() for queue in queues)
    direct = (
        consumer.app.flow_control.is_active() and not consumer.suspend_flow.is_set() and not full
    )
    if direct:
        await consumer.callback(message)
    else:
        await consumer.wait_first(consumer.callback(message), consumer.suspend_flow.wait())
    read_offsets[tp] = offset


async def _room(queues: list[Any]) -> None:
    """Return once every queue is at most half full.

    It polls, because a stream buffer signals room only to a waiting `put`.
    """
    while any(queue.qsize() > queue.maxsize // 2 for queue in queues):  # noqa: ASYNC110
        await asyncio.sleep(ROOM_POLL_SECONDS)


class WorkerApp(faust.App):
    """A faust app whose consumer runs `drain_messages` as its fetch loop.

    It also keeps the standby changelog records that faust's recovery would drop when it
    completes (`stream_app.worker.standby`).
    """

    async def on_start(self) -> None:
        await super().on_start()
        # Before the tables, and so their recovery, start.
        keep_standby_events(self)

    def _new_consumer(self) -> ConsumerT:
        consumer = super()._new_consumer()
        # The fetcher looks the loop up on the instance when it starts.
        consumer._drain_messages = types.MethodType(drain_messages, consumer)  # type: ignore[attr-defined]
        return consumer
