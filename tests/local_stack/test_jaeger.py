"""The Jaeger v2 launcher, checked against a real Jaeger with the OpenTelemetry SDK's OTLP exporter.

Building Jaeger from its Go module takes minutes, so the integration tests run only when Go is on
PATH and the binary is already in .cache/jaeger/<version>/, or when LOCAL_JAEGER_BUILD=1 allows
the tests to build it. `.venv/bin/python -m local_stack.jaeger_cli build` builds it once. The other
tests need neither.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yaml
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanContext

from local_stack.jaeger import JaegerServer, JaegerServerSettings, Span, Trace, module_version
from local_stack.jaeger_cli import (
    CHECK_PROG_VARIABLE,
    candidate_journeys,
    describe_demo_failure,
    main,
    missing_span_kinds,
    name_kinds,
    parse_args,
    select_journey,
)
from local_stack.process import LOOPBACK, LocalStackError, port_is_free

# Bounds the polling of the query API; the test fails when a trace has not arrived by then.
QUERY_WAIT_SECONDS = 60.0


def jaeger_skip_reason() -> str | None:
    """Return why the integration tests cannot run here, or None when they can."""
    settings = JaegerServerSettings()
    if shutil.which(settings.go) is None:
        return f"go not found ({settings.go!r}); the local Jaeger server is built with Go"
    if os.environ.get("LOCAL_JAEGER_BUILD") == "1":
        return None
    if JaegerServer(Path("unused"), settings).is_built():
        return None
    return (
        "Jaeger binary not built; run `.venv/bin/python -m local_stack.jaeger_cli build` once, "
        "or set LOCAL_JAEGER_BUILD=1 to build it in the test (it takes minutes)"
    )


requires_jaeger = pytest.mark.skipif(
    jaeger_skip_reason() is not None, reason=jaeger_skip_reason() or ""
)


@pytest.fixture
def jaeger(tmp_path: Path) -> Iterator[JaegerServer]:
    server = JaegerServer(tmp_path / "jaeger")
    server.start()
    yield server
    server.stop()


def export_spans(
    endpoint: str, service: str, names: Sequence[str], links: Sequence[SpanContext] = ()
) -> list[SpanContext]:
    """Export one new trace whose first span, linked to `links`, is the parent of the others.

    Returns the span contexts in the order of `names`.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
    )
    tracer = provider.get_tracer("tests.local_stack.test_jaeger")

    contexts = []
    root_links = [Link(context) for context in links]
    with tracer.start_as_current_span(names[0], context=Context(), links=root_links) as parent:
        contexts.append(parent.get_span_context())
        for name in names[1:]:
            with tracer.start_as_current_span(name) as child:
                contexts.append(child.get_span_context())

    assert provider.force_flush(timeout_millis=30_000), "OTLP exporter did not flush within 30 s"
    provider.shutdown()
    return contexts


def wait_for_traces(server: JaegerServer, service: str, count: int = 1) -> list[Trace]:
    deadline = time.monotonic() + QUERY_WAIT_SECONDS
    while time.monotonic() < deadline:
        traces = server.traces(service, lookback_seconds=600)
        if len(traces) >= count:
            return traces
        time.sleep(0.5)
    raise AssertionError(
        f"fewer than {count} traces of service {service} in Jaeger within "
        f"{QUERY_WAIT_SECONDS:.0f} s; "
        f"log {server.log_path}"
    )


@pytest.mark.integration
@requires_jaeger
def test_exported_span_is_queryable(jaeger: JaegerServer) -> None:
    service = f"jaeger-test-{uuid.uuid4().hex[:8]}"
    names = [f"parent-{uuid.uuid4().hex[:8]}", f"child-{uuid.uuid4().hex[:8]}"]

    parent, child = export_spans(jaeger.otlp_http_endpoint, service, names)
    traces = wait_for_traces(jaeger, service)

    assert len(traces) == 1
    trace = traces[0]
    # Ids are compared as numbers, so the check does not depend on how Jaeger pads the hex.
    assert int(trace.trace_id, 16) == parent.trace_id
    assert trace.services == {service}
    assert sorted(span.name for span in trace.spans) == sorted(names)

    by_name = {span.name: span for span in trace.spans}
    assert int(by_name[names[0]].span_id, 16) == parent.span_id
    assert by_name[names[0]].parent_span_id is None
    assert int(by_name[names[1]].span_id, 16) == child.span_id
    child_parent_id = by_name[names[1]].parent_span_id
    assert child_parent_id is not None
    assert int(child_parent_id, 16) == parent.span_id
    assert service in jaeger.services()


