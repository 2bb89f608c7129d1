"""Span helpers for the observability tests: an in-memory exporter and span files of workers.

The OpenTelemetry API accepts one global TracerProvider per process, so `memory_exporter`
installs an SDK provider on its first call and returns the same exporter afterwards. Tests tell
their spans apart by trace or span id. Worker processes write their spans to the
file named by STREAM_APP_TRACING__SPAN_FILE (`JsonLinesSpanExporter`), which `read_span_file`
parses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span

T = TypeVar("T")

_exporter: InMemorySpanExporter | None = None


def memory_exporter() -> InMemorySpanExporter:
    """Return the in-memory exporter that receives every span this test process ends."""
    global _exporter  # noqa: PLW0603 - one provider per process, as the OpenTelemetry API allows
    if _exporter is None:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider(
                resource=Resource.create({"service.name": "stream-app-tests"})
            )
            trace.set_tracer_provider(provider)
        _exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
    return _exporter


@dataclass(frozen=True)
class SpanRecord:
    """One span in a form shared by the in-memory exporter and the span file."""

    name: str
    kind: str  # "PRODUCER", "CONSUMER", "CLIENT", "INTERNAL" or "SERVER"
    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    parent_id: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()  # (trace_id, span_id) of each link
    status: str = "UNSET"
    events: tuple[dict[str, Any], ...] = ()


def _hex(value: str | None) -> str | None:
    return value.removeprefix("0x") if value else None


def from_readable(span: ReadableSpan) -> SpanRecord:
    context = span.get_span_context()
    assert context is not None
    return SpanRecord(
        name=span.name,
        kind=span.kind.name,
        trace_id=trace.format_trace_id(context.trace_id),
        span_id=trace.format_span_id(context.span_id),
        parent_id=trace.format_span_id(span.parent.span_id) if span.parent else None,
        attributes=dict(span.attributes or {}),
        links=tuple(
            (
                trace.format_trace_id(link.context.trace_id),
                trace.format_span_id(link.context.span_id),
            )
            for link in span.links
        ),
        status=span.status.status_code.name,
        events=tuple({"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events),
    )


def finished_record(exporter: InMemorySpanExporter, span: Span) -> SpanRecord:
    """Return the finished copy of `span` that `exporter` received."""
    span_id = span.get_span_context().span_id
    matches = [s for s in exporter.get_finished_spans() if s.context.span_id == span_id]
    assert len(matches) == 1, f"span {span_id:016x} finished {len(matches)} times"
    return from_readable(matches[0])


def from_json(line: str) -> SpanRecord:
    data = json.loads(line)
    return SpanRecord(
        name=data["name"],
        kind=data["kind"].removeprefix("SpanKind."),
        trace_id=_hex(data["context"]["trace_id"]) or "",
        span_id=_hex(data["context"]["span_id"]) or "",
        parent_id=_hex(data["parent_id"]),
        attributes=data.get("attributes") or {},
        links=tuple(
            (_hex(link["context"]["trace_id"]) or "", _hex(link["context"]["span_id"]) or "")
            for link in data.get("links") or []
        ),
        status=data["status"]["status_code"],
        events=tuple(data.get("events") or []),
    )


def read_span_file(path: Path) -> list[SpanRecord]:
    """Return the spans in a JsonLinesSpanExporter file; an absent file has none."""
    if not path.exists():
        return []
    return [from_json(line) for line in path.read_text().splitlines() if line.strip()]


def children(spans: list[SpanRecord], parent: SpanRecord) -> list[SpanRecord]:
    return [s for s in spans if s.trace_id == parent.trace_id and s.parent_id == parent.span_id]


def only(items: list[T], description: str) -> T:
    """Return the single item of `items`; fail naming `description` otherwise."""
    assert len(items) == 1, f"expected one {description}, found {len(items)}: {items}"
    return items[0]
