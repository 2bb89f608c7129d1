#!/usr/bin/env bash
# Check that `stream-app demo` exports traces that Jaeger can show, with no Docker involved.
#
#   scripts/jaeger-check.sh [check options] [-- stream-app demo options]
#
# Builds Jaeger v2 from its Go module with the machine's Go toolchain into .cache/jaeger/<version>/
# on first use (several minutes), starts it on 127.0.0.1 with in-memory storage, and runs
# .venv/bin/stream-app demo with OTEL_EXPORTER_OTLP_ENDPOINT pointing at it. Then it queries
# Jaeger for the traces of service stream-app and prints how many there are and the spans of one
# record. `--help` lists the check options, such as --service and --settle-timeout.
#
# Exit status: 0 when one record's traces have a produce, a batch and a webhook delivery span, 1
# when none have or the demo failed, 2 when Jaeger could not be built or started or .venv is
# missing. After a failed demo the check stops without querying Jaeger.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    echo "jaeger-check: .venv/bin/python not found. Run ./dev test once to create .venv, then run again." >&2
    exit 2
fi

# JAEGER_CHECK_PROG makes the usage and errors name this script instead of the Python module.
JAEGER_CHECK_PROG="$0" exec .venv/bin/python -m local_stack.jaeger_cli check "$@"
