"""One call per outcome for the worker: it writes the audit line and updates the status board.

The worker calls `OutcomeRecorder` where an outcome becomes known: a batch's import result is
published, a record goes to the dead-letter topic, a webhook delivery ends. Both the audit log
(`stream_app.observability.audit`) and the status page (`stream_app.observability.status`) are
fed from these calls, so the two always count the same events.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from schemas.contact_event import ContactEvent
from schemas.rejected_record import RejectedRecord
from stream_app.observability import audit
from stream_app.observability.audit import AuditLog
from stream_app.observability.status import RateLimiter, StatusBoard, install_status_page
from stream_app.pipeline.batching import Batch, BatchRecord
from stream_app.pipeline.flush import FlushReport
from stream_app.settings import Settings
from stream_app.webhook import DeliveryOutcome

logger = logging.getLogger(__name__)


class OutcomeRecorder:
    """Fans each outcome out to the audit log and the status board."""

    def __init__(self, audit_log: AuditLog, board: StatusBoard, *, webhook_enabled: bool) -> None:
        self.audit_log = audit_log
        self.board = board
        self.webhook_enabled = webhook_enabled

    @classmethod
    def from_settings(cls, settings: Settings) -> OutcomeRecorder:
        """Open the audit log that `settings.audit` names and create an empty board.

        Raises:
            ConfigurationError: the audit log cannot be opened.
        """
        audit_log = AuditLog.from_settings(settings.audit, settings.data_dir)
        logger.info("Audit log: %s", audit_log.name)
        genesys = settings.genesys
        webhook_enabled = bool(settings.webhook.url)
        board = StatusBoard(
            app_id=settings.app_id,
            webhook_enabled=webhook_enabled,
            requests_per_minute=genesys.requests_per_minute,
            # The same limit as SlidingWindowRateLimiter.from_settings.
            rate_limit=max(
                1, math.floor(genesys.requests_per_minute * genesys.rate_limit_headroom)
            ),
        )
        return cls(audit_log, board, webhook_enabled=webhook_enabled)

    def install(self, app: Any, topic: str, limiter: Callable[[], RateLimiter | None]) -> None:
        """Serve the status page on `app`'s web server; see `install_status_page`."""
        install_status_page(app, self.board, topic, limiter)

    def batch_finished(self, batch: Batch, report: FlushReport) -> None:
        """Record a flushed batch; a batch that an earlier run published (no result) is skipped."""
        result = report.result
        if result is None:
            return
        trace_id = audit.current_trace_id() or audit.trace_id_of(result.traceparent)
        failure_reasons = [reason for record in report.failed_records for reason in record.reasons]
        self.audit_log.write(
            audit.batch_entry(
                result,
                topic=batch.topic,
                partition=batch.partition,
                first_offset=batch.first_offset,
                last_offset=batch.last_offset,
                failure_reasons=failure_reasons,
                webhook_enabled=self.webhook_enabled,
                trace_id=trace_id,
            )
        )
        self.board.batch_finished(
            result,
            partition=batch.partition,
            first_offset=batch.first_offset,
            last_offset=batch.last_offset,
        )

    def record_dead_lettered(self, rejected: RejectedRecord, event: ContactEvent | None) -> None:
        """Record a message rejected before it joined a batch (decode or routing)."""
        self.audit_log.write(
            audit.rejection_entry(
                rejected,
                event_id=event.event_id if event else None,
                contact_id=event.contact_id if event else None,
                trace_id=audit.current_trace_id(),
            )
        )
        self.board.record_dead_lettered(rejected.reasons, in_batch=False)

    def batch_record_dead_lettered(self, record: BatchRecord, rejected: RejectedRecord) -> None:
        """Record a batch's record that validation or Genesys Cloud rejected."""
        self.audit_log.write(
            audit.rejection_entry(
                rejected,
                event_id=record.event_id,
                contact_id=record.contact_id,
                trace_id=audit.current_trace_id(),
            )
        )
        self.board.record_dead_lettered(rejected.reasons, in_batch=True)

    def webhook_finished(self, batch_id: str, outcome: DeliveryOutcome) -> None:
        """Record the end of a delivery to the CRM: delivered, or given up after retries."""
        self.audit_log.write(
            audit.webhook_entry(
                batch_id,
                delivered=outcome.delivered,
                attempts=outcome.attempts,
                last_status=outcome.last_status,
                last_error=outcome.last_error,
                trace_id=audit.current_trace_id(),
            )
        )
        self.board.webhook_finished(
            batch_id, delivered=outcome.delivered, attempts=outcome.attempts
        )
