"""The input of a fault run: contact events with known expected outcomes, produced to Kafka.

`build_workload` plans N messages from rows of the CMS hospital file that ships with the package.
Each event has a unique event id and a known expected outcome:

- new contacts (most events), each with content no other event has;
- updates of an earlier contact with new content (about 3 %);
- records with an invalid phone number, on their own contact ids (about 2 %);
- exact duplicates: the latest content of an earlier contact again, under a new event id (about
  5 %). A contact that got a duplicate is never changed again, so the duplicate stays a duplicate;
- deletes of an earlier contact (about 0.5 %), which is never written again afterwards;
- a few poison messages that cannot be decoded: not JSON, invalid UTF-8, and a JSON event with
  wrong value types.

`produce_workload` publishes the messages keyed by contact id and records the partition and offset
of each one, which is how the checker finds out what happened to every message.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aiokafka import AIOKafkaProducer

from stream_app.csv_codec import read_source_file
from stream_app.demo import DEFAULT_INPUT
from stream_app.validation.phone import normalize_phone

LIST_KEY = "faults"
PHONE_REGION = "US"
COLUMNS = ("id", "name", "phone", "city", "state")

INVALID_SHARE = 0.02
DUPLICATE_SHARE = 0.05
UPDATE_SHARE = 0.03
DELETE_SHARE = 0.005
# One poison message of each kind per this many records, and at least one of each kind.
RECORDS_PER_POISON_SET = 10_000


@dataclass(frozen=True)
class WorkloadShares:
    """The share of each event kind, the rest being new contacts. `poison` adds the poison sets."""

    invalid: float = INVALID_SHARE
    duplicate: float = DUPLICATE_SHARE
    update: float = UPDATE_SHARE
    delete: float = DELETE_SHARE
    poison: bool = True


FAULT_RUN_SHARES = WorkloadShares()


class EventKind(StrEnum):
    NEW = "new"
    UPDATE = "update"
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    DELETE = "delete"
    POISON = "poison"


# The outcome the service should report for each kind. "dead-letter" means a record on the
# dead-letter topic and no import result, because the message never became a contact event.
EXPECTED_OUTCOME: dict[EventKind, str] = {
    EventKind.NEW: "accepted",
    EventKind.UPDATE: "accepted",
    EventKind.INVALID: "rejected",
    EventKind.DUPLICATE: "duplicate",
    EventKind.DELETE: "deleted",
    EventKind.POISON: "dead-letter",
}


@dataclass
class PlannedEvent:
    """One message of the workload; `partition` and `offset` are set once it is produced."""

    kind: EventKind
    key: bytes
    value: bytes
    event_id: str | None
    contact_id: str | None
    partition: int = -1
    offset: int = -1
    # The record's Kafka timestamp (CreateTime, Unix milliseconds), set once it is produced.
    timestamp_ms: int = -1

    @property
    def expected_outcome(self) -> str:
        return EXPECTED_OUTCOME[self.kind]

    @property
    def position(self) -> tuple[int, int]:
        return (self.partition, self.offset)


@dataclass
class Workload:
    """The planned messages and the contact list's expected content once all are imported."""

    events: list[PlannedEvent]
    # Contact id -> expected "name" value for every contact that must exist in the end.
    final_names: dict[str, str]
    counts: dict[str, int] = field(default_factory=dict)

    def by_position(self) -> dict[tuple[int, int], PlannedEvent]:
        return {event.position: event for event in self.events}

    def by_event_id(self) -> dict[str, PlannedEvent]:
        return {event.event_id: event for event in self.events if event.event_id is not None}


def mapping_text(contact_list_name: str) -> str:
    """Return the mapping file of the fault runs' single contact list."""
    columns = "\n".join(f'{column} = "{column}"' for column in COLUMNS)
    return f"""\
[defaults]
contact_list = "{LIST_KEY}"
phone_region = "{PHONE_REGION}"

[lists.{LIST_KEY}]
contact_list = "{contact_list_name}"
id_column = "id"

[lists.{LIST_KEY}.columns]
{columns}
"""


