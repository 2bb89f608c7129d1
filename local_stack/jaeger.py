"""A real Jaeger v2 server on loopback, built from its Go module, with in-memory trace storage.

`stream-app demo` exports its spans over OTLP, and a person checks them in Jaeger as they would in
production. Docker is not available everywhere, so `JaegerServer` builds the `jaeger` binary from
the Go module github.com/jaegertracing/jaeger with the machine's Go toolchain into a per-version
cache, `.cache/jaeger/<version>/jaeger`. It runs that binary as a child process with a generated
OpenTelemetry Collector config: OTLP HTTP and gRPC receivers, the jaeger_storage extension with the
memory backend, and the jaeger_query extension (HTTP query API and gRPC API). Every endpoint is
bound to 127.0.0.1 on a free port.

local_stack.jaeger_cli has the commands that build and serve it and check the demo's traces in it.
This module does not install Go, and it does not build the Jaeger UI assets, so `query_url` serves
Jaeger's placeholder page instead of the UI. The HTTP API under /api works in full.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from local_stack.kafka import default_cache_root
from local_stack.process import (
    LOOPBACK,
    LocalStackError,
    ManagedProcess,
    choose_port,
    port_is_free,
    wait_for_port,
)

logger = logging.getLogger(__name__)

JAEGER_MODULE = "github.com/jaegertracing/jaeger"
# The Go module keeps v1 tags, and every Jaeger v2 release is tagged twice. Its CHANGELOG pairs
# v1.63.0 with v2.0.0 up to v1.74.0 with v2.11.0, so release v2.N.0 is module version v1.(63+N).0.
# NOTE: keeping the patch number (v2.N.P as v1.(63+N).P) is a guess, unchecked for any patch release.
MODULE_MINOR_OFFSET = 63
# 2.12.0 (module v1.75.0, tagged 2025-11-13) is the newest version that the Go module proxy used
# here serves; docker-compose.yml runs the image of the same version. The config and the
# /api/traces parsing were checked against 2.12.0 only.
DEFAULT_VERSION = "2.12.0"
# The go line of the go.mod in module version v1.75.0.
MINIMUM_GO = "1.24.6"

INSTALL_HINT = (
    f"Install Go {MINIMUM_GO} or newer and put `go` on PATH, or set LOCAL_JAEGER_GO to its path. "
    "Or set LOCAL_JAEGER_BINARY to a Jaeger v2 binary that is already built."
)

CONFIG_TEMPLATE = """\
# Written by local_stack.jaeger on each start; edits are overwritten.
# Jaeger v2 reads an OpenTelemetry Collector config. Every endpoint is bound to {host}.
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    # Level none turns off the Collector's own Prometheus endpoint (localhost:8888 by default).
    metrics:
      level: none
    logs:
      level: info

extensions:
  jaeger_storage:
    backends:
      {storage}:
        memory:
          max_traces: {max_traces}
  jaeger_query:
    storage:
      traces: {storage}
    # Jaeger would otherwise trace its own queries and list itself as a service.
    enable_tracing: false
    http:
      endpoint: {host}:{query_http_port}
    grpc:
      endpoint: {host}:{query_grpc_port}

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {host}:{otlp_grpc_port}
      http:
        endpoint: {host}:{otlp_http_port}

processors:
  batch:

exporters:
  jaeger_storage_exporter:
    trace_storage: {storage}
