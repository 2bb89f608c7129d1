"""The service's exception tree: the split between "retry later" and "dead-letter it".

Every error the service raises on purpose derives from `StreamAppError`. The two main branches
decide what happens to the records in flight:

- `RetriableError`: a transient condition outside the record (backpressure, HTTP 429, 5xx,
  timeouts). The caller does not commit the offsets and tries the same records again later.
- `PermanentError`: the record or batch itself is bad. Retrying cannot help, so the caller sends it
  to the dead-letter topic with its reasons and commits the offsets.

`ConfigurationError` is neither: the settings or the mapping file are wrong, and the service must
stop until an operator fixes them.

Clients at the edges (Genesys Cloud, S3, the CRM webhook) add their own subclasses of the two
branches and chain the library error with `raise ... from`. This module contains no such subclasses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from schemas.reason import Reason


class StreamAppError(Exception):
    """Base class of every error that the service raises on purpose."""


class RetriableError(StreamAppError):
    """A transient failure: keep the offsets uncommitted and retry the same records later."""


class PermanentError(StreamAppError):
    """A failure that retrying cannot fix: the record or batch goes to the dead-letter topic."""


class ConfigurationError(StreamAppError):
    """Invalid settings or mapping file: the service stops until an operator fixes them."""


class InvalidRecordError(PermanentError):
    """A single record that cannot be processed, with every reason found.

    `reasons` is never empty. Each reason carries a stable rule code, the field, a masked value
    and a fix, and the caller copies them into the dead-letter record unchanged.
    """

    def __init__(self, reasons: Sequence[Reason]) -> None:
        if not reasons:
            raise ValueError("InvalidRecordError needs at least one reason")
        self.reasons: tuple[Reason, ...] = tuple(reasons)
        super().__init__("; ".join(_describe(reason) for reason in self.reasons))

    @property
    def rule(self) -> str:
        """The rule code of the first reason, for metrics labels and log lines."""
        return self.reasons[0].rule


class DecodeError(InvalidRecordError):
    """A Kafka message value that is not a usable contact event.

    Raised before any field mapping or validation: the value is too large, not UTF-8, not a
    JSON object, or does not match the contact-event or Debezium schema. Rule codes start with
    ``decode.`` or ``debezium.``.
    """


class MappingFileError(ConfigurationError):
    """A field-mapping file that cannot be read or fails validation.

    `problems` lists one line per problem, each naming the contact list and the key.
    """

    def __init__(self, path: Path | str, problems: Sequence[str]) -> None:
        self.path = str(path)
        self.problems: tuple[str, ...] = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid field-mapping file {self.path}:\n{lines}")


def _describe(reason: Reason) -> str:
    if reason.field is None:
        return f"{reason.rule}: {reason.message}"
    return f"{reason.rule} ({reason.field}): {reason.message}"
