"""Publish a customer's CSV or JSONL export as contact events.

Each row becomes one `ContactEvent` keyed by its contact id, so all events of one contact land in
one partition in order. The contact id comes from the source field that the mapping file maps to
the list's id column. The file's encoding is detected when it is not given, because CRM exports are
often Windows-1252 rather than UTF-8. This module does not validate the fields: the worker does,
and rejects with reasons what it cannot import.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from schemas.contact_event import ContactEvent
from stream_app.csv_codec import read_source_file
from stream_app.errors import ConfigurationError
from stream_app.mapping import FieldMapping, ListMapping
from stream_app.observability.spans import (
    end_publish_span,
    end_publish_span_when_done,
    start_publish_span,
)
from stream_app.settings import Settings

logger = logging.getLogger(__name__)


def source_field_for(list_mapping: ListMapping, column: str) -> str:
    """Return the source field that fills `column`, or the column name under identity mapping."""
    if list_mapping.columns is None:
        return column
    return list_mapping.columns.get(column, column)


@dataclass(frozen=True)
class ProduceSummary:
    produced: int
    skipped_without_id: int
    topic: str


def events_from_rows(
    rows: Iterable[dict[str, str | None]],
    list_mapping: ListMapping,
    contact_list: str,
    source: str,
) -> Iterator[tuple[bytes, bytes] | None]:
    """Yield (key, value) per row, or None for a row without a contact id."""
    id_field = source_field_for(list_mapping, list_mapping.id_column)
    now = datetime.now(tz=UTC)
    for row in rows:
        contact_id = (row.get(id_field) or "").strip() if id_field else ""
        if not contact_id:
            yield None
            continue
        event = ContactEvent(
            event_id=str(uuid.uuid4()),
            source=source,
            operation="upsert",
            contact_list=contact_list,
            contact_id=contact_id,
            fields=dict(row),
            occurred_at=now,
        )
        yield contact_id.encode(), event.model_dump_json().encode()


async def produce_file(
    settings: Settings,
    path: Path,
    mapping: FieldMapping,
    contact_list: str | None,
    *,
    encoding: str = "auto",
    source: str = "file",
    show_progress: bool = True,
) -> ProduceSummary:
    """Publish every row of `path` to the contact-events topic; return the counts.

    Rows without a value in the id field are not published and are reported in the summary, with
    a warning naming the field, because no contact id means no stable identity in Genesys Cloud.
    """
    reference = contact_list or mapping.default_contact_list
    list_mapping = mapping.for_list(reference) if reference else None
    if reference is None or list_mapping is None:
        raise ConfigurationError(
            f"contact list {reference!r} is not in the mapping file; pass --contact-list with a "
            "list that has a [lists.NAME] section"
        )

    topic = settings.topics.contact_events
    produced = skipped = 0
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        linger_ms=20,
        max_batch_size=256 * 1024,
        acks="all",
        enable_idempotence=True,
    )
    await producer.start()
    try:
        rows = read_source_file(path, encoding=encoding)
        progress = tqdm(
            unit=" rows", desc=f"Producing to {topic}", disable=not show_progress, file=sys.stderr
        )
        pending = []
        for item in events_from_rows(rows, list_mapping, reference, source):
            progress.update(1)
            if item is None:
                skipped += 1
                continue
            key, value = item
            pending.append(await _send_traced(producer, topic, key, value))
            produced += 1
            if len(pending) >= 1000:
                for future in pending:
                    await future
                pending.clear()
        for future in pending:
            await future
        progress.close()
    finally:
        await producer.stop()

    if skipped:
        logger.warning(
            "%d rows had no value in the id field %r and were not published",
            skipped,
            source_field_for(list_mapping, list_mapping.id_column),
        )
    return ProduceSummary(produced=produced, skipped_without_id=skipped, topic=topic)


async def _send_traced(
    producer: AIOKafkaProducer, topic: str, key: bytes, value: bytes
) -> asyncio.Future[Any]:
    """Send one record with its trace context in the headers; return the delivery future.

    Each record starts a trace with a PRODUCER span, which ends when the broker acknowledges the
    record or the send fails.
    """
    span, headers = start_publish_span(topic)
    try:
        delivery: asyncio.Future[Any] = await producer.send(
            topic, value=value, key=key, headers=headers
        )
    except Exception as error:
        end_publish_span(span, error=error)
        raise
    end_publish_span_when_done(span, delivery)
    return delivery


def dump_summary(summary: ProduceSummary) -> str:
    return json.dumps(
        {
            "produced": summary.produced,
            "skipped_without_id": summary.skipped_without_id,
            "topic": summary.topic,
        }
    )
