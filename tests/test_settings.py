"""Settings from STREAM_APP_ environment variables: nesting, flat aliases, masking and validation."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import ValidationError

from stream_app.settings import Settings

MASK = "**********"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove STREAM_APP_ variables of the calling shell, so each test reads only the variables it sets."""
    for name in list(os.environ):
        if name.upper().startswith("STREAM_APP_"):
            monkeypatch.delenv(name)


def test_defaults_without_environment() -> None:
    loaded = Settings()

    assert loaded.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert loaded.genesys.timeout_seconds == 30.0
    assert loaded.log_level == "INFO"


def test_prefixed_top_level_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_APP_APP_ID", "stream-app-test")
    monkeypatch.setenv("APP_ID", "without-prefix")

    assert Settings().app_id == "stream-app-test"


def test_unprefixed_variable_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ID", "without-prefix")

    assert Settings().app_id == "stream-app"


def test_nested_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_APP_GENESYS__TIMEOUT_SECONDS", "12.5")
    monkeypatch.setenv("STREAM_APP_BATCH__MAX_RECORDS", "250")

    loaded = Settings()

    assert loaded.genesys.timeout_seconds == 12.5
    assert loaded.batch.max_records == 250


def test_nested_value_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_APP_GENESYS__TIMEOUT_SECONDS", "0")

    with pytest.raises(ValidationError, match="timeout_seconds"):
        Settings()


def test_flat_alias_sets_nested_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_APP_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")

    assert Settings().kafka.bootstrap_servers == "127.0.0.1:19092"


@pytest.mark.parametrize(
    ("flat", "nested", "group", "name"),
    [
        (
            "STREAM_APP_KAFKA_BOOTSTRAP_SERVERS",
            "STREAM_APP_KAFKA__BOOTSTRAP_SERVERS",
            "kafka",
            "bootstrap_servers",
        ),
        ("STREAM_APP_GENESYS_API_URL", "STREAM_APP_GENESYS__API_URL", "genesys", "api_url"),
        ("STREAM_APP_GENESYS_CLIENT_ID", "STREAM_APP_GENESYS__CLIENT_ID", "genesys", "client_id"),
        ("STREAM_APP_S3_BUCKET", "STREAM_APP_S3__BUCKET", "s3", "bucket"),
        ("STREAM_APP_S3_ENDPOINT_URL", "STREAM_APP_S3__ENDPOINT_URL", "s3", "endpoint_url"),
        ("STREAM_APP_WEBHOOK_URL", "STREAM_APP_WEBHOOK__URL", "webhook", "url"),
    ],
)
def test_flat_alias_overrides_nested(
    monkeypatch: pytest.MonkeyPatch, flat: str, nested: str, group: str, name: str
) -> None:
    monkeypatch.setenv(nested, "from-nested")
    monkeypatch.setenv(flat, "from-flat")

    assert getattr(getattr(Settings(), group), name) == "from-flat"


@pytest.mark.parametrize(
    ("flat", "nested", "group", "name"),
    [
        (
            "STREAM_APP_GENESYS_CLIENT_SECRET",
            "STREAM_APP_GENESYS__CLIENT_SECRET",
            "genesys",
            "client_secret",
        ),
        (
            "STREAM_APP_S3_SECRET_ACCESS_KEY",
            "STREAM_APP_S3__SECRET_ACCESS_KEY",
            "s3",
            "secret_access_key",
        ),
        ("STREAM_APP_WEBHOOK_SECRET", "STREAM_APP_WEBHOOK__SECRET", "webhook", "secret"),
    ],
)
def test_flat_secret_overrides_nested(
    monkeypatch: pytest.MonkeyPatch, flat: str, nested: str, group: str, name: str
) -> None:
    monkeypatch.setenv(nested, "secret-from-nested")
    monkeypatch.setenv(flat, "secret-from-flat")

    secret = getattr(getattr(Settings(), group), name)

    assert secret.get_secret_value() == "secret-from-flat"


def test_nested_value_kept_without_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_APP_GENESYS__CLIENT_SECRET", "secret-from-nested")

    assert Settings().genesys.client_secret.get_secret_value() == "secret-from-nested"


def test_masked_dump_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "STREAM_APP_GENESYS_CLIENT_SECRET": "genesys-client-secret-7f3a",
        "STREAM_APP_S3_SECRET_ACCESS_KEY": "s3-secret-access-key-91bc",
        "STREAM_APP_S3_ACCESS_KEY_ID": "s3-access-key-id-5d20",
        "STREAM_APP_WEBHOOK_SECRET": "whsec_d2ViaG9vay1zZWNyZXQtNGU4ZA==",
        "STREAM_APP_KAFKA__SASL_PASSWORD": "sasl-password-c0de",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("STREAM_APP_KAFKA__SASL_USERNAME", "stream-app-user")

    dump = Settings().masked_dump()
    text = json.dumps(dump)

    for name, value in secrets.items():
        assert value not in text, f"{name} appears in masked_dump()"
    assert dump["genesys"]["client_secret"] == MASK
    assert dump["s3"]["secret_access_key"] == MASK
    assert dump["s3"]["access_key_id"] == MASK
    assert dump["webhook"]["secret"] == MASK
    assert dump["kafka"]["sasl_password"] == MASK
    assert dump["kafka"]["sasl_username"] == "stream-app-user"


def test_masked_dump_hides_default_secrets() -> None:
    loaded = Settings()
    text = json.dumps(loaded.masked_dump())

    assert loaded.genesys.client_secret.get_secret_value() not in text
    assert loaded.webhook.secret.get_secret_value() not in text
    assert MASK in text


def test_masked_dump_omits_flat_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_APP_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")

    dump = Settings().masked_dump()

    assert "kafka_bootstrap_servers" not in dump
    assert dump["kafka"]["bootstrap_servers"] == "127.0.0.1:19092"


@pytest.mark.parametrize(("value", "expected"), [("debug", "DEBUG"), ("Warning", "WARNING")])
def test_log_level_upper_cased(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    monkeypatch.setenv("STREAM_APP_LOG_LEVEL", value)

    assert Settings().log_level == expected


def test_invalid_log_level_names_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_APP_LOG_LEVEL", "verbose")

    with pytest.raises(ValidationError, match="'verbose'"):
        Settings()


def test_from_environ_leaves_process_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_APP_APP_ID", "from-process")

    settings = Settings.from_environ({"STREAM_APP_APP_ID": "from-mapping"})

    assert settings.app_id == "from-mapping"
    assert Settings().app_id == "from-process"
