"""The spans of the pipeline's steps, with OpenTelemetry semantic-convention attributes.

One record's trace: `publish contact-events` (PRODUCER, by `stream-app produce` or any producer
that sets the traceparent header) -> `process contact-events` (CONSUMER, the intake agent) ->
`validate`. A batch's flush, `batch flush`, is a child of the `process` span of its first record,
so that record's trace shows the whole path. It links to the `process` spans of its records (at
most MAX_BATCH_LINKS), and the other records reach it through their link. Under it:
`S3.PutObject`, one span per Genesys Cloud HTTP request, and `publish contact-import-results`,
whose context travels in the result's headers to the relay agent's
`process contact-import-results` span, `webhook deliver` and one `POST` per attempt.

No attribute, span name or event contains contact data, tokens or secrets. Names carry templates
(the Genesys path template, the topic), URLs lose their query string and user info, and a
failure is described by its exception class only, because messages can quote a record's
values. Span kinds and attribute names follow the semantic conventions for messaging (Kafka),
HTTP clients and the AWS SDK (semantic-conventions package 0.66b2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
)
from opentelemetry.util.types import AttributeValue

from stream_app.observability.metrics import batch_outcome
from stream_app.observability.propagation import (
    HeaderList,
    extract_context,
    inject_headers,
    message_headers,
)

if TYPE_CHECKING:
    from schemas.import_result import ImportResult
    from schemas.reason import Reason
    from stream_app.pipeline.batching import Batch

TRACER_NAME = "stream_app"

# A batch span links to at most this many record spans; `stream_app.batch.records` gives the
# total. Backends handle a few hundred links per span, and a batch may hold 1000 records.
MAX_BATCH_LINKS = 128

# Semantic-convention attribute names.
MESSAGING_SYSTEM = "messaging.system"
MESSAGING_DESTINATION = "messaging.destination.name"
MESSAGING_PARTITION = "messaging.destination.partition.id"
MESSAGING_CONSUMER_GROUP = "messaging.consumer.group.name"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_OPERATION_NAME = "messaging.operation.name"
KAFKA_OFFSET = "messaging.kafka.offset"
# The name semantic conventions used before 1.27, which older dashboards still query.
KAFKA_MESSAGE_OFFSET = "messaging.kafka.message.offset"
HTTP_METHOD = "http.request.method"
HTTP_STATUS = "http.response.status_code"
HTTP_RESEND_COUNT = "http.request.resend_count"
URL_FULL = "url.full"
URL_TEMPLATE = "url.template"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
RPC_SYSTEM = "rpc.system"
RPC_SERVICE = "rpc.service"
RPC_METHOD = "rpc.method"
S3_BUCKET = "aws.s3.bucket"
S3_KEY = "aws.s3.key"


def tracer() -> trace.Tracer:
    """Return the product's tracer from the global provider (a no-op one until set-up)."""
    return trace.get_tracer(TRACER_NAME)


def recording() -> bool:
    """Return True once a TracerProvider is installed; until then spans would record nothing.

    The per-record spans check this first, so a worker without tracing does not pay for them.
    """
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


@contextmanager
def _span(
    name: str,
    kind: SpanKind,
    attributes: dict[str, AttributeValue],
    *,
    context: Context | None = None,
    links: Sequence[Link] = (),
) -> Iterator[Span]:
    """Start a current span; an exception marks it failed with its class name, then propagates."""
    with tracer().start_as_current_span(
        name,
        context=context,
        kind=kind,
        attributes=attributes,
        links=links,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except Exception as error:
            mark_failed(span, type(error).__name__)
            raise


def mark_failed(span: Span, error_type: str) -> None:
    """Set error.type and an ERROR status naming only `error_type`."""
    span.set_attribute(ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, error_type))


def current_span_context() -> SpanContext | None:
    """Return the current span's context, or None when there is no valid span."""
    span_context = trace.get_current_span().get_span_context()
    return span_context if span_context.is_valid else None


def current_traceparent() -> str | None:
    """Return the current span as a W3C traceparent (version 00), or None without a valid span."""
    span_context = current_span_context()
    if span_context is None:
        return None
    return (
        f"00-{trace.format_trace_id(span_context.trace_id)}-"
        f"{trace.format_span_id(span_context.span_id)}-{int(span_context.trace_flags):02x}"
    )


