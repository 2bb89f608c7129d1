"""The worker's group-less consumer for log start offsets, shared by both agents."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from faust.types import TP

from local_stack.stack import LocalStack
from stream_app.topics import ensure_topics
from stream_app.worker.app import StreamWorker
from tests.worker.support import worker_settings


@pytest.mark.integration
async def test_start_offsets_of_both_agents_at_once(
    local_stack: LocalStack, tmp_path: Path, unique_name: str
) -> None:
    settings = worker_settings(local_stack.env(), tmp_path, unique_name)
    await ensure_topics(settings)
    worker = StreamWorker(settings)
    try:
        # The intake and relay agents ask at the same time when a group has no committed offsets,
        # so without the lock the second reached the consumer before it had started.
        events_start, results_start = await asyncio.gather(
            worker._start_offset(TP(settings.topics.contact_events, 0)),
            worker._start_offset(TP(settings.topics.import_results, 0)),
        )

        assert events_start == 0
        assert results_start == 0
    finally:
        if worker._offsets_client is not None:
            await worker._offsets_client.stop()
