"""Tracing set-up from OTEL_* variables, the span file exporter and Kafka header propagation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from local_stack.process import choose_port
from schemas.import_result import TRACEPARENT_PATTERN
from stream_app.observability import propagation, spans
from stream_app.observability.span_file import JsonLinesSpanExporter
from stream_app.observability.tracing import (
    DEFAULT_SERVICE_NAME,
    build_resource,
    build_tracer_provider,
    plan_tracing,
)
from stream_app.pipeline.batching import Batch, BatchRecord, Outcome
from tests.observability.span_support import finished_record, memory_exporter, read_span_file

pytestmark = pytest.mark.tracing


# Which exporters run


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, ()),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ("otlp", "console")),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, ()),
        ({"OTEL_TRACES_EXPORTER": " OTLP , otlp "}, ("otlp",)),
    ],
)
def test_plan_exporters(environ: dict[str, str], exporters: tuple[str, ...]) -> None:
    plan = plan_tracing(environ)
    assert plan.enabled
    assert plan.exporters == exporters
    assert plan.warnings == ()


def test_plan_sdk_disabled() -> None:
    plan = plan_tracing({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"})
    assert not plan.enabled
    assert plan.exporters == ()


def test_plan_unknown_exporter_warns() -> None:
    plan = plan_tracing({"OTEL_TRACES_EXPORTER": "zipkin,otlp"})
    assert plan.exporters == ("otlp",)
    assert len(plan.warnings) == 1
    assert "zipkin" in plan.warnings[0]


def test_plan_grpc_protocol_drops_otlp() -> None:
    plan = plan_tracing(
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}
    )
    assert plan.exporters == ()
    assert "grpc" in plan.warnings[0]


def test_plan_keeps_span_file(tmp_path: Path) -> None:
    plan = plan_tracing({"OTEL_TRACES_EXPORTER": "none"}, tmp_path / "spans.jsonl")
    assert plan.exporters == ()
    assert plan.span_file == tmp_path / "spans.jsonl"


# Resource


def test_resource_default_service_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
    resource = build_resource({})
    assert resource.attributes[SERVICE_NAME] == DEFAULT_SERVICE_NAME
    assert resource.attributes["deployment.environment.name"] == "test"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OTEL_SERVICE_NAME", "crm-sync"), ("OTEL_RESOURCE_ATTRIBUTES", "service.name=crm-sync")],
)
def test_resource_service_name_from_env(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    monkeypatch.setenv(variable, value)
    resource = build_resource({variable: value})
    assert resource.attributes[SERVICE_NAME] == "crm-sync"


# Exporters


def test_span_file_exporter_writes_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "spans.jsonl"
    provider = build_tracer_provider(plan_tracing({}, path), build_resource({}))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("outer", kind=SpanKind.CONSUMER) as outer:
        outer.set_attribute("messaging.system", "kafka")
        with tracer.start_as_current_span("inner"):
            pass
    provider.shutdown()

    written = {span.name: span for span in read_span_file(path)}
    assert set(written) == {"outer", "inner"}
    assert written["outer"].kind == "CONSUMER"
    assert written["outer"].attributes == {"messaging.system": "kafka"}
    assert written["inner"].parent_id == written["outer"].span_id
    assert written["inner"].trace_id == written["outer"].trace_id
    assert len(written["outer"].trace_id) == 32


def test_span_file_exporter_failure_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    exporter = JsonLinesSpanExporter(blocker / "spans.jsonl")
    tracer = build_tracer_provider(plan_tracing({}), build_resource({})).get_tracer("test")
    span = tracer.start_span("lost")
    span.end()

    assert exporter.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]
    assert exporter.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]


def test_unreachable_collector_does_not_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    # No process listens on this loopback port. The exporter's thread fails, and spans go on.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{choose_port(0)}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    plan = plan_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "set"})
    assert plan.exporters == ("otlp",)
    provider = build_tracer_provider(plan, build_resource({}))
    tracer = provider.get_tracer("test")
    for number in range(100):
        with tracer.start_as_current_span(f"span {number}"):
            pass
    provider.shutdown()


# Kafka header propagation


def _span_context() -> SpanContext:
    return SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def test_headers_round_trip() -> None:
    headers = propagation.headers_for_span_context(_span_context())
    assert headers == [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
    for carrier in (headers, tuple(headers), dict(headers)):
        parent = trace.get_current_span(propagation.extract_context(carrier)).get_span_context()
        assert parent.trace_id == _span_context().trace_id
        assert parent.span_id == _span_context().span_id
        assert parent.is_remote


def test_inject_replaces_existing_header() -> None:
    context = trace.set_span_in_context(NonRecordingSpan(_span_context()))
    headers = propagation.inject_headers(context, [("traceparent", b"stale"), ("source", b"crm")])
    assert headers.count(("source", b"crm")) == 1
    assert [name for name, _ in headers].count("traceparent") == 1
    assert dict(headers)["traceparent"] != b"stale"


def test_invalid_span_context_gives_no_headers() -> None:
    assert propagation.headers_for_span_context(None) == []
    assert propagation.headers_for_span_context(trace.INVALID_SPAN_CONTEXT) == []


@pytest.mark.parametrize(
    "headers",
    [
        None,
        [],
        [("traceparent", b"garbage")],
        [("traceparent", b"00-00000000000000000000000000000000-b7ad6b7169203331-01")],
        [("traceparent", None)],
    ],
)
def test_extract_without_valid_parent(headers: propagation.HeadersIn) -> None:
    context = propagation.extract_context(headers)
    assert not trace.get_current_span(context).get_span_context().is_valid


def test_extract_counts_header_not_utf8() -> None:
    before = propagation.extract_failures.count
    context = propagation.extract_context([("traceparent", b"\xff\xfe")])
    assert not trace.get_current_span(context).get_span_context().is_valid
    assert propagation.extract_failures.count == before + 1


# Span helpers


class _Message:
    def __init__(self, headers: propagation.HeadersIn) -> None:
        self.topic = "contact-events"
        self.partition = 3
        self.offset = 41
        self.headers = headers


class _Event:
    def __init__(self, headers: propagation.HeadersIn) -> None:
        self.message = _Message(headers)


def test_process_span_continues_header_context() -> None:
    exporter = memory_exporter()
    headers = propagation.headers_for_span_context(_span_context())
    with spans.process_span(_Event(headers), "group-a") as span:
        traceparent = spans.current_traceparent()
    finished = finished_record(exporter, span)

    assert finished.name == "process contact-events"
    assert finished.kind == "CONSUMER"
    assert finished.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert finished.parent_id == "b7ad6b7169203331"
    assert finished.attributes["messaging.system"] == "kafka"
    assert finished.attributes["messaging.destination.name"] == "contact-events"
    assert finished.attributes["messaging.destination.partition.id"] == "3"
    assert finished.attributes["messaging.kafka.offset"] == 41
    assert finished.attributes["messaging.kafka.message.offset"] == 41
    assert finished.attributes["messaging.consumer.group.name"] == "group-a"
    assert traceparent is not None
    assert re.match(TRACEPARENT_PATTERN, traceparent)
    assert traceparent.split("-")[2] == finished.span_id


def test_process_span_without_header_is_root() -> None:
    exporter = memory_exporter()
    with spans.process_span(_Event(None), "group-a") as span:
        pass
    finished = finished_record(exporter, span)
    assert finished.parent_id is None
    assert finished.trace_id != "0af7651916cd43dd8448eb211c80319c"


def test_span_failure_names_only_error_class() -> None:
    exporter = memory_exporter()
    with (
        pytest.raises(ValueError, match="555-0100"),
        spans.process_span(_Event(None), "group-a") as span,
    ):
        raise ValueError("phone 555-0100 is not valid")
    finished = finished_record(exporter, span)
    assert finished.status == "ERROR"
    assert finished.attributes["error.type"] == "ValueError"
    assert finished.events == ()


def _batch(records: int) -> Batch:
    batch = Batch("contact-events", 2, "list-1", "People", opened_at=0.0)
    for offset in range(records):
        context = SpanContext(
            trace_id=offset + 1, span_id=offset + 1, is_remote=False, trace_flags=TraceFlags(1)
        )
        batch.records.append(
            BatchRecord(partition=2, offset=offset, outcome=Outcome.SUBMIT, span_context=context)
        )
    return batch


def test_batch_span_links_capped() -> None:
    exporter = memory_exporter()
    batch = _batch(spans.MAX_BATCH_LINKS + 20)
    with spans.batch_span(batch) as span:
        pass
    finished = finished_record(exporter, span)

    assert len(finished.links) == spans.MAX_BATCH_LINKS
    assert finished.links[0] == (trace.format_trace_id(1), trace.format_span_id(1))
    assert finished.attributes["stream_app.batch.records"] == spans.MAX_BATCH_LINKS + 20
    assert finished.attributes["stream_app.batch.linked_records"] == spans.MAX_BATCH_LINKS
    assert finished.attributes["stream_app.batch.id"] == batch.batch_id
    assert finished.trace_id == trace.format_trace_id(1)
    assert finished.parent_id == trace.format_span_id(1)


def test_batch_span_without_record_spans_is_root() -> None:
    exporter = memory_exporter()
    batch = _batch(3)
    for record in batch.records:
        record.span_context = None
    with spans.batch_span(batch) as span:
        pass
    finished = finished_record(exporter, span)

    assert finished.parent_id is None
    assert finished.links == ()
    assert finished.attributes["stream_app.batch.records"] == 3
    assert finished.attributes["stream_app.batch.linked_records"] == 0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://bucket.s3.amazonaws.com/uploads/a.csv?X-Amz-Signature=abc&X-Amz-Credential=k",
            "https://bucket.s3.amazonaws.com/uploads/a.csv",
        ),
        (
            "https://user:secret@crm.example.com:8443/hook?token=t#frag",
            "https://crm.example.com:8443/hook",
        ),
        ("http://[::1]:8090/webhooks", "http://[::1]:8090/webhooks"),
    ],
)
def test_safe_url_drops_secrets(url: str, expected: str) -> None:
    assert spans.safe_url(url) == expected


def test_http_span_error_status() -> None:
    exporter = memory_exporter()
    with spans.http_client_span(
        "POST", "http://127.0.0.1:8089/api/v2/x?secret=1", url_template="/api/v2/x", attempt=3
    ) as span:
        spans.set_http_status(span, 503)
    finished = finished_record(exporter, span)

    assert finished.name == "POST /api/v2/x"
    assert finished.kind == "CLIENT"
    assert finished.status == "ERROR"
    assert finished.attributes["url.full"] == "http://127.0.0.1:8089/api/v2/x"
    assert finished.attributes["http.response.status_code"] == 503
    assert finished.attributes["http.request.resend_count"] == 2
    assert finished.attributes["server.address"] == "127.0.0.1"
    assert finished.attributes["server.port"] == 8089
    assert finished.attributes["error.type"] == "503"