# Kafka


def kafka_attributes(
    topic: str,
    operation_type: str,
    *,
    partition: int | None = None,
    offset: int | None = None,
    group: str | None = None,
) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        MESSAGING_SYSTEM: "kafka",
        MESSAGING_DESTINATION: topic,
        MESSAGING_OPERATION_TYPE: operation_type,
        MESSAGING_OPERATION_NAME: operation_type,
    }
    if partition is not None:
        attributes[MESSAGING_PARTITION] = str(partition)
    if offset is not None:
        attributes[KAFKA_OFFSET] = offset
        attributes[KAFKA_MESSAGE_OFFSET] = offset
    if group is not None:
        attributes[MESSAGING_CONSUMER_GROUP] = group
    return attributes


@contextmanager
def process_span(event: Any, group: str) -> Iterator[Span]:
    """Start the CONSUMER span of one consumed message, as a child of its header's context.

    A message without a valid traceparent header starts a new trace. `event` is a faust event
    (or an aiokafka record) with topic, partition, offset and headers. Without a TracerProvider
    it starts no span, so the message's trace context is not passed on either.
    """
    if not recording():
        yield INVALID_SPAN
        return
    message = getattr(event, "message", event)
    attributes = kafka_attributes(
        message.topic,
        "process",
        partition=message.partition,
        offset=message.offset,
        group=group,
    )
    context = extract_context(message_headers(event))
    with _span(f"process {message.topic}", SpanKind.CONSUMER, attributes, context=context) as span:
        yield span


def start_publish_span(topic: str) -> tuple[Span, HeaderList]:
    """Start a PRODUCER span for one message to `topic`; return it and the headers to send.

    The caller ends the span, for example with `end_publish_span` when the broker acknowledged.
    """
    span = tracer().start_span(
        f"publish {topic}", kind=SpanKind.PRODUCER, attributes=kafka_attributes(topic, "send")
    )
    return span, inject_headers(trace.set_span_in_context(span))


def end_publish_span(span: Span, metadata: Any = None, error: BaseException | None = None) -> None:
    """End a span of `start_publish_span` with the record's partition and offset, or its error."""
    if error is not None:
        mark_failed(span, type(error).__name__)
    elif metadata is not None:
        span.set_attribute(MESSAGING_PARTITION, str(metadata.partition))
        span.set_attribute(KAFKA_OFFSET, metadata.offset)
        span.set_attribute(KAFKA_MESSAGE_OFFSET, metadata.offset)
    span.end()


