"""Trace context in Kafka message headers (W3C traceparent and tracestate).

Kafka clients carry headers as a sequence of (str, bytes) pairs: aiokafka takes a list and
returns a tuple, faust's events keep a dict. `inject_headers` returns a new list with the
context's headers, and `extract_context` reads them back with the globally configured
propagator (`opentelemetry.propagate`, W3C trace context and baggage by default).

`extract_context` catches every exception of reading the context. A header that is not UTF-8,
or a propagator that fails on it, yields an empty context, so the message starts a new trace. Such failures are counted in
`extract_failures`, and the first one is logged as a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import NonRecordingSpan, SpanContext

logger = logging.getLogger(__name__)

HeaderList = list[tuple[str, bytes]]
# Message headers as Kafka clients pass them.
HeadersIn = Sequence[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None


class _ExtractFailures:
    """Count of headers that could not be read; the first failure is logged as a warning."""

    def __init__(self) -> None:
        self.count = 0

    def note(self, problem: str) -> None:
        self.count += 1
        if self.count == 1:
            logger.warning(
                "Ignoring trace context in a Kafka message: %s; later cases are logged at debug "
                "level",
                problem,
            )
        else:
            logger.debug(
                "Ignoring trace context in a Kafka message (%d times): %s", self.count, problem
            )


extract_failures = _ExtractFailures()


def _pairs(headers: HeadersIn) -> Iterable[tuple[str, bytes | None]]:
    if headers is None:
        return ()
    if isinstance(headers, Mapping):
        return headers.items()
    return headers


class KafkaHeaderGetter(Getter[HeadersIn]):
    """Reads header values as text; a value that is not UTF-8 counts as absent."""

    def get(self, carrier: HeadersIn, key: str) -> list[str] | None:
        values: list[str] = []
        for name, value in _pairs(carrier):
            if name.lower() != key or value is None:
                continue
            try:
                values.append(value.decode() if isinstance(value, bytes) else str(value))
            except UnicodeDecodeError:
                extract_failures.note(f"header {name!r} is not UTF-8")
        return values or None

    def keys(self, carrier: HeadersIn) -> list[str]:
        return [name for name, _ in _pairs(carrier)]


class KafkaHeaderSetter(Setter[HeaderList]):
    """Sets a header in a list of (str, bytes) pairs, replacing any header of the same name."""

    def set(self, carrier: HeaderList, key: str, value: str) -> None:
        carrier[:] = [(name, data) for name, data in carrier if name != key]
        carrier.append((key, value.encode()))


GETTER = KafkaHeaderGetter()
SETTER = KafkaHeaderSetter()


def inject_headers(context: Context | None = None, headers: HeaderList | None = None) -> HeaderList:
    """Return a copy of `headers` with the trace context of `context`, or of the current span."""
    carrier: HeaderList = list(headers or [])
    propagate.inject(carrier, context=context, setter=SETTER)
    return carrier


def headers_for_span_context(span_context: SpanContext | None) -> HeaderList:
    """Return trace headers that make `span_context` the parent; none when it is missing or invalid."""
    if span_context is None or not span_context.is_valid:
        return []
    return inject_headers(trace.set_span_in_context(NonRecordingSpan(span_context)))


def extract_context(headers: HeadersIn) -> Context:
    """Return the trace context in `headers`; an empty context (a new root) when there is none."""
    try:
        return propagate.extract(headers, context=Context(), getter=GETTER)
    except Exception as error:  # a third-party propagator configured by OTEL_PROPAGATORS
        extract_failures.note(f"{type(error).__name__}: {error}")
        return Context()


def message_headers(event: Any) -> HeadersIn:
    """Return the headers of a faust event or an aiokafka record, or None."""
    message = getattr(event, "message", event)
    headers = getattr(message, "headers", None)
    return headers if isinstance(headers, Sequence | Mapping) else None
