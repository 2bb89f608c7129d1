"""All of the service's settings, in one pydantic-settings model loaded once at start-up.

Values come from environment variables with the `STREAM_APP_` prefix (nested groups use a double
underscore, e.g. `STREAM_APP_GENESYS__CLIENT_ID`, and the flat aliases `local-stack up` prints), so
one worker can be pointed at the local stack, MinIO or AWS, and a real Genesys Cloud org without code
changes. The defaults target the local stack on 127.0.0.1. Secrets are `SecretStr`; `masked_dump()`
is what gets logged. This module reads no environment at import time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)


class KafkaSettings(BaseModel):
    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers"
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = Field(None, description="CA bundle for TLS to managed clusters")
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None


class TopicSettings(BaseModel):
    contact_events: str = "contact-events"
    dead_letter: str = "contact-events.dead-letter"
    import_results: str = "contact-import-results"
    webhook_dead_letter: str = "contact-import-results.webhook-dead-letter"
    partitions: int = Field(4, ge=1, description="Partitions of topics this service creates")
    replication_factor: int = Field(1, ge=1)
    contact_events_max_message_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description=(
            "max.message.bytes of the contact-events topic when this service creates it, and "
            "the worker's fetch size per partition. Keep it above validation.max_message_bytes, "
            "so that an oversized message reaches the dead-letter topic with a reason instead "
            "of failing at the producer"
        ),
    )


class GenesysSettings(BaseModel):
    """Genesys Cloud addresses, credentials and call policy.

    For a real org set `api_url` to `https://api.<region domain>` (for example
    https://api.mypurecloud.ie) and `login_url` to the same with `login.` in place of `api.`.
    """

    api_url: str = "http://127.0.0.1:8089"
    login_url: str = "http://127.0.0.1:8089"
    client_id: str = "local-client"
    client_secret: SecretStr = SecretStr("local-secret")
    requests_per_minute: int = Field(
        300, ge=1, description="Per OAuth client; the org default is 300 per token"
    )
    rate_limit_headroom: float = Field(
        0.9, gt=0, le=1, description="Share of requests_per_minute the worker allows itself"
    )
    timeout_seconds: float = Field(30.0, gt=0, description="Per HTTP request")
    max_retry_seconds: float = Field(
        120.0, gt=0, description="How long 5xx, timeouts and connection errors are retried"
    )
    retry_after_default_seconds: float = Field(
        3.0, gt=0, description="Wait after a 429 that carries no Retry-After header"
    )
    token_renew_margin_seconds: float = Field(
        300.0, ge=0, description="Renew the access token this long before it expires"
    )
    contacts_per_request: int = Field(
        1000, ge=1, le=1000, description="Contacts per POST .../contacts (API maximum 1000)"
    )
    upload_threshold: int = Field(
        2000,
        ge=1,
        description="Batches with at least this many upserts go through the CSV upload",
    )
    import_poll_interval_seconds: float = Field(2.0, gt=0)
    import_timeout_seconds: float = Field(
        300.0, gt=0, description="Give up waiting for a CSV import after this long"
    )
    import_stalled_seconds: float = Field(
        30.0,
        gt=0,
        description="If the import status has not moved for this long, count contacts instead",
    )
    priority: bool = Field(False, description="priority flag on POST .../contacts")
    clear_system_data: bool = Field(False, description="clearSystemData flag on writes")
    do_not_queue: bool = Field(False, description="doNotQueue flag on POST .../contacts")


class S3Settings(BaseModel):
    endpoint_url: str | None = Field(
        "http://127.0.0.1:9000", description="None for AWS; a URL for MinIO or the local server"
    )
    bucket: str = "stream-app"
    prefix: str = "contact-batches"
    region: str = "us-east-1"
    access_key_id: SecretStr | None = Field(
        SecretStr("local-access-key"), description="None uses the AWS default credential chain"
    )
    secret_access_key: SecretStr | None = SecretStr("local-secret-key")
    retry_seconds: float = Field(
        300.0, gt=0, description="How long an unreachable S3 is retried before the worker stops"
    )


class WebhookSettings(BaseModel):
    url: str | None = Field(
        "http://127.0.0.1:8090/webhooks/genesys-import",
        description="CRM endpoint for import results; None disables the relay",
    )
    secret: SecretStr = Field(
        SecretStr("whsec_bG9jYWwtY3JtLXdlYmhvb2stc2lnbmluZy1rZXk="),
        description="Standard Webhooks signing secret: whsec_ followed by base64",
    )
    timeout_seconds: float = Field(10.0, gt=0)
    retry_seconds: float = Field(
        600.0, gt=0, description="Retry a failing delivery this long, then dead-letter it"
    )
    backoff_initial_seconds: float = Field(1.0, gt=0)
    backoff_max_seconds: float = Field(60.0, gt=0)


class BatchSettings(BaseModel):
    max_contacts: int = Field(
        1000,
        ge=1,
        description="Contacts to write per batch; Genesys Cloud takes at most 1000 per request",
    )
    max_records: int = Field(
        2000, ge=1, description="Records per batch, the rejected and duplicate ones included"
    )
    max_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="CSV bytes per batch")
    max_seconds: float = Field(5.0, gt=0, description="Flush a batch this long after it opened")
    max_waiting_flushes: int = Field(
        4,
        ge=0,
        description="Closed batches that may wait for the background flush before the intake "
        "pauses; 0 flushes each batch inline, before the next record is read",
    )


class ValidationSettings(BaseModel):
    newline_policy: Literal["reject", "replace"] = "reject"
    max_message_bytes: int = Field(1024 * 1024, ge=1024)


class DedupeSettings(BaseModel):
    expire_seconds: float = Field(
        30 * 24 * 3600.0, gt=0, description="Forget an accepted record after this long"
    )
    channel_identity: bool = Field(
        False,
        description="Also treat two contacts with the same normalised phones and e-mails as one",
    )
    block_cache_bytes: int = Field(8 * 1024 * 1024, ge=1024 * 1024)
    write_buffer_bytes: int = Field(4 * 1024 * 1024, ge=1024 * 1024)


class DebeziumSettings(BaseModel):
    table: str | None = Field(
        None, description="Accept change events of this table, e.g. crm.contacts"
    )
    id_column: str = "id"
    source: str = "debezium"


class AuditSettings(BaseModel):
    """Destination of the worker's audit log: a JSON line per batch, rejection and delivery."""

    destination: Literal["stdout", "file", "off"] = Field(
        "stdout",
        description=(
            "stdout: the worker's standard output, which carries nothing else (logs go to "
            "standard error); file: append to `path`; off: write no audit log"
        ),
    )
    path: Path | None = Field(
        None, description="Audit file for destination file; default <data_dir>/audit.jsonl"
    )


class TracingSettings(BaseModel):
    """Options beyond the standard OTEL_* variables, which configure tracing otherwise."""

    span_file: Path | None = Field(
        None,
        description=(
            "Also append every finished span to this file as one JSON line; for tests and debugging"
        ),
    )


class Settings(BaseSettings):
    """Every setting of the worker and the CLI."""

    model_config = SettingsConfigDict(
        env_prefix="STREAM_APP_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    app_id: str = "stream-app"
    data_dir: Path = Field(Path(".cache/worker"), description="RocksDB tables live here")
    web_port: int = Field(6066, ge=1, le=65535, description="faust's web server rejects port 0")
    web_host: str = Field(
        "127.0.0.1",
        description="Address the worker's web server (status page, /metrics) listens on; "
        "0.0.0.0 only inside a container",
    )
    mapping_file: Path | None = Field(
        None, description="TOML mapping of source fields to contact-list columns"
    )
    log_level: str = "INFO"

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    genesys: GenesysSettings = Field(default_factory=GenesysSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    dedupe: DedupeSettings = Field(default_factory=DedupeSettings)
    debezium: DebeziumSettings = Field(default_factory=DebeziumSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)

    # Flat aliases, as printed by `local-stack up`; they override the nested values when set.
    kafka_bootstrap_servers: str | None = Field(
        None, validation_alias=AliasChoices("STREAM_APP_KAFKA_BOOTSTRAP_SERVERS")
    )
    genesys_api_url: str | None = Field(
        None, validation_alias=AliasChoices("STREAM_APP_GENESYS_API_URL")
    )
    genesys_login_url: str | None = Field(
        None, validation_alias=AliasChoices("STREAM_APP_GENESYS_LOGIN_URL")
    )
    genesys_client_id: str | None = Field(
        None, validation_alias=AliasChoices("STREAM_APP_GENESYS_CLIENT_ID")
    )
    genesys_client_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("STREAM_APP_GENESYS_CLIENT_SECRET")
    )
    s3_endpoint_url: str | None = Field(
        None, validation_alias=AliasChoices("STREAM_APP_S3_ENDPOINT_URL")
    )
    s3_bucket: str | None = Field(None, validation_alias=AliasChoices("STREAM_APP_S3_BUCKET"))
    s3_region: str | None = Field(None, validation_alias=AliasChoices("STREAM_APP_S3_REGION"))
    s3_access_key_id: SecretStr | None = Field(
        None, validation_alias=AliasChoices("STREAM_APP_S3_ACCESS_KEY_ID")
    )
    s3_secret_access_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("STREAM_APP_S3_SECRET_ACCESS_KEY")
    )
    webhook_url: str | None = Field(None, validation_alias=AliasChoices("STREAM_APP_WEBHOOK_URL"))
    webhook_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("STREAM_APP_WEBHOOK_SECRET")
    )

    @field_validator("log_level")
    @classmethod
    def _upper_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"log_level {value!r} is not one of DEBUG, INFO, WARNING, ERROR")
        return level

    def model_post_init(self, context: Any, /) -> None:
        for alias, (group_name, name) in _FLAT_ALIASES.items():
            value = getattr(self, alias)
            if value is not None:
                setattr(getattr(self, group_name), name, value)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Load the settings from `environ` instead of os.environ, as a child process would.

        os.environ is swapped for the duration of the call, so this is not thread-safe.
        """
        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update(environ)
            return cls()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def masked_dump(self) -> dict[str, Any]:
        """Return the resolved settings for logging; SecretStr values appear as '**********'."""
        return self.model_dump(mode="json", exclude=set(_FLAT_ALIASES))


# Flat field name -> (group, field) it overrides.
_FLAT_ALIASES: dict[str, tuple[str, str]] = {
    "kafka_bootstrap_servers": ("kafka", "bootstrap_servers"),
    "genesys_api_url": ("genesys", "api_url"),
    "genesys_login_url": ("genesys", "login_url"),
    "genesys_client_id": ("genesys", "client_id"),
    "genesys_client_secret": ("genesys", "client_secret"),
    "s3_endpoint_url": ("s3", "endpoint_url"),
    "s3_bucket": ("s3", "bucket"),
    "s3_region": ("s3", "region"),
    "s3_access_key_id": ("s3", "access_key_id"),
    "s3_secret_access_key": ("s3", "secret_access_key"),
    "webhook_url": ("webhook", "url"),
    "webhook_secret": ("webhook", "secret"),
}


def describe_settings_errors(
    error: ValidationError, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Return one line per invalid setting of `error`, naming its environment variable.

    Each line contains the variable, the rejected value ("(hidden)" for secrets), pydantic's message
    without its documentation URL, and the fix. `environ` is where the settings were read from.
    When it has no variable for the nested field but has one for its group (a JSON object such as
    STREAM_APP_BATCH='{"max_records": 0}'), the line names the group's variable and the field.
    """
    lines = []
    for details in error.errors(include_url=False):
        field_path, variables, secret = _resolve_location(details["loc"])
        variable, field_in_variable = _pick_variable(variables, field_path, environ)
        value = "(hidden)" if secret else _short_repr(details["input"])
        message = details["msg"].removeprefix("Value error, ")
        subject = f"{variable} field {field_in_variable}" if field_in_variable else variable
        lines.append(f"invalid {subject}={value}: {message}; fix or unset {variable}")
    return lines


