"""The worker's OpenTelemetry metrics (meter "stream_app") and their Prometheus endpoint.

Instruments (OpenTelemetry names; Prometheus shows dots as underscores, counters with `_total`
and the unit as a suffix, for example `stream_app_records_in_total` and
`stream_app_event_to_acceptance_duration_seconds`):

- `stream_app.records.in` {topic}: records the intake agent admitted. A record read again after a
  restart or rebalance counts again.
- `stream_app.records.valid`: records that passed validation and were not duplicates. A record that
  Genesys Cloud later rejects counts here and under `records.rejected` too.
- `stream_app.records.rejected` {rule}: reasons of the records sent to the dead-letter topic, by
  rule (`phone.invalid`, `decode.not_json`, `genesys.unavailable`, ...). A record with two reasons
  counts under both, as in the demo's summary and on the status page, so the sum over rules can
  exceed the number of rejected records.
- `stream_app.records.duplicates`: records dropped as duplicates.
- `stream_app.batches` {outcome}: flushed batches by `batch_outcome`: imported, partial or failed.
- `stream_app.batch.size` (histogram, {record}): records per flushed batch.
- `stream_app.event_to_acceptance.duration` (histogram, s): per record, from the event's
  occurred_at to the end of its batch's Genesys Cloud write (the result's finished_at).
- `stream_app.genesys.calls` {http.request.method, operation, http.response.status_code or
  error.type}: HTTP attempts to Genesys Cloud, retries included.
- `stream_app.genesys.rate_limit.waits` {reason}: waits for the client-side limiter (`limiter`) and
  after a 429 (`retry_after`).
- `stream_app.genesys.rate_limit.headroom` (gauge): requests the client-side limiter still admits
  in its current 60-second window.
- `stream_app.webhook.deliveries` {outcome}: results delivered, attempts retried, and results
  dead-lettered after the retry time.
- `stream_app.consumer.lag` (gauge) {topic, partition}: the contact-events topic's high watermark
  minus the worker's committed offset, per assigned partition that has a committed offset.

The instruments come from the global meter provider, so they record nothing until
`setup_metrics` installs the SDK with a `PrometheusMetricReader`; only the worker does that.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource

from stream_app.pipeline.batching import Outcome

if TYPE_CHECKING:
    from schemas.import_result import ImportCounts
    from schemas.reason import Reason
    from stream_app.pipeline.batching import Batch
    from stream_app.pipeline.flush import FlushReport

logger = logging.getLogger(__name__)

METER_NAME = "stream_app"
METRICS_PATH = "/metrics"

# Bucket boundaries: batches hold up to batch.max_records (2000 by default) records, and
# acceptance takes from well under a second to the Genesys retry time (minutes).
BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000)
ACCEPTANCE_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

# (method, path template) of a Genesys Cloud call -> the operation label of genesys.calls.
GENESYS_OPERATIONS: dict[tuple[str, str], str] = {
    ("POST", "/oauth/token"): "oauth.token",
    ("GET", "/api/v2/outbound/contactlists"): "contactlist.find",
    ("POST", "/api/v2/outbound/contactlists"): "contactlist.create",
    ("GET", "/api/v2/outbound/contactlists/{contactListId}"): "contactlist.get",
    ("DELETE", "/api/v2/outbound/contactlists/{contactListId}"): "contactlist.delete",
    ("POST", "/api/v2/outbound/contactlists/{contactListId}/contacts"): "contacts.add",
    ("DELETE", "/api/v2/outbound/contactlists/{contactListId}/contacts"): "contacts.delete",
    ("POST", "/api/v2/outbound/contactlists/{contactListId}/contacts/bulk"): "contacts.get",
    ("POST", "/api/v2/outbound/contactlists/{contactListId}/contacts/search"): "contacts.search",
    ("GET", "/api/v2/outbound/contactlists/{contactListId}/importstatus"): "import.status",
    ("POST", "/api/v2/outbound/contactlists/uploads"): "import.upload_request",
    ("PUT", "{presignedUploadUrl}"): "import.upload",
}

_meter = metrics.get_meter(METER_NAME)

# Per-record counts are plain integers that observable counters report when the reader
# collects, because an SDK Counter.add per record cost several percent of the worker's time.
_records_in: collections.Counter[str] = collections.Counter()
_records_classified: collections.Counter[Outcome] = collections.Counter()


def _observe_records_in(options: CallbackOptions) -> list[Observation]:
    return [Observation(count, {"topic": topic}) for topic, count in _records_in.items()]


def _observe_outcome(outcome: Outcome) -> Callable[[CallbackOptions], list[Observation]]:
    def observe(options: CallbackOptions) -> list[Observation]:
        count = _records_classified[outcome]
        return [Observation(count)] if count else []

    return observe


RECORDS_IN = _meter.create_observable_counter(
    "stream_app.records.in",
    callbacks=[_observe_records_in],
    unit="{record}",
    description="Records admitted by the intake agent",
)
RECORDS_VALID = _meter.create_observable_counter(
    "stream_app.records.valid",
    callbacks=[_observe_outcome(Outcome.SUBMIT)],
    unit="{record}",
    description="Records that passed validation and were not duplicates",
)
RECORDS_REJECTED = _meter.create_counter(
    "stream_app.records.rejected",
    unit="{record}",
    description="Reasons of records sent to the dead-letter topic, by rule",
)
RECORDS_DUPLICATES = _meter.create_observable_counter(
    "stream_app.records.duplicates",
    callbacks=[_observe_outcome(Outcome.DUPLICATE)],
    unit="{record}",
    description="Records dropped as duplicates",
)
BATCHES = _meter.create_counter(
    "stream_app.batches", unit="{batch}", description="Flushed batches by outcome"
)
BATCH_SIZE = _meter.create_histogram(
    "stream_app.batch.size",
    unit="{record}",
    description="Records per flushed batch",
    explicit_bucket_boundaries_advisory=BATCH_SIZE_BUCKETS,
)
EVENT_TO_ACCEPTANCE = _meter.create_histogram(
    "stream_app.event_to_acceptance.duration",
    unit="s",
    description="Time from a record's occurred_at to Genesys Cloud accepting its batch",
    explicit_bucket_boundaries_advisory=ACCEPTANCE_SECONDS_BUCKETS,
)
GENESYS_CALLS = _meter.create_counter(
    "stream_app.genesys.calls", unit="{request}", description="HTTP attempts to Genesys Cloud"
)
RATE_LIMIT_WAITS = _meter.create_counter(
    "stream_app.genesys.rate_limit.waits",
    unit="{wait}",
    description="Waits before a Genesys Cloud request, by reason (limiter or retry_after)",
)
WEBHOOK_DELIVERIES = _meter.create_counter(
    "stream_app.webhook.deliveries",
    unit="{delivery}",
    description="CRM webhook results delivered, attempts retried, results dead-lettered",
)

# Sources of the observable gauges, set by the worker: one of each per process.
HeadroomSource = Callable[[], int]
LagSource = Callable[[], Iterable[tuple[str, int, int]]]


@dataclass
class _GaugeSources:
    headroom: HeadroomSource | None = None
    lag: LagSource | None = None
    failures: int = 0

    def observe(self, name: str, read: Callable[[], list[Observation]]) -> list[Observation]:
        """Return `read()`, or nothing when it raises; the first failure is logged in full."""
        try:
            return read()
        except Exception:
            self.failures += 1
            if self.failures == 1:
                logger.warning("Could not read the gauge %s", name, exc_info=True)
            return []


_sources = _GaugeSources()


def watch_rate_limit_headroom(source: HeadroomSource) -> None:
    """Report `source()` as stream_app.genesys.rate_limit.headroom from now on."""
    _sources.headroom = source


def watch_consumer_lag(source: LagSource) -> None:
    """Report `source()`, (topic, partition, lag) triples, as stream_app.consumer.lag from now on."""
    _sources.lag = source


def _observe_headroom(_options: CallbackOptions) -> Iterable[Observation]:
    source = _sources.headroom
    if source is None:
        return []
    return _sources.observe("headroom", lambda: [Observation(source())])


def _observe_lag(_options: CallbackOptions) -> Iterable[Observation]:
    source = _sources.lag
    if source is None:
        return []
    return _sources.observe(
        "consumer lag",
        lambda: [
            Observation(lag, {"topic": topic, "partition": partition})
            for topic, partition, lag in source()
        ],
    )


_meter.create_observable_gauge(
    "stream_app.genesys.rate_limit.headroom",
    callbacks=[_observe_headroom],
    unit="{request}",
    description="Requests the client-side rate limiter still admits in its current window",
)
_meter.create_observable_gauge(
    "stream_app.consumer.lag",
    callbacks=[_observe_lag],
    unit="{record}",
    description="High watermark minus committed offset, per contact-events partition",
)


# Recording


def batch_outcome(counts: ImportCounts) -> str:
    """Return a batch's outcome from its counts: imported, partial or failed.

    imported: no record was rejected or failed, which includes a batch of duplicates only.
    failed: Genesys Cloud accepted none of the batch's writes, or every record was rejected.
    partial: some records reached Genesys Cloud or were duplicates, and others were rejected.
    """
    bad = counts.rejected + counts.failed
    if counts.failed and not counts.imported:
        return "failed"
    if bad == 0:
        return "imported"
    if bad >= counts.received:
        return "failed"
    return "partial"


def record_admitted(topic: str) -> None:
    _records_in[topic] += 1


def record_classified(outcome: Outcome) -> None:
    """Count a record that joined a batch as valid or duplicate; rejections count when sent."""
    _records_classified[outcome] += 1


def record_rejected(reasons: Iterable[Reason]) -> None:
    """Count a dead-lettered record once under the rule of each of its reasons."""
    for reason in reasons:
        RECORDS_REJECTED.add(1, {"rule": reason.rule})


def record_flush(batch: Batch, report: FlushReport) -> None:
    """Count a flushed batch, its size and each accepted record's time to acceptance.

    A batch that an earlier run published (`report.result` is None) is not counted again.
    """
    result = report.result
    if result is None:
        return
    BATCHES.add(1, {"outcome": batch_outcome(result.counts)})
    BATCH_SIZE.record(result.counts.received)
    accepted_at = result.timings.finished_at.timestamp()
    failed = {id(record) for record in report.failed_records}
    for record in batch.records:
        if record.outcome is Outcome.SUBMIT and id(record) not in failed and record.occurred_at:
            EVENT_TO_ACCEPTANCE.record(max(0.0, accepted_at - record.occurred_at))


def genesys_operation(method: str, path_template: str) -> str:
    """Return the operation label of a Genesys Cloud call, or "{method} {path}" for an unknown one."""
    return GENESYS_OPERATIONS.get((method, path_template), f"{method} {path_template}")


def record_genesys_call(
    method: str, path_template: str, status: int | None, error: str | None
) -> None:
    attributes: dict[str, str | int] = {
        "http.request.method": method,
        "operation": genesys_operation(method, path_template),
    }
    if status is not None:
        attributes["http.response.status_code"] = status
    else:
        attributes["error.type"] = error or "unknown"
    GENESYS_CALLS.add(1, attributes)


def record_rate_limit_wait(reason: str) -> None:
    RATE_LIMIT_WAITS.add(1, {"reason": reason})


def record_webhook_delivery(outcome: str) -> None:
    WEBHOOK_DELIVERIES.add(1, {"outcome": outcome})


def consumer_lag(
    assignment: Iterable[Any],
    topic: str,
    highwater: Callable[[Any], int | None],
    committed: Callable[[int], int | None],
) -> list[tuple[str, int, int]]:
    """Return (topic, partition, lag) for the assigned partitions of `topic`.

    A partition counts only when both its high watermark and its committed offset are known.
    """
    lags: list[tuple[str, int, int]] = []
    for tp in sorted(assignment, key=lambda tp: (tp.topic, tp.partition)):
        if tp.topic != topic:
            continue
        end = highwater(tp)
        position = committed(tp.partition)
        if end is None or position is None:
            continue
        lags.append((topic, tp.partition, max(0, end - position)))
    return lags


# Set-up and the endpoint


def setup_metrics(resource: Resource) -> MeterProvider:
    """Install the SDK's MeterProvider with a PrometheusMetricReader on prometheus_client's REGISTRY.

    Call once per process, before the worker starts. The reader registers with the registry
    that `metrics_text` renders.
    """
    from opentelemetry.exporter.prometheus import PrometheusMetricReader  # noqa: PLC0415

    # One meter, so the otel_scope_* labels would repeat "stream_app" on every series.
    reader = PrometheusMetricReader(scope_info_enabled=False)
    provider = MeterProvider(metric_readers=[reader], resource=resource)
    metrics.set_meter_provider(provider)
    return provider


def metrics_text() -> tuple[bytes, str]:
    """Return the Prometheus text exposition of prometheus_client's REGISTRY and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest  # noqa: PLC0415

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def add_metrics_page(app: Any) -> None:
    """Serve GET /metrics on the faust app's web server, in the Prometheus text format."""
    from faust.web import View  # noqa: PLC0415 - faust is slow to import; only the worker serves pages

    class MetricsView(View):
        async def get(self, request: Any) -> Any:
            body, content_type = metrics_text()
            # aiohttp rejects a charset in content_type=, so the header is set whole.
            return self.bytes(body, headers={"Content-Type": content_type})

    app.page(METRICS_PATH, name="metrics")(MetricsView)
