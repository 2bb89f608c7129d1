"""OpenTelemetry SDK set-up, once per process, from the standard OTEL_* environment variables.

The product's code uses only the OpenTelemetry API. `setup_tracing` installs the SDK's
`TracerProvider` for the worker, `stream-app produce` and `stream-app demo`, with one
`BatchSpanProcessor` per exporter, so spans are exported in the processor's own thread and an
unreachable collector never slows or stops processing.

Which exporters run:
- `OTEL_SDK_DISABLED=true`: none, and no SDK either; the API's no-op tracer makes every span
  invalid, while trace context read from Kafka headers still passes through.
- `OTEL_TRACES_EXPORTER` (comma-separated): `otlp`, `console` or `none`.
- Without `OTEL_TRACES_EXPORTER`, OTLP runs only when `OTEL_EXPORTER_OTLP_ENDPOINT` or
  `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set. This differs from the OpenTelemetry default
  (OTLP to http://localhost:4318), because the demo and the tests must not send spans to a port
  that no process of theirs opened. `OTEL_TRACES_EXPORTER=otlp` without an endpoint does use
  that default.
- OTLP goes over HTTP with protobuf (`OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`, the default).
  `grpc` needs the opentelemetry-exporter-otlp-proto-grpc package, which the project does not
  install.
- `STREAM_APP_TRACING__SPAN_FILE=PATH` adds `JsonLinesSpanExporter`, which appends every
  finished span to PATH as one JSON line. The tests read the spans of worker processes from it.

Whatever runs, spans get ids, so the audit log and the Kafka headers carry real trace ids. The
exporter reads its endpoint, headers, timeout and compression from the OTEL_EXPORTER_OTLP_*
variables itself, the processor its queue and delay from OTEL_BSP_*, and the resource its
attributes from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; service.name defaults to
"stream-app".
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry import trace
from opentelemetry.environment_variables import OTEL_TRACES_EXPORTER
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_SDK_DISABLED,
    OTEL_SERVICE_NAME,
)
from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from stream_app.observability.span_file import JsonLinesSpanExporter

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "stream-app"
HTTP_PROTOBUF = "http/protobuf"
SUPPORTED_EXPORTERS = ("otlp", "console")

_installed: TracerProvider | None = None


@dataclass(frozen=True)
class TracingPlan:
    """The set-up `setup_tracing` installs: whether the SDK runs, its exporters and span file."""

    enabled: bool
    exporters: tuple[str, ...] = ()
    span_file: Path | None = None
    warnings: tuple[str, ...] = field(default=())


def plan_tracing(environ: Mapping[str, str], span_file: Path | None = None) -> TracingPlan:
    """Decide from OTEL_* variables which exporters run; see the module docstring for the rules."""
    if environ.get(OTEL_SDK_DISABLED, "").strip().lower() == "true":
        return TracingPlan(enabled=False)

    names = [
        name.strip().lower()
        for name in environ.get(OTEL_TRACES_EXPORTER, "").split(",")
        if name.strip()
    ]
    if not names:
        endpoint_set = any(
            environ.get(variable, "").strip()
            for variable in (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
        )
        names = ["otlp"] if endpoint_set else []
    if "none" in names:
        names = []

    warnings: list[str] = []
    exporters: list[str] = []
    for name in names:
        if name not in SUPPORTED_EXPORTERS:
            warnings.append(
                f"{OTEL_TRACES_EXPORTER} names {name!r}, which this service does not support; "
                f"use one of {', '.join(SUPPORTED_EXPORTERS)} or none"
            )
        elif name not in exporters:
            exporters.append(name)

    protocol = otlp_protocol(environ)
    if "otlp" in exporters and protocol != HTTP_PROTOBUF:
        exporters.remove("otlp")
        warnings.append(
            f"OTLP protocol {protocol!r} is not supported: this service exports OTLP over "
            f"{HTTP_PROTOBUF} only; set {OTEL_EXPORTER_OTLP_PROTOCOL}={HTTP_PROTOBUF}"
        )
    return TracingPlan(
        enabled=True, exporters=tuple(exporters), span_file=span_file, warnings=tuple(warnings)
    )


def otlp_protocol(environ: Mapping[str, str]) -> str:
    """Return the OTLP protocol for traces: the traces variable, the general one, or http/protobuf."""
    for variable in (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL):
        value = environ.get(variable, "").strip().lower()
        if value:
            return value
    return HTTP_PROTOBUF


def build_resource(environ: Mapping[str, str]) -> Resource:
    """Return the SDK's resource from OTEL_* variables, with service.name "stream-app" by default.

    `Resource.create` reads os.environ, so `environ` only decides whether the user named the
    service; the caller passes os.environ in production.
    """
    detected = OTELResourceDetector().detect().attributes
    named = bool(environ.get(OTEL_SERVICE_NAME, "").strip()) or SERVICE_NAME in detected
    return Resource.create({} if named else {SERVICE_NAME: DEFAULT_SERVICE_NAME})


def build_tracer_provider(plan: TracingPlan, resource: Resource) -> TracerProvider:
    """Return a TracerProvider with one BatchSpanProcessor per exporter of `plan`.

    An exporter that cannot be built is logged and left out: tracing never stops the service.
    """
    provider = TracerProvider(resource=resource)
    for exporter in _exporters(plan):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def setup_tracing(
    span_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> TracerProvider | None:
    """Install the SDK's TracerProvider for this process, once, and return it.

    Returns None when OTEL_SDK_DISABLED is true or no exporter is configured. A second call
    returns the provider of the first. The provider flushes its spans at interpreter exit.
    """
    global _installed  # noqa: PLW0603 - one provider per process, as the OpenTelemetry API allows
    if _installed is not None:
        return _installed
    environ = os.environ if environ is None else environ
    plan = plan_tracing(environ, span_file)
    for warning in plan.warnings:
        logger.warning("Tracing: %s", warning)
    if not plan.enabled:
        logger.info("Tracing: the OpenTelemetry SDK is disabled by %s", OTEL_SDK_DISABLED)
        return None

    if not plan.exporters and plan.span_file is None:
        # Without a provider the per-record spans are skipped (spans.recording), so the process
        # records no spans and does not pass on the trace context of the messages it reads.
        logger.info("Tracing: no span exporter is configured; spans are not recorded")
        return None

    provider = build_tracer_provider(plan, build_resource(environ))
    trace.set_tracer_provider(provider)
    _installed = provider
    destinations = [*plan.exporters, *([f"span file {plan.span_file}"] if plan.span_file else [])]
    logger.info(
        "Tracing: exporting spans to %s",
        ", ".join(destinations) if destinations else "nowhere (no exporter configured)",
    )
    return provider


def _exporters(plan: TracingPlan) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    for name in plan.exporters:
        try:
            exporters.append(_build_exporter(name))
        except Exception:
            # A broken exporter configuration must not stop the worker; the spans stay local.
            logger.exception("Tracing: could not build the %s span exporter; it is left out", name)
    if plan.span_file is not None:
        exporters.append(JsonLinesSpanExporter(plan.span_file))
    return exporters


def _build_exporter(name: str) -> SpanExporter:
    if name == "console":
        # Standard error, because a worker's standard output carries the audit log.
        return ConsoleSpanExporter(out=sys.stderr)
    # Imported here, because it loads requests and protobuf, which the disabled case does not need.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    return OTLPSpanExporter()