def _resolve_location(location: tuple[int | str, ...]) -> tuple[list[str], list[str], bool]:
    """Map a pydantic error location to field names, candidate variables and whether it is secret.

    The candidates run from the variable of the whole nested field down to the variable of its
    outermost group, for example STREAM_APP_BATCH__MAX_RECORDS, then STREAM_APP_BATCH.
    """
    model: type[BaseModel] | None = Settings
    field_path: list[str] = []
    secret = False
    alias: str | None = None
    for part in location:
        if model is None:
            break  # A list index or a union member below a leaf field.
        name, info = _find_field(model, str(part))
        if info is None:
            field_path.append(str(part))
            model = None
            continue
        if len(field_path) == 0 and isinstance(info.validation_alias, AliasChoices):
            first_choice = info.validation_alias.choices[0]
            alias = first_choice if isinstance(first_choice, str) else None
        field_path.append(name)
        # Only the innermost field counts: the error's input is that field's value.
        secret = _is_secret(name, info.annotation)
        model = _model_of(info.annotation)

    if alias is not None:
        return field_path, [alias], secret
    variables = [
        "STREAM_APP_" + "__".join(field_path[:length]).upper()
        for length in range(len(field_path), 0, -1)
    ]
    return field_path, variables, secret


def _find_field(model: type[BaseModel], part: str) -> tuple[str, FieldInfo | None]:
    """Return the field of `model` that an error location part names, by field name or alias."""
    if part in model.model_fields:
        return part, model.model_fields[part]
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and part in alias.choices:
            return name, info
    return part, None


def _pick_variable(
    variables: list[str], field_path: list[str], environ: Mapping[str, str] | None
) -> tuple[str, str]:
    """Return the variable in `environ` that set the field, and the field inside it when nested.

    Variable names are compared case-insensitively, as pydantic-settings reads them by default.
    Without `environ`, or when no candidate is set, returns the most specific candidate.
    """
    set_names = {name.upper(): name for name in environ} if environ is not None else {}
    for index, variable in enumerate(variables):
        if variable in set_names:
            inner_fields = field_path[len(field_path) - index :] if index else []
            return set_names[variable], ".".join(inner_fields)
    return variables[0], ""


def _is_secret(name: str, annotation: Any) -> bool:
    """Return whether a field's value must not be shown: a SecretStr, or a secret-sounding name."""
    if any(word in name.lower() for word in ("secret", "password", "token")):
        return True
    if annotation is SecretStr:
        return True
    model = _model_of(annotation)
    if model is not None:
        # A group set as one JSON object carries the values of its secret fields too.
        return any(_is_secret(field, info.annotation) for field, info in model.model_fields.items())
    return any(_is_secret(name, argument) for argument in get_args(annotation))


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """Return the pydantic model that `annotation` is, or None for a plain value type."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