"""
STORAGE_NAME = "memory_store"


def module_version(version: str) -> str:
    """Return the Go module version that Jaeger tags next to release `version`, e.g. v1.75.0 for 2.12.0."""
    match = re.fullmatch(r"2\.(\d+)\.(\d+)", version)
    if match is None:
        raise ValueError(
            f"invalid Jaeger version {version!r}; expected a v2 release such as 2.12.0"
        )
    return f"v1.{int(match.group(1)) + MODULE_MINOR_OFFSET}.{match.group(2)}"


class JaegerServerSettings(BaseSettings):
    """Settings of the local Jaeger server, read from LOCAL_JAEGER_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="LOCAL_JAEGER_", extra="forbid")

    version: str = Field(
        default=DEFAULT_VERSION,
        description="Jaeger v2 release to build, e.g. 2.12.0; built from the matching v1 module tag.",
    )
    go: str = Field(default="go", description="Go executable, a name on PATH or a path.")
    binary: Path | None = Field(
        default=None,
        description="A Jaeger v2 binary to run instead of building one; the build is skipped.",
    )
    cache_dir: Path = Field(
        default_factory=lambda: default_cache_root() / "jaeger",
        description="Folder for the built binary, one subfolder per Jaeger version.",
    )
    otlp_http_port: int = Field(
        default=0, ge=0, le=65535, description="OTLP HTTP port; 0 or a busy port picks a free port."
    )
    otlp_grpc_port: int = Field(
        default=0, ge=0, le=65535, description="OTLP gRPC port; 0 or a busy port picks a free port."
    )
    query_http_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Query API and UI port; 0 or a busy port picks a free port.",
    )
    query_grpc_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Query gRPC API port; 0 or a busy port picks a free port.",
    )
    max_traces: int = Field(
        default=100_000,
        ge=1,
        description="Traces that the memory backend keeps before it drops the oldest.",
    )
    build_timeout: float = Field(
        default=1800.0,
        gt=0,
        description="Seconds allowed for downloading the module and `go build`.",
    )
    startup_timeout: float = Field(
        default=60.0, gt=0, description="Seconds to wait for the query API and the OTLP ports."
    )
    stop_timeout: float = Field(
        default=20.0, gt=0, description="Seconds to wait after SIGTERM before sending SIGKILL."
    )

    @field_validator("version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        module_version(value)
        return value


# -- query API results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """One span as Jaeger's query API returns it; times are microseconds since the Unix epoch."""

    span_id: str
    name: str
    service: str
    start_us: int
    duration_us: int
    parent_span_id: str | None
    # Traces that this span links to. Jaeger stores an OTLP span link as a FOLLOWS_FROM reference.
    linked_trace_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Trace:
    """One trace with all its spans, from every service that took part."""

    trace_id: str
    spans: tuple[Span, ...]

    @property
    def services(self) -> set[str]:
        return {span.service for span in self.spans}


class JaegerQueryError(LocalStackError):
    """A request to Jaeger's query API failed. `retriable` is True when a later request may succeed."""

    def __init__(self, message: str, *, retriable: bool, status_code: int | None = None) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.status_code = status_code


class _UiReference(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ref_type: str = Field(alias="refType")
    trace_id: str = Field(alias="traceID")
    span_id: str = Field(alias="spanID")


class _UiSpan(BaseModel):
    model_config = ConfigDict(extra="ignore")

    span_id: str = Field(alias="spanID")
    operation_name: str = Field(alias="operationName")
    process_id: str = Field(alias="processID")
    start_time: int = Field(alias="startTime")
    duration: int
    references: list[_UiReference] | None = None


class _UiProcess(BaseModel):
    model_config = ConfigDict(extra="ignore")

    service_name: str = Field(alias="serviceName")


class _UiTrace(BaseModel):
    model_config = ConfigDict(extra="ignore")

    trace_id: str = Field(alias="traceID")
    spans: list[_UiSpan]
    processes: dict[str, _UiProcess]


class _UiTracesResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: list[_UiTrace] | None
    errors: list[dict[str, Any]] | None = None


def parse_ui_traces(payload: Any) -> list[Trace]:
    """Convert the JSON body of `GET /api/traces` into traces; raise JaegerQueryError on another shape.

    The format is the one Jaeger's UI reads (checked against module version v1.75.0): each span
    names a process id, and each trace maps process ids to service names.
    """
    try:
        response = _UiTracesResponse.model_validate(payload)
    except ValidationError as exc:
        raise JaegerQueryError(
            f"Jaeger query API returned an unexpected body: {exc}", retriable=False
        ) from exc
    if response.errors:
        raise JaegerQueryError(
            f"Jaeger query API returned errors: {response.errors}", retriable=False
        )

    return [_convert_trace(trace) for trace in response.data or []]


def _convert_trace(trace: _UiTrace) -> Trace:
    spans = []
    for span in trace.spans:
        process = trace.processes.get(span.process_id)
        references = span.references or []
        parent = next((ref.span_id for ref in references if ref.ref_type == "CHILD_OF"), None)
        linked = tuple(
            dict.fromkeys(
                ref.trace_id
                for ref in references
                if ref.ref_type == "FOLLOWS_FROM" and ref.trace_id != trace.trace_id
            )
        )
        spans.append(
            Span(
                span_id=span.span_id,
                name=span.operation_name,
                service=process.service_name if process else "(unknown process)",
                start_us=span.start_time,
                duration_us=span.duration,
                parent_span_id=parent,
                linked_trace_ids=linked,
            )
        )
    spans.sort(key=lambda span: span.start_us)
    return Trace(trace_id=trace.trace_id, spans=tuple(spans))


# -- the server ------------------------------------------------------------------------------------


class JaegerServer:
    """One Jaeger v2 server on 127.0.0.1 as a child process, with traces kept in memory.

    `start` builds the binary on first use, chooses the four ports and writes the config and the
    log into `work_dir`. The ports are kept for the life of this object, so a restart serves on the
    same addresses, but with no traces, because the memory backend loses them on stop.
    """

    def __init__(self, work_dir: Path, settings: JaegerServerSettings | None = None) -> None:
        self.settings = settings or JaegerServerSettings()
        self.work_dir = work_dir
        self.version_dir = self.settings.cache_dir / self.settings.version
        self.otlp_http_port: int | None = None
        self.otlp_grpc_port: int | None = None
        self.query_http_port: int | None = None
        self.query_grpc_port: int | None = None
        self._process: ManagedProcess | None = None

    @property
    def binary_path(self) -> Path:
        """The binary that `start` runs: LOCAL_JAEGER_BINARY, else the cached build."""
        if self.settings.binary is not None:
            return self.settings.binary
        return self.version_dir / "jaeger"

    @property
    def config_path(self) -> Path:
        return self.work_dir / "jaeger.yaml"

    @property
    def log_path(self) -> Path:
        """Jaeger's output (stdout and stderr), appended across restarts."""
        return self.work_dir / "jaeger.log"

    @property
    def otlp_http_endpoint(self) -> str:
        """Base URL for OTEL_EXPORTER_OTLP_ENDPOINT; the receiver takes traces at /v1/traces."""
        return f"http://{LOOPBACK}:{self._port(self.otlp_http_port)}"

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self._port(self.otlp_grpc_port)}"

    @property
    def query_url(self) -> str:
        """Base URL of the HTTP query API (/api/services, /api/traces) and of the UI page."""
        return f"http://{LOOPBACK}:{self._port(self.query_http_port)}"

    def ports(self) -> dict[str, int]:
        """Return the chosen ports by name; empty before the first `start`."""
        named = {
            "otlp_http": self.otlp_http_port,
            "otlp_grpc": self.otlp_grpc_port,
            "query_http": self.query_http_port,
            "query_grpc": self.query_grpc_port,
        }
        return {name: port for name, port in named.items() if port is not None}

    def is_running(self) -> bool:
        return self._process is not None and self._process.is_running()

    @staticmethod
    def _port(port: int | None) -> int:
        if port is None:
            raise LocalStackError("Jaeger server has no ports yet; call start() first")
        return port

    # -- build -------------------------------------------------------------------------------------

    def is_built(self) -> bool:
        """Return True when `start` can run without a build: the binary exists and is executable."""
        return os.access(self.binary_path, os.X_OK) and self.binary_path.is_file()

    def prepare(self) -> Path:
        """Build the binary into `<cache_dir>/<version>/jaeger` unless it is there, and return its path.

        The first build downloads the module and its dependencies from the Go module proxy and
        compiles them, which takes minutes. A file lock keeps two processes from building the same
        version at once, and the second one reuses the first one's binary. Raises LocalStackError
        when go is missing or the download or the build fails.
        """
        if self.settings.binary is not None:
            if not self.is_built():
                raise LocalStackError(
                    f"LOCAL_JAEGER_BINARY {self.settings.binary} is not an executable file. "
                    "Point it at a Jaeger v2 binary, or unset it to build one with Go."
                )
            return self.binary_path

        if self.is_built():
            return self.binary_path

        go = _require_go(self.settings.go)
        self.version_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.version_dir / ".lock"):
            if not self.is_built():
                self._build(go)
        return self.binary_path

    def _build(self, go: str) -> None:
        version = self.settings.version
        module = f"{JAEGER_MODULE}@{module_version(version)}"
        build_log = self.version_dir / "build.log"
        started = time.monotonic()
        logger.info(
            "Building Jaeger %s from %s with %s into %s; the first build takes minutes",
            version,
            module,
            go,
            self.binary_path,
        )

        # A private build folder, so a failed or cancelled build never leaves a partial binary.
        build_dir = Path(tempfile.mkdtemp(prefix="build.", dir=self.version_dir))
        try:
            source_dir = self._download_module(go, module, build_dir)
            # `go install MODULE@VERSION` rejects this module because its go.mod has a replace
            # directive, so the build runs in a writable copy of the source, where go.mod applies.
            source_copy = build_dir / "src"
            shutil.copytree(source_dir, source_copy, symlinks=True)
            _make_writable(source_copy)

            output = build_dir / "jaeger"
            # The flags of Jaeger's Makefile for its release binaries: no cgo, and the version
            # that `jaeger version` prints.
            ldflags = f"-X {JAEGER_MODULE}/internal/version.latestVersion=v{version}"
            argv = [
                go,
                "build",
                "-trimpath",
                "-ldflags",
                ldflags,
                "-o",
                str(output),
                "./cmd/jaeger",
            ]
            self._run_go(argv, source_copy, build_log, f"building Jaeger {version}")
            os.replace(output, self.binary_path)
        finally:
            shutil.rmtree(build_dir, ignore_errors=True)

        logger.info(
            "Built Jaeger %s at %s (%.0f s)", version, self.binary_path, time.monotonic() - started
        )

    def _download_module(self, go: str, module: str, work_dir: Path) -> Path:
        """Download `module` into the Go module cache and return its (read-only) source folder."""
        argv = [go, "mod", "download", "-json", module]
        logger.info("Running %s", " ".join(argv))
        result = self._run_command(argv, work_dir, capture=True)
        try:
            info: dict[str, Any] = json.loads(result.stdout or "{}")
        except json.JSONDecodeError:
            info = {}

        if result.returncode != 0 or "Dir" not in info:
            detail = info.get("Error") or (result.stdout + result.stderr).strip()
            raise LocalStackError(
                f"`go mod download {module}` failed (exit code {result.returncode}): {detail}. "
                "Check that the Go module proxy is reachable and serves this version "
                "(LOCAL_JAEGER_VERSION)."
            )
        return Path(info["Dir"])

    def _run_go(self, argv: list[str], cwd: Path, log_path: Path, action: str) -> None:
        logger.info("Running %s in %s, output in %s", " ".join(argv), cwd, log_path)
        result = self._run_command(argv, cwd, capture=False, log_path=log_path)
        if result.returncode != 0:
            raise LocalStackError(
                f"{action} failed (exit code {result.returncode}). The go.mod of "
                f"{JAEGER_MODULE} names the Go version it needs ({MINIMUM_GO} for 2.12.0). "
                f"Output tail from {log_path}:\n{_tail(log_path)}"
            )

    def _run_command(
        self, argv: list[str], cwd: Path, *, capture: bool, log_path: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CGO_ENABLED": "0"}
        try:
            if capture:
                return subprocess.run(  # noqa: S603 - argv is built here from settings
                    argv,
                    cwd=cwd,
                    env=env,
                    capture_output=True,
                    text=True,
                    stdin=subprocess.DEVNULL,
                    timeout=self.settings.build_timeout,
                    check=False,
                )

            assert log_path is not None
            with log_path.open("w") as log:
                return subprocess.run(  # noqa: S603 - argv is built here from settings
                    argv,
                    cwd=cwd,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    timeout=self.settings.build_timeout,
                    check=False,
                )
        except subprocess.TimeoutExpired as exc:
            raise LocalStackError(
                f"{' '.join(argv)} did not finish within {self.settings.build_timeout:.0f} s "
                "(LOCAL_JAEGER_BUILD_TIMEOUT)."
            ) from exc

    # -- start and stop ----------------------------------------------------------------------------

    def start(self, timeout: float | None = None) -> None:
        """Start Jaeger and block until its query API responds and both OTLP ports accept connections.

        Calls `prepare` first, so a missing binary is built here. Raises LocalStackError with the
        log tail when Jaeger exits, a port is taken, or `timeout` (default: the startup_timeout
        setting) passes; Jaeger is killed then.
        """
        if self.is_running():
            return

        binary = self.prepare()
        self._choose_ports()
        self._check_ports_free()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())

        argv = [str(binary), "--config", str(self.config_path)]
        if self._process is None or self._process.argv != argv:
            self._process = ManagedProcess("jaeger", argv, self.log_path, cwd=self.work_dir)
        process = self._process

        started = time.monotonic()
        process.start()
        try:
            self._wait_until_ready(
                process, self.settings.startup_timeout if timeout is None else timeout
            )
        except BaseException:
            process.kill()
            raise
        logger.info(
            "Jaeger %s ready: OTLP HTTP %s, query %s (%.1f s)",
            self.settings.version,
            self.otlp_http_endpoint,
            self.query_url,
            time.monotonic() - started,
        )

    def stop(self) -> None:
        """Stop Jaeger with SIGTERM, SIGKILL after stop_timeout; idempotent. Its traces are lost."""
        if self._process is not None:
            self._process.stop(self.settings.stop_timeout)

    def config_text(self) -> str:
        """Return the Collector config for the chosen ports, with every endpoint on 127.0.0.1."""
        return CONFIG_TEMPLATE.format(
            host=LOOPBACK,
            storage=STORAGE_NAME,
            max_traces=self.settings.max_traces,
            otlp_http_port=self._port(self.otlp_http_port),
            otlp_grpc_port=self._port(self.otlp_grpc_port),
            query_http_port=self._port(self.query_http_port),
            query_grpc_port=self._port(self.query_grpc_port),
        )

    def _choose_ports(self) -> None:
        if self.ports() and len(self.ports()) == 4:
            return

        preferred = {
            "otlp_http": self.settings.otlp_http_port,
            "otlp_grpc": self.settings.otlp_grpc_port,
            "query_http": self.settings.query_http_port,
            "query_grpc": self.settings.query_grpc_port,
        }
        chosen: dict[str, int] = {}
        for name, port in preferred.items():
            # choose_port logs a warning when a preferred port is busy.
            candidate = choose_port(port)
            while candidate in chosen.values():
                candidate = choose_port(0)
            chosen[name] = candidate
        self.otlp_http_port = chosen["otlp_http"]
        self.otlp_grpc_port = chosen["otlp_grpc"]
        self.query_http_port = chosen["query_http"]
        self.query_grpc_port = chosen["query_grpc"]

    def _check_ports_free(self) -> None:
        for name, port in self.ports().items():
            if not port_is_free(port):
                raise LocalStackError(
                    f"Jaeger {name} port {port} on {LOOPBACK} is already in use by another "
                    "process. Stop that process, or create a new JaegerServer to choose new ports."
                )

    def _wait_until_ready(self, process: ManagedProcess, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error = "no request sent yet"
        while time.monotonic() < deadline:
            if not process.is_running():
                raise LocalStackError(
                    f"Jaeger exited with code {process.exit_code()} during start-up. "
                    f"Config {self.config_path}. Log {self.log_path} tail:\n{process.log_tail()}"
                )
            try:
                self.services()
            except JaegerQueryError as exc:
                last_error = str(exc)
                time.sleep(0.2)
                continue

            # The query API is an extension, which the Collector starts before the receivers.
            remaining = max(deadline - time.monotonic(), 0.1)
            if wait_for_port(self._port(self.otlp_http_port), remaining) and wait_for_port(
                self._port(self.otlp_grpc_port), max(deadline - time.monotonic(), 0.1)
            ):
                return
            last_error = "the OTLP ports did not accept connections"

        raise LocalStackError(
            f"Timed out after {timeout:g} s waiting for Jaeger at {self.query_url} (last error: "
            f"{last_error}). Raise LOCAL_JAEGER_STARTUP_TIMEOUT on a slow machine. "
            f"Log {self.log_path} tail:\n{process.log_tail()}"
        )

    # -- query API ---------------------------------------------------------------------------------

    def services(self) -> list[str]:
        """Return the service names that Jaeger has spans of, from `GET /api/services`."""
        payload = self._get_json("/api/services", {})
        data = payload.get("data") if isinstance(payload, dict) else None
        if data is None:
            return []
        if not isinstance(data, list) or not all(isinstance(name, str) for name in data):
            raise JaegerQueryError(
                f"Jaeger /api/services returned an unexpected body: {payload!r}", retriable=False
            )
        return sorted(data)

    def operations(self, service: str) -> list[str]:
        """Return the span names of `service`, from `GET /api/services/{service}/operations`."""
        payload = self._get_json(f"/api/services/{quote(service, safe='')}/operations", {})
        data = payload.get("data") if isinstance(payload, dict) else None
        if data is None:
            return []
        if not isinstance(data, list) or not all(isinstance(name, str) for name in data):
            raise JaegerQueryError(
                f"Jaeger operations of {service} returned an unexpected body: {payload!r}",
                retriable=False,
            )
        return sorted(data)

    def traces(
        self,
        service: str,
        *,
        operation: str | None = None,
        lookback_seconds: float = 3600.0,
        limit: int = 100,
    ) -> list[Trace]:
        """Return up to `limit` traces with a span of `service` that started in the last `lookback_seconds`.

        Calls `GET /api/traces`, the HTTP API that Jaeger's UI uses. `operation` keeps only traces
        with a span of that exact name. Each trace contains all its spans, also those of other
        services. Raises JaegerQueryError when the request fails.
        """
        end_us = time.time_ns() // 1000
        params = {
            "service": service,
            "start": str(end_us - int(lookback_seconds * 1_000_000)),
            "end": str(end_us),
            "limit": str(limit),
        }
        if operation is not None:
            params["operation"] = operation
        return parse_ui_traces(self._get_json("/api/traces", params))

    def trace(self, trace_id: str) -> Trace | None:
        """Return the trace with id `trace_id` (hex), or None when Jaeger has no such trace."""
        try:
            payload = self._get_json(f"/api/traces/{quote(trace_id, safe='')}", {})
        except JaegerQueryError as exc:
            if exc.status_code == 404:
                return None
            raise
        traces = parse_ui_traces(payload)
        return traces[0] if traces else None

    def _get_json(self, path: str, params: Mapping[str, str]) -> Any:
        url = f"{self.query_url}{path}"
        try:
            response = httpx.get(url, params=params, timeout=10.0)
        except httpx.HTTPError as exc:
            raise JaegerQueryError(
                f"GET {url} failed: {type(exc).__name__}: {exc}", retriable=True
            ) from exc

        if response.status_code != 200:
            raise JaegerQueryError(
                f"GET {url} returned HTTP {response.status_code}: {response.text[:500]}",
                retriable=response.status_code >= 500,
                status_code=response.status_code,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise JaegerQueryError(
                f"GET {url} returned a body that is not JSON: {response.text[:200]!r}",
                retriable=False,
            ) from exc


def _require_go(command: str) -> str:
    path = shutil.which(command)
    if path is None:
        raise LocalStackError(
            f"go not found: {command!r} is not an executable on PATH. Building the local Jaeger "
            f"server needs the Go toolchain. {INSTALL_HINT}"
        )
    return path


def _make_writable(folder: Path) -> None:
    """Add the owner's write bit to every file and folder, which the module cache leaves read-only."""
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = Path(root) / name
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path`, so two processes never build one version at once."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