def _cms_rows() -> list[dict[str, str]]:
    """Return name, city, state and phone of every CMS row whose phone number is valid."""
    rows = []
    for row in read_source_file(DEFAULT_INPUT):
        phone = row.get("Phone Number") or ""
        if not isinstance(normalize_phone(phone, PHONE_REGION), str):
            continue
        rows.append(
            {
                "name": row.get("Hospital Name") or "",
                "city": row.get("City") or "",
                "state": row.get("State") or "",
                "phone": phone,
            }
        )
    return rows


def _invalid_phone(valid_phone: str, rng: random.Random) -> str:
    # Exchange 000 is never assigned in the North American Numbering Plan.
    phone = f"{valid_phone[:3]}000{rng.randrange(10_000):04d}"
    assert not isinstance(normalize_phone(phone, PHONE_REGION), str), phone
    return phone


def _event_value(
    event_id: str, contact_id: str, operation: str, fields: dict[str, Any], occurred_at: str
) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "source": "fault-run",
            "operation": operation,
            "contact_list": LIST_KEY,
            "contact_id": contact_id,
            "fields": fields,
            "occurred_at": occurred_at,
        }
    ).encode()


def _poison_values(number: int) -> Iterator[bytes]:
    yield f"poison {number}: this is not JSON {{".encode()
    yield b'{"event_id": "poison-' + str(number).encode() + b'", "source": "\xff\xfe"}'
    # A phone number sent as a JSON number and a timestamp sent as Unix seconds: both rejected.
    yield json.dumps(
        {
            "event_id": f"poison-types-{number}",
            "source": "fault-run",
            "operation": "upsert",
            "contact_list": LIST_KEY,
            "contact_id": f"poison-{number}",
            "fields": {"id": f"poison-{number}", "phone": 3347938701},
            "occurred_at": 1_764_000_000,
        }
    ).encode()


