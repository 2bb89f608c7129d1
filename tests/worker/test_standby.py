"""The worker keeps standby changelog records through the end of a recovery."""

from __future__ import annotations

from pathlib import Path

from stream_app.worker.app import StreamWorker
from stream_app.worker.standby import keep_standby_events
from tests.worker.support import worker_settings


async def test_completion_keeps_changelog_queue_only(tmp_path: Path) -> None:
    app = StreamWorker(worker_settings({}, tmp_path, "standby")).app
    recovery = app.tables.recovery
    resumed_inside: list[int] = []

    async def completed(generation_id: int = 0) -> None:
        # faust's own completion resumes flow control after seeking the streams.
        app.flow_control.resume()
        resumed_inside.append(generation_id)

    recovery.on_recovery_completed = completed
    keep_standby_events(app)
    keep_standby_events(app)  # a second start of the app wraps it once

    app.flow_control.resume()  # it starts suspended, and a put waits while it is
    changelog_queue = app.tables.changelog_queue
    stream_queue = app.FlowControlQueue(maxsize=10, clear_on_resume=True)
    await changelog_queue.put("standby record")
    await stream_queue.put("stream record")

    await recovery.on_recovery_completed(7)

    assert resumed_inside == [7]
    assert changelog_queue.qsize() == 1
    assert stream_queue.qsize() == 0
    # Any later resume, such as a rebalance's, empties the changelog queue again.
    app.flow_control.resume()
    assert changelog_queue.qsize() == 0


async def test_worker_app_installs_it_on_start(tmp_path: Path) -> None:
    app = StreamWorker(worker_settings({}, tmp_path, "standby-start")).app

    await app.on_start()

    completed = app.tables.recovery.on_recovery_completed
    assert getattr(completed, "keeps_standby_events", False) is True
