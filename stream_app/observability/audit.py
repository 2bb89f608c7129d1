"""The audit log: one JSON line per finished batch, per rejected record and per webhook delivery.

Each line is a JSON object with a `type` of `batch`, `rejected_record` or `webhook` and the time
it was written (`time`, ISO 8601 UTC). `trace_id` is the trace id of the span that was current
when the outcome became known, as 32 lowercase hex digits, or "" when there was no valid span.
The three types carry:

- `batch`, written once the batch's import result is published. It has the batch id, the
  contact list id and name, the source topic, partition and first and last offset, and the
  record counts (`total`, `valid`, `imported`, `failed`, `rejected`, `duplicates`). It also has
  the `outcome`, the S3 bucket and key of the CSV archive, the Genesys Cloud import (method,
  state, upload key, request ids), the `reasons` of a batch that Genesys Cloud did not accept,
  and the `webhook_id` under which the CRM receives the result (null when the relay is off).
- `rejected_record`, written when the record is sent to the dead-letter topic: event id, contact
  id, message key, contact list, topic, partition, offset, stage and every reason (rule, field,
  message and masked value).
- `webhook`, written when a delivery to the CRM ends: batch id, whether it was delivered, the
  number of attempts and the last HTTP status or error.

A batch's `outcome` is the one that /metrics and the trace use (`metrics.batch_outcome`):
`imported` when no record was rejected or failed (duplicates only included), `partial` when
some records were rejected and others imported or duplicates, and `failed` when Genesys Cloud
accepted none of its writes (its records are then in the dead-letter topic with a `genesys.*`
rule) or every record was rejected.

No line contains a full phone number or e-mail address: masked values come from
`stream_app.masking`. Every free text (messages, errors) passes through `mask_contact_data`,
which masks each part that looks like an e-mail address or a phone number. Every id and name
(contact id, event id, message key, contact list, field) passes through `mask_identifier`, which
masks one that as a whole looks like an e-mail address or a phone number.
After a crash the worker may publish a batch's result or a dead-letter record again, and then the
audit log has that line twice, with the same batch id or the same partition and offset.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from opentelemetry import trace

from schemas.import_result import ImportResult
from schemas.reason import Reason
from schemas.rejected_record import RejectedRecord
from stream_app.errors import ConfigurationError
from stream_app.masking import mask_email, mask_phone
from stream_app.observability import metrics
from stream_app.settings import AuditSettings

logger = logging.getLogger(__name__)

AUDIT_FILE_NAME = "audit.jsonl"

# An e-mail address anywhere in a text: the local part, "@" and a domain with a dot.
_EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# A run of at least seven digits, optionally after "+" and separated by the characters that
# phone numbers are written with. Seven digits is a local number without its area code.
_PHONE_PATTERN = re.compile(r"\+?\(?\d(?:[\s().-]{0,2}\d){6,}")

# traceparent: version "-" trace id "-" parent id "-" flags
_TRACEPARENT_PATTERN = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_INVALID_TRACE_ID = "0" * 32


def mask_contact_data(text: str | None) -> str | None:
    """Mask every e-mail address and phone-like digit run in `text` with `stream_app.masking`.

    Values that are already masked keep their form, because a masked value has no e-mail address
    and at most two visible digits. A digit run that is not a phone number (a long offset or id
    in a message) is masked too, which errs towards hiding.
    """
    if not text:
        return text
    masked = _EMAIL_PATTERN.sub(lambda match: mask_email(match.group()), text)
    return _PHONE_PATTERN.sub(lambda match: mask_phone(match.group()), masked)


def mask_identifier(value: str | None) -> str | None:
    """Mask an id taken from the input (contact id, event id, message key) if it is contact data.

    An id that as a whole looks like an e-mail address or a phone number is masked like one.
    Other ids stay whole, so that a UUID keeps its digits and the record stays traceable.
    """
    if not value:
        return value
    if _EMAIL_PATTERN.fullmatch(value):
        return mask_email(value)
    if _PHONE_PATTERN.fullmatch(value.strip()):
        return mask_phone(value)
    return value


def current_trace_id() -> str:
    """Return the trace id of the current OpenTelemetry span as 32 hex digits, or ""."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return ""
    return format(context.trace_id, "032x")


def trace_id_of(traceparent: str | None) -> str:
    """Return the trace id of a W3C traceparent, or "" when it is missing or invalid."""
    match = _TRACEPARENT_PATTERN.match(traceparent or "")
    if match is None or match.group(1) == _INVALID_TRACE_ID:
        return ""
    return match.group(1)


def batch_outcome(result: ImportResult) -> str:
    """Return `imported`, `partial` or `failed` for a batch; see the module docstring."""
    return metrics.batch_outcome(result.counts)


def reason_entry(reason: Reason) -> dict[str, str | None]:
    """Return one reason as the audit log writes it, with its texts masked."""
    return {
        "rule": reason.rule,
        "field": mask_identifier(reason.field),
        "message": mask_contact_data(reason.message),
        "value_masked": mask_contact_data(reason.value_masked),
    }


