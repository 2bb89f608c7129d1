"""Run table writes in the context of a given faust event.

faust's RocksDB store and its changelog pick the table partition from the *current* event, a
context variable that faust sets only while a stream iterates. Batch outcomes arrive after the
iteration has moved on (a flush triggered by time, or a failed batch whose dedupe entries must be
restored), so `event_context` sets that variable to the batch's own event for the duration of the
writes. Every write then goes to the batch's source partition, which is the partition that owns
the key, because tables here are co-partitioned with the contact-events topic.

NOTE: this sets `faust.streams._current_event`, a private name of faust-streaming 0.15.x. The
package pins that version, and tests/worker exercise the writes through it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faust import streams


@contextmanager
def event_context(event: Any) -> Iterator[None]:
    token = streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        streams._current_event.reset(token)
