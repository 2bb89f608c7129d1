"""The Debezium change-event envelope, as the JSON converter writes it.

Debezium publishes one message per row change. The value is this envelope, either bare
(``value.converter.schemas.enable=false``) or wrapped as ``{"schema": ..., "payload": envelope}``.
A delete is followed by a tombstone, a message whose value is null. Unwrapping and tombstones
are handled by `stream_app.intake.decode`, not here.

Unknown keys are allowed because Debezium versions and connectors add fields (``transaction``,
``ts_us``, ``ts_ns``, connector-specific ``source`` fields). Row values stay untyped here:
Debezium writes each column with its own JSON type, and the conversion to contact fields
happens in `stream_app.intake.debezium`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class DebeziumSource(BaseModel):
    """The origin of a change. Only the fields that this service reads are declared."""

    model_config = ConfigDict(extra="allow", frozen=True, validate_by_name=True)

    connector: str | None = Field(default=None, description="Connector type, such as postgresql.")
    name: str | None = Field(default=None, description="Logical server name (topic prefix).")
    db: str = Field(description="Database name.")
    schema_name: str | None = Field(
        default=None,
        alias="schema",
        description="Schema name, for connectors that have schemas (PostgreSQL, SQL Server).",
    )
    table: str = Field(description="Table name, without schema or database.")
    ts_ms: int | None = Field(
        default=None,
        description="When the change was made in the database, in milliseconds since the epoch.",
    )


class DebeziumChangeEvent(BaseModel):
    """One row change: the row before and after, the operation and its source."""

    model_config = ConfigDict(extra="allow", frozen=True)

    before: dict[str, Any] | None = Field(
        default=None,
        description=(
            "The row before the change; null for creates and snapshot reads. For PostgreSQL "
            "tables without REPLICA IDENTITY FULL it holds only the primary-key columns."
        ),
    )
    after: dict[str, Any] | None = Field(
        default=None,
        description="The row after the change; null for deletes.",
    )
    op: Literal["c", "r", "u", "d"] = Field(
        description="c = create, r = snapshot read, u = update, d = delete.",
    )
    source: DebeziumSource
    ts_ms: int | None = Field(
        default=None,
        description="When the connector processed the change, in milliseconds since the epoch.",
    )
