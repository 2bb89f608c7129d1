"""Settings of the Genesys Cloud emulator, read once from GENESYS_EMULATOR_* environment variables.

Where the public record of the Genesys Cloud Platform API is silent, the emulator still has to do
something. Each such guess is a setting here, with a default and a comment naming what is known, so
a test can switch to the other behaviour and the product never depends on one guess. The settings
listed in RUNTIME_SETTINGS can also be changed while the emulator runs, through
PATCH /_emulator/settings.

This module does not read the environment at import time. The server builds one EmulatorSettings
at start-up and replaces it as a whole when a PATCH arrives.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "GENESYS_EMULATOR_"
CLIENT_CREDENTIALS_GRANT = "client_credentials"
UPLOAD_PERMISSION = "outbound:contactList:upload"

# Permissions of the outbound endpoints the emulator serves, as the SDK documentation lists them.
ALL_PERMISSIONS: tuple[str, ...] = (
    "outbound:contactList:view",
    "outbound:contactList:add",
    "outbound:contactList:edit",
    "outbound:contactList:delete",
    UPLOAD_PERMISSION,
    "outbound:contact:view",
    "outbound:contact:add",
    "outbound:contact:edit",
    "outbound:contact:delete",
)

# Settings that PATCH /_emulator/settings may change without a restart. The others (address,
# OAuth clients, body size limits) are fixed when the server starts.
RUNTIME_SETTINGS: frozenset[str] = frozenset(
    {
        "token_expires_in",
        "rate_limit_per_minute",
        "retry_after_seconds",
        "max_contacts_per_request",
        "max_value_length",
        "upload_during_import",
        "import_status_when_done",
        "unknown_data_keys",
        "long_values",
        "upload_require_headers",
        "upload_url_timeout_seconds",
        "import_records_per_second",
        "fault_5xx_share",
        "fault_429_share",
        "added_latency_ms",
        "fail_imports",
        "fail_imports_reason",
        "fault_seed",
    }
)


class OAuthClientSettings(BaseModel):
    """One OAuth client besides the primary one, e.g. a client without an upload permission."""

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    grant_types: list[str] = Field(default_factory=lambda: [CLIENT_CREDENTIALS_GRANT])
    permissions: list[str] = Field(default_factory=lambda: list(ALL_PERMISSIONS))


class EmulatorSettings(BaseSettings):
    """Address, OAuth clients, unconfirmed API behaviours, import speed and fault injection."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_parse_none_str="null",
        validate_assignment=True,
        extra="forbid",
    )

    host: str = Field(
        default="127.0.0.1",
        description="IPv4 address to listen on, loopback unless allow_non_loopback_host is set.",
    )
    # The /_emulator/ routes need no token, so the emulator listens on loopback by default. Inside
    # a container it must listen on 0.0.0.0 to be reachable from other containers, and this opt-in
    # allows that. docker-compose.yml publishes the port on the host's 127.0.0.1 only.
    allow_non_loopback_host: bool = False
    port: int = Field(default=8089, ge=0, le=65535, description="TCP port; 0 picks a free port.")

    # The primary OAuth client: client-credentials grant and every permission in ALL_PERMISSIONS.
    client_id: str = Field(default="local-client", min_length=1)
    client_secret: SecretStr = SecretStr("local-secret")
    extra_oauth_clients: list[OAuthClientSettings] = Field(default_factory=list)

    # Genesys Cloud returns expires_in 86399 for a default client (observed); tests use seconds.
    token_expires_in: int = Field(default=86399, ge=1, description="Access token lifetime, s.")

    # 300 requests per minute per client-credentials token is the documented default org limit.
    rate_limit_per_minute: int = Field(default=300, ge=1)
    # None sends the whole seconds until the oldest request leaves the 60 s window.
    retry_after_seconds: int | None = Field(default=None, ge=1)

    # Community posts give 1000 contacts per POST /contacts; the official limit is unconfirmed.
    max_contacts_per_request: int = Field(default=1000, ge=1)
    # The Resource Center gives 512 characters per column value.
    max_value_length: int = Field(default=512, ge=1)
    # Unconfirmed: a second upload while an import is IN_PROGRESS is rejected with 409, or queued.
    upload_during_import: Literal["reject", "queue"] = "reject"
    # Unconfirmed: a finished import shows no state and percentComplete 100 ("complete"), or the
    # status is never updated, as the Terraform provider reports for small files ("not_updated").
    import_status_when_done: Literal["complete", "not_updated"] = "complete"
    # Unconfirmed: a data key that is not a list column is rejected with 400, or dropped.
    unknown_data_keys: Literal["reject", "ignore"] = "reject"
    # Unconfirmed: a value over max_value_length is rejected with 400, or truncated.
    long_values: Literal["reject", "truncate"] = "reject"

    # Presigned uploads behave like S3: the PUT must carry every returned header unchanged.
    upload_require_headers: bool = True
    # Used when the upload URL request has no signedUrlTimeoutSeconds; the SDK documents 600.
    upload_url_timeout_seconds: int = Field(default=600, ge=1, le=604800)

    # 0 imports as fast as possible; a small number keeps an import IN_PROGRESS for a test.
    import_records_per_second: float = Field(default=0.0, ge=0.0)

    fault_5xx_share: float = Field(default=0.0, ge=0.0, le=1.0)
    fault_429_share: float = Field(default=0.0, ge=0.0, le=1.0)
    added_latency_ms: int = Field(default=0, ge=0)
    fail_imports: int = Field(default=0, ge=0, description="The next N imports end FAILED.")
    fail_imports_reason: str = Field(default="INJECTED_FAILURE", min_length=1)
    fault_seed: int | None = None

    max_request_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_upload_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)

    @field_validator("host")
    @classmethod
    def _require_ipv4(cls, value: str) -> str:
        if value != "localhost":
            ipaddress.IPv4Address(value)
        return value

    @model_validator(mode="after")
    def _require_loopback_host(self) -> Self:
        if self.allow_non_loopback_host or self.host == "localhost":
            return self
        if not ipaddress.IPv4Address(self.host).is_loopback:
            raise ValueError(
                f"host must be an IPv4 loopback address, got {self.host!r}. "
                "Set allow_non_loopback_host (GENESYS_EMULATOR_ALLOW_NON_LOOPBACK_HOST=true) "
                "to listen on it, for example 0.0.0.0 inside a container"
            )
        return self

    @model_validator(mode="after")
    def _check_fault_shares(self) -> Self:
        if self.fault_5xx_share + self.fault_429_share > 1.0:
            raise ValueError("fault_5xx_share + fault_429_share must not exceed 1.0")
        return self

    @model_validator(mode="after")
    def _check_unique_client_ids(self) -> Self:
        ids = [self.client_id, *(client.client_id for client in self.extra_oauth_clients)]
        if len(ids) != len(set(ids)):
            raise ValueError(f"OAuth client ids must be unique, got {ids}")
        return self

    def oauth_clients(self) -> list[OAuthClientSettings]:
        """Return every OAuth client, the primary one first."""
        primary = OAuthClientSettings(client_id=self.client_id, client_secret=self.client_secret)
        return [primary, *self.extra_oauth_clients]

    def public_view(self) -> dict[str, Any]:
        """Return every setting as JSON values, with secrets masked."""
        return self.model_dump(mode="json")

    def to_env(self) -> dict[str, str]:
        """Return GENESYS_EMULATOR_* variables that rebuild these settings in a child process.

        Secrets are written in clear text, because the child needs them.
        """
        values = self.model_dump(mode="python")
        values["client_secret"] = self.client_secret.get_secret_value()
        values["extra_oauth_clients"] = [
            {**client.model_dump(), "client_secret": client.client_secret.get_secret_value()}
            for client in self.extra_oauth_clients
        ]

        env: dict[str, str] = {}
        for name, value in values.items():
            env[ENV_PREFIX + name.upper()] = _env_text(value)
        return env


def _env_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return json.dumps(value)