@pytest.mark.integration
@requires_jaeger
def test_check_follows_batch_links(jaeger: JaegerServer) -> None:
    service = f"jaeger-journey-{uuid.uuid4().hex[:8]}"
    record = export_spans(
        jaeger.otlp_http_endpoint,
        service,
        ["publish contact-events", "process contact-events", "validate"],
    )
    batch = export_spans(
        jaeger.otlp_http_endpoint,
        service,
        ["batch flush", "S3.PutObject", "webhook deliver"],
        links=[record[1]],
    )
    traces = wait_for_traces(jaeger, service, count=2)

    journey = select_journey(candidate_journeys(jaeger, service, traces, lookback=600))

    assert [int(trace.trace_id, 16) for trace in journey] == [
        record[0].trace_id,
        batch[0].trace_id,
    ]
    assert missing_span_kinds(journey) == []
    assert missing_span_kinds(journey[:1]) == ["batch", "webhook delivery"]
    assert missing_span_kinds(journey[1:]) == ["produce"]
    batch_root = journey[1].spans[0]
    assert batch_root.name == "batch flush"
    assert [int(trace_id, 16) for trace_id in batch_root.linked_trace_ids] == [record[0].trace_id]


@pytest.mark.integration
@requires_jaeger
def test_check_reports_missing_webhook(jaeger: JaegerServer) -> None:
    service = f"jaeger-partial-{uuid.uuid4().hex[:8]}"
    record = export_spans(jaeger.otlp_http_endpoint, service, ["Kafka Produce", "process"])
    export_spans(jaeger.otlp_http_endpoint, service, ["Batch.Upload"], links=[record[0]])
    traces = wait_for_traces(jaeger, service, count=2)

    journey = select_journey(candidate_journeys(jaeger, service, traces, lookback=600))

    assert len(journey) == 2
    assert missing_span_kinds(journey) == ["webhook delivery"]


@pytest.mark.integration
@requires_jaeger
def test_stop_frees_ports(tmp_path: Path) -> None:
    server = JaegerServer(tmp_path / "jaeger")
    server.start()
    ports = server.ports()
    try:
        assert len(set(ports.values())) == 4
        for name, port in ports.items():
            assert not port_is_free(port), f"Jaeger {name} port {port} is not listening"
    finally:
        server.stop()

    assert not server.is_running()
    for name, port in ports.items():
        assert port_is_free(port), f"Jaeger {name} port {port} is still in use after stop"


def test_config_binds_every_endpoint_to_loopback(tmp_path: Path) -> None:
    server = JaegerServer(tmp_path)
    server.otlp_http_port, server.otlp_grpc_port = 43180, 43170
    server.query_http_port, server.query_grpc_port = 16686, 16685

    config = yaml.safe_load(server.config_text())
    endpoints = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "endpoint":
                    endpoints.append(value)
                collect(value)

    collect(config)
    assert sorted(endpoints) == sorted(
        f"{LOOPBACK}:{port}" for port in (43180, 43170, 16686, 16685)
    )
    assert config["service"]["telemetry"]["metrics"]["level"] == "none"
    assert config["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]


def test_prepare_without_go_names_the_fix(tmp_path: Path) -> None:
    settings = JaegerServerSettings(go="no-such-go-toolchain", cache_dir=tmp_path / "cache")
    server = JaegerServer(tmp_path / "run", settings)

    with pytest.raises(LocalStackError) as info:
        server.prepare()

    message = str(info.value)
    assert "go not found" in message
    assert "LOCAL_JAEGER_GO" in message
    assert not server.binary_path.exists()


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("publish contact-events", ["produce"]),
        ("Kafka PRODUCE", ["produce"]),
        ("batch flush", ["batch"]),
        ("webhook deliver", ["webhook delivery"]),
        ("publish webhook batch", ["produce", "batch", "webhook delivery"]),
        ("validate", []),
        ("S3.PutObject", []),
    ],
)
def test_name_kinds_matches_substrings(name: str, kinds: list[str]) -> None:
    assert name_kinds(name) == kinds