def batch_entry(
    result: ImportResult,
    *,
    topic: str,
    partition: int,
    first_offset: int,
    last_offset: int,
    failure_reasons: Iterable[Reason],
    webhook_enabled: bool,
    trace_id: str,
) -> dict[str, Any]:
    """Return the audit line of a batch whose import result was published.

    `failure_reasons` are the reasons that Genesys Cloud gave for not accepting the batch's
    writes, repeated once per failed record; each distinct reason is written once.
    """
    counts = result.counts
    genesys = result.genesys
    reasons: list[dict[str, str | None]] = []
    for reason in failure_reasons:
        entry = reason_entry(reason)
        if entry not in reasons:
            reasons.append(entry)
    return {
        "type": "batch",
        "time": _now(),
        "batch_id": result.batch_id,
        "contact_list_id": mask_identifier(result.contact_list),
        "contact_list_name": mask_identifier(result.contact_list_name),
        "topic": topic,
        "partition": partition,
        "first_offset": first_offset,
        "last_offset": last_offset,
        "counts": {
            "total": counts.received,
            "valid": counts.valid,
            "imported": counts.imported,
            "failed": counts.failed,
            "rejected": counts.rejected,
            "duplicates": counts.duplicates,
        },
        "outcome": batch_outcome(result),
        "s3_bucket": result.s3.bucket if result.s3 else None,
        "s3_key": result.s3.key if result.s3 else None,
        "genesys": None
        if genesys is None
        else {
            "method": genesys.method,
            "import_state": genesys.import_state,
            "failure_reason": mask_contact_data(genesys.failure_reason),
            "upload_key": genesys.upload_key,
            "request_ids": list(genesys.request_ids),
        },
        "reasons": reasons,
        "webhook_id": result.batch_id if webhook_enabled else None,
        "trace_id": trace_id,
    }


def rejection_entry(
    rejected: RejectedRecord,
    *,
    event_id: str | None,
    contact_id: str | None,
    trace_id: str,
) -> dict[str, Any]:
    """Return the audit line of a record sent to the dead-letter topic."""
    return {
        "type": "rejected_record",
        "time": _now(),
        "event_id": mask_identifier(event_id),
        "contact_id": mask_identifier(contact_id),
        "key": mask_identifier(rejected.key),
        "contact_list": mask_identifier(rejected.contact_list),
        "topic": rejected.topic,
        "partition": rejected.partition,
        "offset": rejected.offset,
        "stage": rejected.stage,
        "reasons": [reason_entry(reason) for reason in rejected.reasons],
        "reasons_omitted": rejected.reasons_omitted,
        "trace_id": trace_id,
    }


def webhook_entry(
    batch_id: str,
    *,
    delivered: bool,
    attempts: int,
    last_status: int | None,
    last_error: str | None,
    trace_id: str,
) -> dict[str, Any]:
    """Return the audit line of a finished webhook delivery (delivered or given up)."""
    return {
        "type": "webhook",
        "time": _now(),
        "batch_id": batch_id,
        "webhook_id": batch_id,
        "delivered": delivered,
        "attempts": attempts,
        "last_status": last_status,
        "last_error": mask_contact_data(last_error),
        "trace_id": trace_id,
    }


class AuditLog:
    """Writes audit lines to a text stream, one JSON object per line, flushed after each line.

    A failed write is logged at the 1st, 10th, 100th, ... failure and the worker goes on:
    the pipeline's outcomes are durable in Kafka whether or not the audit line was written.
    """

    def __init__(self, stream: TextIO | None, *, owns_stream: bool = False, name: str = "") -> None:
        self._stream = stream
        self._owns_stream = owns_stream
        self.name = name
        self.failures = 0

    @classmethod
    def from_settings(cls, settings: AuditSettings, data_dir: Path) -> AuditLog:
        """Open the destination that `settings` name; `file` without a path uses `data_dir`.

        Raises:
            ConfigurationError: the audit file cannot be opened for appending, or the process
                has no standard output.
        """
        if settings.destination == "off":
            return cls(None, name="off")
        if settings.destination == "stdout":
            # mode's worker replaces sys.stdout with a proxy into the logging system, so the
            # audit log writes to the process's original standard output.
            stdout = sys.__stdout__
            if stdout is None:
                raise ConfigurationError(
                    "the audit log goes to standard output, but the process has none; set "
                    "STREAM_APP_AUDIT__DESTINATION=file"
                )
            return cls(stdout, name="stdout")
        path = settings.path or data_dir / AUDIT_FILE_NAME
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            stream = path.open("a", encoding="utf-8", buffering=1)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot open the audit file {path} for appending: {exc}; set "
                "STREAM_APP_AUDIT__PATH to a writable file"
            ) from exc
        return cls(stream, owns_stream=True, name=str(path))

    @property
    def enabled(self) -> bool:
        return self._stream is not None

    def write(self, entry: Mapping[str, Any]) -> None:
        """Append `entry` as one JSON line and flush it."""
        if self._stream is None:
            return
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            self._stream.write(line)
            self._stream.flush()
        except (OSError, ValueError) as exc:
            # ValueError: the stream was closed.
            self.failures += 1
            if self.failures == 10 ** (len(str(self.failures)) - 1):
                logger.error(
                    "Could not write to the audit log %s (%d failures so far): %s",
                    self.name,
                    self.failures,
                    exc,
                )

    def close(self) -> None:
        """Close the audit file; a log on standard output stays open."""
        if self._owns_stream and self._stream is not None:
            self._stream.close()
        self._stream = None


def _now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="milliseconds")