def end_publish_span_when_done(span: Span, future: asyncio.Future[Any]) -> None:
    """End a span of `start_publish_span` when `future`, a send's delivery, completes."""

    def finish(done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            end_publish_span(span, error=asyncio.CancelledError())
        elif (error := done.exception()) is not None:
            end_publish_span(span, error=error)
        else:
            end_publish_span(span, done.result())

    future.add_done_callback(finish)


@contextmanager
def publish_span(topic: str) -> Iterator[HeaderList]:
    """Run a PRODUCER span around a send to `topic`; yield the headers that carry its context."""
    with _span(f"publish {topic}", SpanKind.PRODUCER, kafka_attributes(topic, "send")) as span:
        yield inject_headers(trace.set_span_in_context(span))


# Pipeline steps


@contextmanager
def validation_span() -> Iterator[Span]:
    if not recording():
        yield INVALID_SPAN
        return
    with _span("validate", SpanKind.INTERNAL, {}) as span:
        yield span


def set_validation_result(span: Span, reasons: Sequence[Reason]) -> None:
    """Record whether the record passed and the rules it broke; never the values."""
    span.set_attribute("stream_app.validation.valid", not reasons)
    if reasons:
        span.set_attribute("stream_app.validation.rules", sorted({r.rule for r in reasons}))


@contextmanager
def batch_span(batch: Batch) -> Iterator[Span]:
    """Start the span of one batch's flush under its first record's span, linked to its records.

    The links go to the first MAX_BATCH_LINKS records in offset order. Without any record span
    (tracing was off when they were read), the batch starts a new trace.
    """
    contexts = [
        record.span_context
        for record in batch.records
        if record.span_context is not None and record.span_context.is_valid
    ]
    links = [Link(context) for context in contexts[:MAX_BATCH_LINKS]]
    parent = trace.set_span_in_context(NonRecordingSpan(contexts[0])) if contexts else Context()
    attributes: dict[str, AttributeValue] = {
        "stream_app.batch.id": batch.batch_id,
        "stream_app.batch.records": len(batch.records),
        "stream_app.batch.linked_records": len(links),
        "stream_app.batch.first_offset": batch.first_offset,
        "stream_app.batch.last_offset": batch.last_offset,
        "stream_app.contact_list.id": batch.contact_list_id,
        MESSAGING_SYSTEM: "kafka",
        MESSAGING_DESTINATION: batch.topic,
        MESSAGING_PARTITION: str(batch.partition),
    }
    with _span("batch flush", SpanKind.INTERNAL, attributes, context=parent, links=links) as span:
        yield span


def set_batch_result(span: Span, result: ImportResult | None) -> None:
    """Record a flushed batch's counts and outcome; a batch published by an earlier run has none."""
    if result is None:
        span.set_attribute("stream_app.batch.published_before", True)
        return
    counts = result.counts
    for name in ("received", "valid", "rejected", "duplicates", "submitted", "imported", "failed"):
        span.set_attribute(f"stream_app.batch.{name}", getattr(counts, name))
    span.set_attribute("stream_app.batch.outcome", batch_outcome(counts))
    if result.genesys is not None:
        span.set_attribute("stream_app.genesys.method", result.genesys.method)


# Clients


def safe_url(url: str) -> str:
    """Return `url` without user info, query string and fragment, which may hold secrets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _server_attributes(url: str) -> dict[str, AttributeValue]:
    parts = urlsplit(url)
    attributes: dict[str, AttributeValue] = {}
    if parts.hostname:
        attributes[SERVER_ADDRESS] = parts.hostname
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    if port is not None:
        attributes[SERVER_PORT] = port
    return attributes


@contextmanager
def http_client_span(
    method: str, url: str, *, url_template: str | None = None, attempt: int = 1
) -> Iterator[Span]:
    """Start the CLIENT span of one HTTP request; name it "{method} {url_template}" when given."""
    attributes: dict[str, AttributeValue] = {
        HTTP_METHOD: method,
        URL_FULL: safe_url(url),
        **_server_attributes(url),
    }
    if url_template is not None:
        attributes[URL_TEMPLATE] = url_template
    if attempt > 1:
        attributes[HTTP_RESEND_COUNT] = attempt - 1
    name = f"{method} {url_template}" if url_template else method
    with _span(name, SpanKind.CLIENT, attributes) as span:
        yield span


def set_http_status(span: Span, status: int) -> None:
    """Record the response status; 4xx and 5xx mark a CLIENT span failed (HTTP semantic conventions)."""
    span.set_attribute(HTTP_STATUS, status)
    if status >= 400:
        mark_failed(span, str(status))


@contextmanager
def s3_put_span(bucket: str, key: str, endpoint_url: str | None) -> Iterator[Span]:
    """Start the CLIENT span of one S3 PutObject call."""
    attributes: dict[str, AttributeValue] = {
        RPC_SYSTEM: "aws-api",
        RPC_SERVICE: "S3",
        RPC_METHOD: "PutObject",
        S3_BUCKET: bucket,
        S3_KEY: key,
        **(_server_attributes(endpoint_url) if endpoint_url else {}),
    }
    with _span("S3.PutObject", SpanKind.CLIENT, attributes) as span:
        yield span


@contextmanager
def webhook_delivery_span(webhook_id: str) -> Iterator[Span]:
    """Start the span of one result's delivery to the CRM, around all its HTTP attempts."""
    with _span("webhook deliver", SpanKind.INTERNAL, {"stream_app.webhook.id": webhook_id}) as span:
        yield span


def set_delivery_outcome(span: Span, delivered: bool, attempts: int) -> None:
    """Record a delivery's attempts; one that was not delivered marks the span failed."""
    span.set_attribute("stream_app.webhook.attempts", attempts)
    span.set_attribute("stream_app.webhook.delivered", delivered)
    if not delivered:
        mark_failed(span, "undelivered")
