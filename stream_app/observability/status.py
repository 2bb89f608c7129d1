"""The worker's status page: GET /status (HTML) and GET /status.json, from an in-memory board.

`StatusBoard` keeps what the page shows, counted since the worker process started:
- totals with the names and meaning of the demo summary (`stream-app demo`): records_read,
  records_valid, records_rejected, duplicates, contacts_imported, batches, dead_letter_records
  and webhook_deliveries, and rejections_by_rule, where a record with two reasons counts under
  both rules;
- the latest batches with their outcome, counts and webhook state;
- webhook deliveries: delivered, retried (failed attempts that were tried again) and
  dead-lettered, with the time of the last delivery;
- a time series sampled every SAMPLE_SECONDS: records/s read from the contact-events topic,
  consumer lag, and the Genesys Cloud requests that the rate limiter still admits in the current
  60-second window.

It is fed by `OutcomeRecorder` (the same calls that write the audit log) and by a faust timer.
The page is one HTML file with inline CSS and JavaScript that fetches status.json every two
seconds. It loads nothing from other hosts, and its Content-Security-Policy forbids that.

The board counts what this process saw. A batch read again after a rebalance is counted once
per process, and a restarted worker starts from zero.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any, Protocol

from schemas.import_result import ImportResult
from schemas.reason import Reason
from stream_app.observability.audit import batch_outcome

logger = logging.getLogger(__name__)

SAMPLE_SECONDS = 2.0
# Five minutes of samples, and the batches a person can take in at a glance.
MAX_SAMPLES = 150
MAX_BATCHES = 20
# Batch ids remembered to count a batch published twice (after a rebalance) only once.
MAX_REMEMBERED_BATCH_IDS = 10_000
# Deliveries of batches not listed yet that the board keeps until their batch is.
MAX_EARLY_WEBHOOKS = 1_000

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'"
)


class RateLimiter(Protocol):
    """The part of `stream_app.genesys.rate_limit.SlidingWindowRateLimiter` that the board reads."""

    limit: int

    def available(self) -> int: ...


@dataclass
class BatchRow:
    """One finished batch as the page lists it; times are Unix seconds."""

    batch_id: str
    contact_list_id: str
    contact_list_name: str | None
    partition: int
    first_offset: int
    last_offset: int
    outcome: str
    total: int
    imported: int
    failed: int
    rejected: int
    duplicates: int
    finished_at: float
    webhook: str  # pending, delivered, dead_lettered or off


@dataclass(frozen=True)
class WorkerSample:
    """Readings taken from the worker every SAMPLE_SECONDS."""

    records_in_total: int  # records received from the contact-events topic since start
    lag: int | None  # records behind the end of the contact-events topic, all partitions
    rate_limit_available: int | None  # Genesys requests still admitted in the current window


class StatusBoard:
    """In-memory state of the status page: counters and bounded queues, updated in place."""

    def __init__(
        self,
        *,
        app_id: str,
        webhook_enabled: bool,
        requests_per_minute: int,
        rate_limit: int,
        clock: Callable[[], float] = time.time,
        max_batches: int = MAX_BATCHES,
        max_samples: int = MAX_SAMPLES,
    ) -> None:
        self.app_id = app_id
        self.webhook_enabled = webhook_enabled
        self.requests_per_minute = requests_per_minute
        self.rate_limit = rate_limit
        self._clock = clock
        self.started_at = clock()
        self.totals = {
            "records_read": 0,
            "records_valid": 0,
            "records_rejected": 0,
            "duplicates": 0,
            "contacts_imported": 0,
            "batches": 0,
            "dead_letter_records": 0,
            "webhook_deliveries": 0,
        }
        self.rejections_by_rule: dict[str, int] = {}
        self.webhook = {"delivered": 0, "retried": 0, "dead_lettered": 0}
        self.last_delivery_at: float | None = None
        self.last_webhook_failure_at: float | None = None
        self._batches: deque[BatchRow] = deque(maxlen=max_batches)
        self._seen_batch_ids: OrderedDict[str, None] = OrderedDict()
        # Deliveries that finished before their batch was listed: the relay can deliver a
        # result while the flush that published it is still recording its outcome.
        self._early_webhooks: OrderedDict[str, str] = OrderedDict()
        self._samples: deque[dict[str, Any]] = deque(maxlen=max_samples)
        # The worker has read nothing when the board is created, so the first sample's rate
        # counts every record read before it.
        self._last_sample: tuple[float, int] | None = (self._clock(), 0)

    def batch_finished(
        self, result: ImportResult, *, partition: int, first_offset: int, last_offset: int
    ) -> None:
        """Count a batch whose import result was published, once per batch id."""
        counts = result.counts
        row = BatchRow(
            batch_id=result.batch_id,
            contact_list_id=result.contact_list,
            contact_list_name=result.contact_list_name,
            partition=partition,
            first_offset=first_offset,
            last_offset=last_offset,
            outcome=batch_outcome(result),
            total=counts.received,
            imported=counts.imported,
            failed=counts.failed,
            rejected=counts.rejected,
            duplicates=counts.duplicates,
            finished_at=self._clock(),
            webhook=self._early_webhooks.pop(
                result.batch_id, "pending" if self.webhook_enabled else "off"
            ),
        )
        self._batches.append(row)
        if not self._remember(result.batch_id):
            return

        totals = self.totals
        totals["batches"] += 1
        totals["records_read"] += counts.received
        totals["records_valid"] += counts.valid - counts.failed
        totals["records_rejected"] += counts.rejected + counts.failed
        totals["duplicates"] += counts.duplicates
        totals["contacts_imported"] += counts.imported
        for record in result.records:
            if record.outcome == "rejected":
                self._count_rules(record.reasons)

    def record_dead_lettered(self, reasons: Sequence[Reason], *, in_batch: bool) -> None:
        """Count a record sent to the dead-letter topic.

        A record of a batch (`in_batch`) is counted in the totals with its batch's result. One
        rejected before it joined a batch (decode or routing) has no batch, so it is counted
        here as read and rejected.
        """
        self.totals["dead_letter_records"] += 1
        if in_batch:
            return
        self.totals["records_read"] += 1
        self.totals["records_rejected"] += 1
        self._count_rules(reasons)

    def webhook_finished(self, batch_id: str, *, delivered: bool, attempts: int) -> None:
        """Count a finished delivery of a batch's result to the CRM."""
        now = self._clock()
        self.webhook["retried"] += max(0, attempts - 1)
        if delivered:
            self.webhook["delivered"] += 1
            self.totals["webhook_deliveries"] += 1
            self.last_delivery_at = now
        else:
            self.webhook["dead_lettered"] += 1
            self.last_webhook_failure_at = now
        state = "delivered" if delivered else "dead_lettered"
        listed = False
        for row in self._batches:
            if row.batch_id == batch_id:
                row.webhook = state
                listed = True
        if not listed:
            self._early_webhooks[batch_id] = state
            while len(self._early_webhooks) > MAX_EARLY_WEBHOOKS:
                self._early_webhooks.popitem(last=False)

    def add_sample(self, sample: WorkerSample) -> None:
        """Add one reading to the time series, with records/s since the previous reading."""
        now = self._clock()
        rate = 0.0
        if self._last_sample is not None:
            previous_at, previous_total = self._last_sample
            elapsed = now - previous_at
            received = sample.records_in_total - previous_total
            # The counter restarts when faust resets its monitor; that reading counts as zero.
            if elapsed > 0 and received > 0:
                rate = received / elapsed
        self._last_sample = (now, sample.records_in_total)
        self._samples.append(
            {
                "t": round(now, 3),
                "records_per_second": round(rate, 1),
                "lag": sample.lag,
                "rate_limit_available": sample.rate_limit_available,
            }
        )

    def snapshot(self) -> dict[str, Any]:
        """Return the board as the JSON object that GET /status.json serves."""
        latest = self._samples[-1] if self._samples else None
        available = latest["rate_limit_available"] if latest else None
        return {
            "app_id": self.app_id,
            "now": self._clock(),
            "started_at": self.started_at,
            "sample_seconds": SAMPLE_SECONDS,
            "totals": dict(self.totals),
            "rejections_by_rule": dict(sorted(self.rejections_by_rule.items())),
            "batches": [asdict(row) for row in reversed(self._batches)],
            "webhook": {
                "enabled": self.webhook_enabled,
                **self.webhook,
                "last_delivery_at": self.last_delivery_at,
                "last_failure_at": self.last_webhook_failure_at,
            },
            "genesys": {
                "requests_per_minute": self.requests_per_minute,
                "rate_limit": self.rate_limit,
                "available": available,
                "headroom": None if available is None else round(available / self.rate_limit, 3),
            },
            "lag": latest["lag"] if latest else None,
            "series": list(self._samples),
        }

    def _remember(self, batch_id: str) -> bool:
        """Return False if `batch_id` was counted already; otherwise remember it."""
        if batch_id in self._seen_batch_ids:
            return False
        self._seen_batch_ids[batch_id] = None
        if len(self._seen_batch_ids) > MAX_REMEMBERED_BATCH_IDS:
            self._seen_batch_ids.popitem(last=False)
        return True

    def _count_rules(self, reasons: Sequence[Reason]) -> None:
        for reason in reasons:
            self.rejections_by_rule[reason.rule] = self.rejections_by_rule.get(reason.rule, 0) + 1