def build_workload(records: int, seed: int, shares: WorkloadShares = FAULT_RUN_SHARES) -> Workload:
    """Plan `records` messages (poison messages included) with the given shares.

    The default shares are the ones in the module docstring.
    """
    if records < 100:
        raise ValueError(f"a workload needs at least 100 records, got {records}")

    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not security
    planner = _Planner(rng, _cms_rows(), shares)
    poison_sets = max(1, records // RECORDS_PER_POISON_SET) if shares.poison else 0
    poison_values = [value for number in range(poison_sets) for value in _poison_values(number)]
    poison_slots = set(rng.sample(range(records), len(poison_values)))

    events: list[PlannedEvent] = []
    for index in range(records):
        if index in poison_slots:
            key = f"poison-{index}".encode()
            events.append(PlannedEvent(EventKind.POISON, key, poison_values.pop(), None, None))
        else:
            events.append(planner.next_event(rng.random()))

    counts = {kind.value: 0 for kind in EventKind}
    for event in events:
        counts[event.kind.value] += 1
    return Workload(events=events, final_names=planner.final_names(), counts=counts)


class _Planner:
    """Draws contact events and tracks each contact's latest content and whether it may change."""

    def __init__(
        self, rng: random.Random, base_rows: list[dict[str, str]], shares: WorkloadShares
    ) -> None:
        self.rng = rng
        self.base_rows = base_rows
        self.shares = shares
        self.occurred_at = datetime.now(tz=UTC).isoformat()
        self.run_tag = uuid.UUID(int=rng.getrandbits(128)).hex[:8]
        self.latest: dict[str, dict[str, str]] = {}  # contact id -> latest valid fields
        self.open_ids: list[str] = []  # contacts that may still change
        self.frozen_ids: list[str] = []  # contacts that got a duplicate and never change again
        self.deleted: set[str] = set()
        self.versions: dict[str, int] = {}
        self.base_names: dict[str, str] = {}
        self.contacts_created = 0

    def next_event(self, draw: float) -> PlannedEvent:
        shares = self.shares
        thresholds = (
            (shares.invalid, self._invalid, True),
            (shares.duplicate, self._duplicate, bool(self.open_ids or self.frozen_ids)),
            (shares.update, self._update, bool(self.open_ids)),
            (shares.delete, self._delete, bool(self.open_ids)),
        )
        limit = 0.0
        for share, make, possible in thresholds:
            limit += share
            if draw < limit:
                if possible:
                    return make()
                break
        return self._new()

    def final_names(self) -> dict[str, str]:
        return {
            contact_id: fields["name"]
            for contact_id, fields in self.latest.items()
            if contact_id not in self.deleted
        }

    def _event(
        self, kind: EventKind, contact_id: str, fields: dict[str, str], operation: str = "upsert"
    ) -> PlannedEvent:
        event_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        value = _event_value(event_id, contact_id, operation, fields, self.occurred_at)
        return PlannedEvent(kind, contact_id.encode(), value, event_id, contact_id)

    def _new_contact_id(self) -> str:
        self.contacts_created += 1
        return f"{self.run_tag}-{self.contacts_created:07d}"

    def _base_row(self) -> dict[str, str]:
        return self.base_rows[self.rng.randrange(len(self.base_rows))]

    def _take_open_id(self) -> str:
        position = self.rng.randrange(len(self.open_ids))
        contact_id = self.open_ids[position]
        self.open_ids[position] = self.open_ids[-1]
        self.open_ids.pop()
        return contact_id

    def _new(self) -> PlannedEvent:
        contact_id = self._new_contact_id()
        row = self._base_row()
        self.base_names[contact_id] = f"{row['name']} #{contact_id}"
        fields = {
            "id": contact_id,
            "name": f"{self.base_names[contact_id]} v1",
            "phone": row["phone"],
            "city": row["city"],
            "state": row["state"],
        }
        self.latest[contact_id] = fields
        self.versions[contact_id] = 1
        self.open_ids.append(contact_id)
        return self._event(EventKind.NEW, contact_id, fields)

    def _invalid(self) -> PlannedEvent:
        contact_id = self._new_contact_id()
        row = self._base_row()
        fields = {
            "id": contact_id,
            "name": f"{row['name']} #{contact_id}",
            "phone": _invalid_phone(row["phone"], self.rng),
            "city": row["city"],
            "state": row["state"],
        }
        return self._event(EventKind.INVALID, contact_id, fields)

    def _duplicate(self) -> PlannedEvent:
        use_frozen = self.frozen_ids and (not self.open_ids or self.rng.random() < 0.3)
        if use_frozen:
            contact_id = self.frozen_ids[self.rng.randrange(len(self.frozen_ids))]
        else:
            contact_id = self._take_open_id()
            self.frozen_ids.append(contact_id)
        return self._event(EventKind.DUPLICATE, contact_id, dict(self.latest[contact_id]))

    def _update(self) -> PlannedEvent:
        contact_id = self.open_ids[self.rng.randrange(len(self.open_ids))]
        self.versions[contact_id] += 1
        fields = dict(self.latest[contact_id])
        fields["name"] = f"{self.base_names[contact_id]} v{self.versions[contact_id]}"
        self.latest[contact_id] = fields
        return self._event(EventKind.UPDATE, contact_id, fields)

    def _delete(self) -> PlannedEvent:
        contact_id = self._take_open_id()
        self.deleted.add(contact_id)
        return self._event(EventKind.DELETE, contact_id, {}, operation="delete")


async def produce_workload(bootstrap_servers: str, topic: str, workload: Workload) -> None:
    """Publish every message in order and store its partition, offset and timestamp on the event."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        pending = []
        for event in workload.events:
            pending.append((event, await producer.send(topic, value=event.value, key=event.key)))
            if len(pending) >= 2000:
                await _record_positions(pending)
                pending.clear()
        await _record_positions(pending)
    finally:
        await producer.stop()


async def _record_positions(pending: list[tuple[PlannedEvent, Any]]) -> None:
    for event, future in pending:
        metadata = await future
        event.partition = metadata.partition
        event.offset = metadata.offset
        event.timestamp_ms = metadata.timestamp
