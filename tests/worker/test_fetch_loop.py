"""The fetch loop's hand-off: direct while the stream buffer has room, interruptible when full.

A rebalance empties the stream buffers without waking a hand-off that waits for room. If that
hand-off could not be interrupted, the agent would wait on its empty buffer and the loop on the
hand-off, for ever.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from faust.types import TP as TopicPartition

from stream_app.worker.fetch_loop import _hand_off

TOPIC = "events"


class _Consumer:
    """The parts of faust's consumer and app that the hand-off reads, around one bounded buffer."""

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)
        # The app's flow control, which a rebalance suspends.
        self.flow_resumed = asyncio.Event()
        self.flow_resumed.set()
        channel = SimpleNamespace(queue=self.queue)
        self.app = SimpleNamespace(
            topics=SimpleNamespace(
                _topic_name_index={TOPIC: [channel]}, acks_enabled_for=lambda topic: True
            ),
            flow_control=SimpleNamespace(is_active=self.flow_resumed.is_set),
        )
        # faust's read offsets: None for a partition not read yet.
        self._read_offset: defaultdict[Any, int | None] = defaultdict(lambda: None)
        self._commit_every = None
        self._n_acked = 0
        self.suspend_flow = asyncio.Event()

    async def callback(self, message: Any) -> None:
        # Like faust's conductor: wait while flow control is suspended, then put, which waits
        # while the buffer is full.
        await self.flow_resumed.wait()
        await self.queue.put(message)

    async def wait_first(self, *coros: Any) -> None:
        # Like mode's Service.wait_first: return when the first finishes, cancel the others.
        tasks = [asyncio.ensure_future(coro) for coro in coros]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()

    async def _add_gap(self, tp: Any, first: int, last: int) -> None:
        raise AssertionError("no gap expected")


def _message(offset: int) -> Any:
    return SimpleNamespace(topic=TOPIC, offset=offset)


TP = TopicPartition(TOPIC, 0)


async def test_hand_off_with_room_puts_message() -> None:
    consumer = _Consumer(maxsize=4)

    await asyncio.wait_for(_hand_off(consumer, TP, _message(0)), 1)

    assert consumer.queue.qsize() == 1
    assert consumer._read_offset[TP] == 0


async def test_full_buffer_waits_until_half_empty() -> None:
    consumer = _Consumer(maxsize=4)
    for offset in range(4):
        await _hand_off(consumer, TP, _message(offset))
    hand_off = asyncio.ensure_future(_hand_off(consumer, TP, _message(4)))
    await asyncio.sleep(0.05)
    assert not hand_off.done()

    consumer.queue.get_nowait()
    await asyncio.sleep(0.05)
    assert not hand_off.done(), "one free slot is not half empty"

    consumer.queue.get_nowait()
    await asyncio.wait_for(hand_off, 1)
    assert [consumer.queue.get_nowait().offset for _ in range(3)] == [2, 3, 4]


async def test_suspension_interrupts_hand_off_after_clear() -> None:
    consumer = _Consumer(maxsize=2)
    for offset in range(2):
        await _hand_off(consumer, TP, _message(offset))
    hand_off = asyncio.ensure_future(_hand_off(consumer, TP, _message(2)))
    await asyncio.sleep(0.05)

    # A rebalance: faust suspends flow control and the consumer's flow, and empties the stream
    # buffers.
    consumer.flow_resumed.clear()
    consumer.suspend_flow.set()
    while not consumer.queue.empty():
        consumer.queue.get_nowait()

    await asyncio.wait_for(hand_off, 1)
    assert consumer.queue.empty(), "the interrupted record must not reach the buffer"
    assert consumer._read_offset[TP] == 2