def test_select_journey_prefers_complete() -> None:
    def trace(*names: str) -> Trace:
        spans = tuple(
            Span(
                span_id=f"{index:x}",
                name=name,
                service="s",
                start_us=index,
                duration_us=1,
                parent_span_id=None,
            )
            for index, name in enumerate(names)
        )
        return Trace(trace_id=uuid.uuid4().hex, spans=spans)

    partial = [trace("publish a", "validate")]
    better = [trace("publish a"), trace("batch flush")]
    complete = [trace("publish a"), trace("batch flush", "webhook deliver")]

    def journeys() -> Iterator[list[Trace]]:
        yield partial
        yield better
        yield complete
        raise AssertionError("select_journey read past the first complete journey")

    assert select_journey(journeys()) is complete
    assert select_journey([partial, better]) is better
    assert select_journey([]) == []


@pytest.mark.parametrize(
    ("release", "module"),
    [("2.0.0", "v1.63.0"), ("2.11.0", "v1.74.0"), ("2.12.0", "v1.75.0"), ("2.15.1", "v1.78.1")],
)
def test_module_version_of_release(release: str, module: str) -> None:
    assert module_version(release) == module


@pytest.mark.parametrize("release", ["1.75.0", "v2.12.0", "2.12", "latest"])
def test_module_version_rejects_non_v2(release: str) -> None:
    with pytest.raises(ValueError, match="invalid Jaeger version"):
        module_version(release)


def test_demo_success_goes_on_to_query() -> None:
    assert describe_demo_failure(0) is None


@pytest.mark.parametrize(
    ("exit_code", "cause"),
    [
        (1, "stream-app demo failed with exit code 1"),
        (2, "stream-app demo failed with exit code 2"),
        (-9, "stream-app demo was killed by signal 9"),
    ],
)
def test_demo_failure_stops_check(exit_code: int, cause: str) -> None:
    message = describe_demo_failure(exit_code)

    assert message is not None
    assert message.startswith(cause)
    assert "Jaeger was not queried" in message


def test_check_usage_names_prog(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["check", "--bogus"], check_prog="scripts/jaeger-check.sh")

    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("usage: scripts/jaeger-check.sh [-h] [--service SERVICE]")
    assert "scripts/jaeger-check.sh: error: unrecognized arguments: --bogus" in err
    assert "local_stack.jaeger_cli" not in err


def test_check_usage_default_prog(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["check", "--bogus"])

    err = capsys.readouterr().err
    assert err.startswith("usage: python -m local_stack.jaeger_cli check [-h]")
    assert "check: error: unrecognized arguments: --bogus" in err


def test_main_reads_check_prog(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CHECK_PROG_VARIABLE, "my-check")

    with pytest.raises(SystemExit):
        main(["check", "--bogus"])

    err = capsys.readouterr().err
    assert err.startswith("usage: my-check [-h]")
    assert "my-check: error: unrecognized arguments: --bogus" in err


def test_script_usage_names_script() -> None:
    # The option error ends the script before Jaeger is built or started.
    script = Path(__file__).resolve().parents[2] / "scripts" / "jaeger-check.sh"

    completed = subprocess.run(
        [str(script), "--bogus"], capture_output=True, text=True, check=False, timeout=120
    )

    assert completed.returncode == 2
    assert completed.stderr.startswith(f"usage: {script} [-h]")
    assert f"{script}: error: unrecognized arguments: --bogus" in completed.stderr
