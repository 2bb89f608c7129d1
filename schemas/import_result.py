"""The import result: one message per batch, to the results topic and the CRM webhook.

A batch is the set of records that the service flushed together for one contact list. The
result contains the record counts, the location of the CSV archive on S3, the state that
Genesys Cloud reported, and the outcome of each record. The same JSON is the body of the
signed CRM webhook.

The counts must add up, and the model checks that on construction (see `ImportCounts`). This
module does not sign or send anything.

Consumers must ignore keys that they do not know, because later versions may add fields.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, NonNegativeInt, model_validator

from schemas.reason import Reason

Outcome = Literal["accepted", "rejected", "duplicate", "deleted"]

# W3C Trace Context, version 00: https://www.w3.org/TR/trace-context/#traceparent-header
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


class ImportCounts(BaseModel):
    """Record counts of one batch.

    Every received record is counted once as valid, rejected or duplicate, so
    ``received == valid + rejected + duplicates``. Of the valid records, `submitted` were sent
    to Genesys Cloud (upserts and deletes), and of those `imported` succeeded and `failed` did
    not, so ``imported + failed <= submitted <= valid``. ``submitted - imported - failed`` is
    the number of records whose state Genesys Cloud did not report.
    """

    model_config = ConfigDict(frozen=True)

    received: NonNegativeInt
    valid: NonNegativeInt
    rejected: NonNegativeInt
    duplicates: NonNegativeInt
    submitted: NonNegativeInt
    imported: NonNegativeInt
    failed: NonNegativeInt

    @model_validator(mode="after")
    def _check_totals(self) -> Self:
        classified = self.valid + self.rejected + self.duplicates
        if self.received != classified:
            raise ValueError(
                f"received ({self.received}) must equal valid + rejected + duplicates "
                f"({classified})"
            )
        if self.submitted > self.valid:
            raise ValueError(f"submitted ({self.submitted}) exceeds valid ({self.valid})")
        if self.imported + self.failed > self.submitted:
            raise ValueError(
                f"imported + failed ({self.imported + self.failed}) exceeds submitted "
                f"({self.submitted})"
            )
        return self


class S3Object(BaseModel):
    """Location of the batch's CSV archive and manifest on S3."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str = Field(description="Object key of the CSV file.")
    manifest_key: str | None = Field(
        default=None,
        description="Object key of the manifest (source offsets and counts), if one was written.",
    )


class GenesysImport(BaseModel):
    """The Genesys Cloud import of the batch: the method used and the state reported."""

    model_config = ConfigDict(frozen=True)

    method: Literal["contacts", "upload"] = Field(
        description=(
            "contacts: POST /api/v2/outbound/contactlists/{id}/contacts; "
            "upload: CSV file upload followed by polling the import status."
        ),
    )
    import_state: str | None = Field(
        default=None,
        description=(
            "The last import state from Genesys Cloud, such as IN_PROGRESS or FAILED. Null for "
            "the contacts method, and for a finished upload when Genesys Cloud reports no state."
        ),
    )
    failure_reason: str | None = Field(
        default=None,
        description="Genesys Cloud's failure reason, such as CONTACT_COLUMNS_LIMIT_EXCEEDED.",
    )
    request_ids: list[str] = Field(
        default_factory=list,
        description="Correlation ids (inin-correlation-id) of the requests made for this batch.",
    )
    upload_key: str | None = Field(
        default=None,
        description="The uploadKey of the file upload; null for the contacts method.",
    )


class ImportTimings(BaseModel):
    """When the import ran, and how long contacts took from the source change to Genesys Cloud."""

    model_config = ConfigDict(frozen=True)

    started_at: AwareDatetime = Field(description="When the batch was flushed for import.")
    finished_at: AwareDatetime = Field(description="When the import finished or failed.")
    event_to_accepted_ms_p50: int | None = Field(
        default=None,
        description=(
            "Median time in ms from a record's occurred_at to Genesys Cloud accepting it. "
            "Negative when the producer's clock runs ahead. Null when nothing was accepted."
        ),
    )
    event_to_accepted_ms_max: int | None = Field(
        default=None,
        description="Maximum of the same time in ms. Null when nothing was accepted.",
    )


class RecordOutcome(BaseModel):
    """The outcome of one record of the batch."""

    model_config = ConfigDict(frozen=True)

    source_id: str = Field(description="The contact id in the source system.")
    event_id: str
    genesys_contact_id: str | None = Field(
        default=None,
        description="The contact id in Genesys Cloud, when the contact was accepted.",
    )
    operation: Literal["upsert", "delete"]
    outcome: Outcome
    reasons: list[Reason] = Field(
        default_factory=list,
        description="Why the record was rejected; at least one reason when outcome is rejected.",
    )

    @model_validator(mode="after")
    def _check_reasons(self) -> Self:
        if self.outcome == "rejected" and not self.reasons:
            raise ValueError("a rejected record needs at least one reason")
        return self


class ImportResult(BaseModel):
    """The outcome of one batch for one contact list."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = Field(default=1, description="Version of this message format.")
    batch_id: str = Field(min_length=1)
    contact_list: str = Field(description="The Genesys Cloud contact list id.")
    contact_list_name: str | None = None
    counts: ImportCounts
    s3: S3Object | None = Field(
        default=None,
        description="The CSV archive; null when the batch had no valid record to archive.",
    )
    genesys: GenesysImport | None = Field(
        default=None,
        description="The Genesys Cloud import; null when nothing was submitted.",
    )
    timings: ImportTimings
    traceparent: str | None = Field(
        default=None,
        pattern=TRACEPARENT_PATTERN,
        description="W3C traceparent of the batch's import span, for trace correlation.",
    )
    records: list[RecordOutcome] = Field(default_factory=list)
