"""Keep the standby changelog records that faust 0.15.3 drops when a recovery completes.

faust's flow-control queues are emptied each time the app's flow control resumes, so that
records fetched before a rebalance are not processed after it. The table changelog queue is one
of them. At the end of a recovery, faust 0.15.3 resumes flow twice:

1. it resumes the standby changelog partitions, and flow control with them, so the standby
   records start to arrive in the changelog queue;
2. `Recovery.on_recovery_completed` then seeks the stream partitions to their committed offsets
   and resumes flow control again, which empties the changelog queue.

The standby records that arrived between the two are dropped, but the consumer's position has
moved past them, so they are never read again. The standby store misses them for good, and when
its partition becomes active the worker treats their keys as unknown. For the dedupe table that
means duplicates submitted to Genesys Cloud after a failover. The fault test
`test_workers_rebalance_and_crash` found it: the new owner's store lacked entries for about
1,600 changelog records per standby partition, the ones fetched during the 0.3 s seek.

`keep_standby_events` wraps the app's `on_recovery_completed` so that the changelog queue is not
emptied by that second resume. Its records are all of the current generation: the standby
records fetched after this recovery sought the standby partitions, in order. The active changelog
partitions are paused by then. Any other resume empties the queue as before.

It reads faust 0.15.3 and mode internals (`Recovery.on_recovery_completed`, the flow control's
`_queues`), which is one reason the package pins faust-streaming.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def keep_standby_events(app: Any) -> None:
    """Make `app`'s recovery keep the changelog queue when it completes; call before it starts."""
    recovery = app.tables.recovery
    completed = recovery.on_recovery_completed
    if getattr(completed, "keeps_standby_events", False):
        return

    async def on_recovery_completed(generation_id: int = 0) -> None:
        managed = app.flow_control._queues
        changelog_queue = app.tables.changelog_queue
        was_managed = changelog_queue in managed
        managed.discard(changelog_queue)
        try:
            await completed(generation_id)
        finally:
            if was_managed:
                managed.add(changelog_queue)

    on_recovery_completed.keeps_standby_events = True  # type: ignore[attr-defined]
    recovery.on_recovery_completed = on_recovery_completed
