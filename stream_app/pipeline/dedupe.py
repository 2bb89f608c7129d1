"""The dedupe decision: is this record new, an update, a duplicate, or a replay of itself?

Identity is (contact list, contact id). The table keeps, per identity, a fingerprint of the mapped
content last accepted and the source position (partition, offset) of the record that set it. The
position is what keeps a replay safe. After a crash the worker re-reads records whose table entries
were already written but whose offsets were never committed. Such a record finds its own position,
or a later one of its partition, in the table, so it is processed again rather than counted as a
duplicate of itself or of a later record with the same content.

This module is pure: it decides, and the pipeline reads and writes the faust table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

# ASCII unit separator. Validation removes control characters from values, and a list id is a
# UUID, so the parts of a key cannot run into each other.
_SEPARATOR = "\x1f"


class Decision(StrEnum):
    NEW = "new"
    UPDATE = "update"
    DUPLICATE = "duplicate"
    REPLAY = "replay"

    @property
    def submits(self) -> bool:
        """True when the record must be written to Genesys Cloud."""
        return self is not Decision.DUPLICATE


@dataclass(frozen=True, slots=True)
class DedupeEntry:
    """The table entry for one identity."""

    fingerprint: str
    partition: int
    offset: int
    accepted_at: float  # Unix seconds

    def encode(self) -> str:
        return f"{self.fingerprint}:{self.partition}:{self.offset}:{self.accepted_at:.0f}"

    @classmethod
    def decode(cls, text: str) -> DedupeEntry:
        """Parse `encode()` output; raise ValueError on anything else."""
        fingerprint, partition, offset, accepted_at = text.split(":")
        return cls(fingerprint, int(partition), int(offset), float(accepted_at))


def identity_key(contact_list_id: str, contact_id: str) -> str:
    return f"{contact_list_id}{_SEPARATOR}{contact_id}"


def channel_key(contact_list_id: str, channels: list[str]) -> str:
    """Identity on normalised phone numbers and e-mail addresses, for seed-style dedupe."""
    return f"{contact_list_id}{_SEPARATOR}channels{_SEPARATOR}{_SEPARATOR.join(sorted(channels))}"


def fingerprint(operation: str, data: Mapping[str, str]) -> str:
    """Return a 16-byte BLAKE2b hex digest of the operation and the mapped, cleaned content.

    Column order does not matter; values are compared after validation, so "334-793-8701" and
    "+13347938701" in the same column fingerprint alike.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(operation.encode())
    for column in sorted(data):
        digest.update(_SEPARATOR.encode())
        digest.update(column.encode())
        digest.update(_SEPARATOR.encode())
        digest.update(data[column].encode())
    return digest.hexdigest()


def decide(
    previous: DedupeEntry | None,
    content_fingerprint: str,
    *,
    partition: int,
    offset: int,
    now: float,
    expire_seconds: float,
) -> Decision:
    """Decide what to do with a record, given the table entry for its identity.

    - no entry, or an entry older than `expire_seconds`: NEW;
    - an entry written by this record or by a later record of the same partition (same partition,
      offset at or after this one): REPLAY, so it is submitted again, which the upsert by contact
      id makes harmless. A later offset means the worker wrote it before a crash and is now
      re-reading uncommitted records, so a matching fingerprint is no duplicate;
    - same fingerprint from another position: DUPLICATE, counted and not submitted;
    - a different fingerprint: UPDATE.
    """
    if previous is None or now - previous.accepted_at > expire_seconds:
        return Decision.NEW

    if previous.partition == partition and previous.offset >= offset:
        return Decision.REPLAY

    if previous.fingerprint == content_fingerprint:
        return Decision.DUPLICATE

    return Decision.UPDATE


@dataclass(frozen=True, slots=True)
class ChannelOwner:
    """The channel-table entry: which contact last claimed a set of phones and e-mails, and where."""

    contact_id: str
    partition: int
    offset: int
    accepted_at: float  # Unix seconds

    def encode(self) -> str:
        return f"{self.partition}:{self.offset}:{self.accepted_at:.0f}:{self.contact_id}"

    @classmethod
    def decode(cls, text: str) -> ChannelOwner:
        """Parse `encode()` output; raise ValueError on anything else.

        The contact id comes last and may itself contain colons.
        """
        partition, offset, accepted_at, contact_id = text.split(":", 3)
        return cls(contact_id, int(partition), int(offset), float(accepted_at))


def channel_values(data: Mapping[str, str], channel_columns: Sequence[str]) -> list[str]:
    """Return the non-empty normalised phone and e-mail values of a validated contact."""
    return [data[column] for column in channel_columns if data.get(column)]


def channels_taken(
    owner: ChannelOwner | None,
    contact_id: str,
    *,
    partition: int,
    offset: int,
    now: float,
    expire_seconds: float,
) -> bool:
    """Return True when another contact already claimed the same phones and e-mails.

    Seed-style identity: two contact ids with equal normalised channels are one person, so the
    later one is a duplicate. The claim of the same contact, an expired claim, and a claim written
    by this record or a later record of its partition (a replay after a crash) do not count.
    """
    if owner is None or now - owner.accepted_at > expire_seconds:
        return False

    if owner.contact_id == contact_id:
        return False

    return not (owner.partition == partition and owner.offset >= offset)
