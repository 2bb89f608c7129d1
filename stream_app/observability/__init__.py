"""Tracing, metrics and the audit trail of the worker and the CLI commands.

`tracing` sets up the OpenTelemetry SDK from the standard OTEL_* variables, `propagation`
carries trace context in Kafka headers, `spans` starts the spans of the pipeline's steps, and
`metrics` defines the instruments and the Prometheus endpoint GET /metrics.
"""