def consumer_lag(
    topic: str,
    end_offsets: Mapping[Any, int],
    committed_offsets: Mapping[Any, int],
    read_offsets: Mapping[Any, int],
) -> int | None:
    """Return the records between the end of `topic`'s partitions and the consumer's position.

    The mappings are faust's monitor readings keyed by TP. The position is the committed offset,
    or before the first commit the offset after the last record read. Partitions with neither
    are left out; None when no partition of `topic` has an end offset yet.
    """
    total: int | None = None
    for tp, end in end_offsets.items():
        if tp.topic != topic:
            continue
        position = committed_offsets.get(tp)
        if position is None:
            read = read_offsets.get(tp)
            position = None if read is None else read + 1
        if position is None:
            continue
        total = (total or 0) + max(0, end - position)
    return total


def read_worker_sample(app: Any, topic: str, limiter: RateLimiter | None) -> WorkerSample:
    """Read the records received, the lag and the rate-limit headroom from a running faust app."""
    monitor = app.monitor
    return WorkerSample(
        records_in_total=int(monitor.messages_received_by_topic.get(topic, 0)),
        lag=consumer_lag(
            topic,
            monitor.tp_end_offsets or {},
            monitor.tp_committed_offsets or {},
            monitor.tp_read_offsets or {},
        ),
        rate_limit_available=None if limiter is None else limiter.available(),
    )


def status_page_html() -> str:
    """Return the page's HTML, which is shipped as package data next to this module."""
    return (resources.files("stream_app.observability") / "status_page.html").read_text("utf-8")


def install_status_page(
    app: Any,
    board: StatusBoard,
    topic: str,
    limiter: Callable[[], RateLimiter | None],
) -> None:
    """Serve GET /status and GET /status.json on `app`'s web server and sample every 2 s.

    `limiter` returns the Genesys client's rate limiter once the worker's runtime has started,
    and None before.
    """
    html = status_page_html()
    headers = {"Cache-Control": "no-store", "Content-Security-Policy": CONTENT_SECURITY_POLICY}

    async def status_page(view: Any, request: Any) -> Any:
        return view.html(html, headers=dict(headers))

    async def status_json(view: Any, request: Any) -> Any:
        return view.json(board.snapshot(), headers={"Cache-Control": "no-store"})

    async def sample_status() -> None:
        board.add_sample(read_worker_sample(app, topic, limiter()))

    app.page("/status", name="status")(status_page)
    app.page("/status.json", name="status-json")(status_json)
    app.timer(SAMPLE_SECONDS, name="status-sample")(sample_status)
