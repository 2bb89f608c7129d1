"""A span exporter that appends finished spans to a file, one JSON object per line.

Each line is the SDK's own JSON form of a span (`ReadableSpan.to_json`, as the console exporter
prints it): name, context with hex trace and span ids, kind, parent_id, times, status,
attributes, events, links and resource. Several processes may append to one file. Each export
is one write(2) to a file opened with O_APPEND, so the lines of two processes do not interleave,
unless the kernel writes only part of the data (on a full disk, for example).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger(__name__)


class JsonLinesSpanExporter(SpanExporter):
    """Append spans to `path` as JSON lines; the file and its folder are created when missing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._failures = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write `spans`; a failed write is logged (the first in full) and reported as FAILURE."""
        data = "".join(span.to_json(indent=None) + "\n" for span in spans).encode()
        with self._lock:
            try:
                self._write(data)
            except OSError as error:
                self._failures += 1
                if self._failures == 1:
                    logger.warning("Could not write spans to %s: %s", self.path, error)
                else:
                    logger.debug(
                        "Could not write spans to %s (%d times)", self.path, self._failures
                    )
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Return True: every export is written to the file before it returns."""
        return True

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
