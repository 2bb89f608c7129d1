"""Settings from STREAM_APP_ environment variables: nesting, flat aliases, masking and validation."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import ValidationError

from stream_app.settings import Settings, describe_settings_errors

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


def _error_lines(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        Settings.from_environ(environ)
    return describe_settings_errors(info.value, environ)


def test_error_names_top_level_variable() -> None:
    lines = _error_lines({"STREAM_APP_WEB_PORT": "abc"})

    assert lines == [
        "invalid STREAM_APP_WEB_PORT='abc': Input should be a valid integer, unable to parse "
        "string as an integer; fix or unset STREAM_APP_WEB_PORT"
    ]


def test_error_names_nested_variable() -> None:
    lines = _error_lines({"STREAM_APP_BATCH__MAX_RECORDS": "-1"})

    assert lines == [
        "invalid STREAM_APP_BATCH__MAX_RECORDS='-1': Input should be greater than or equal to 1; "
        "fix or unset STREAM_APP_BATCH__MAX_RECORDS"
    ]


def test_errors_one_line_each() -> None:
    lines = _error_lines(
        {"STREAM_APP_WEB_PORT": "70000", "STREAM_APP_KAFKA__SECURITY_PROTOCOL": "TLS"}
    )

    assert len(lines) == 2
    assert all("\n" not in line for line in lines)
    assert lines[0].startswith("invalid STREAM_APP_WEB_PORT='70000': ")
    assert lines[1].startswith("invalid STREAM_APP_KAFKA__SECURITY_PROTOCOL='TLS': ")
    for line in lines:
        assert "pydantic.dev" not in line
        assert "web_port" not in line
        assert "kafka.security_protocol" not in line


def test_error_drops_value_error_prefix() -> None:
    lines = _error_lines({"STREAM_APP_LOG_LEVEL": "loud"})

    assert lines == [
        "invalid STREAM_APP_LOG_LEVEL='loud': log_level 'loud' is not one of DEBUG, INFO, "
        "WARNING, ERROR; fix or unset STREAM_APP_LOG_LEVEL"
    ]


def test_error_keeps_variable_spelling() -> None:
    lines = _error_lines({"stream_app_web_port": "abc"})

    assert len(lines) == 1
    assert lines[0].startswith("invalid stream_app_web_port='abc': ")
    assert lines[0].endswith("; fix or unset stream_app_web_port")


def test_error_in_group_json_names_group() -> None:
    lines = _error_lines({"STREAM_APP_BATCH": '{"max_records": 0}'})

    assert lines == [
        "invalid STREAM_APP_BATCH field max_records=0: Input should be greater than or equal "
        "to 1; fix or unset STREAM_APP_BATCH"
    ]


def test_error_uses_validation_alias() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(STREAM_APP_WEBHOOK_URL=5)

    lines = describe_settings_errors(info.value)

    assert lines == [
        "invalid STREAM_APP_WEBHOOK_URL=5: Input should be a valid string; "
        "fix or unset STREAM_APP_WEBHOOK_URL"
    ]


def test_error_hides_secret_values() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(
            STREAM_APP_GENESYS_CLIENT_SECRET=918273,
            genesys={"client_secret": 564738},
            kafka={"sasl_password": 293847},
            s3=["access-key-6e1f"],
        )

    lines = describe_settings_errors(info.value)
    text = "\n".join(lines)

    assert "invalid STREAM_APP_GENESYS_CLIENT_SECRET=(hidden): " in text
    assert "invalid STREAM_APP_GENESYS__CLIENT_SECRET=(hidden): " in text
    assert "invalid STREAM_APP_KAFKA__SASL_PASSWORD=(hidden): " in text
    assert "invalid STREAM_APP_S3=(hidden): " in text
    for value in ("918273", "564738", "293847", "access-key-6e1f"):
        assert value not in text


def test_error_hides_secret_in_group_json() -> None:
    lines = _error_lines({"STREAM_APP_GENESYS": '{"client_secret": 564738}'})

    assert lines == [
        "invalid STREAM_APP_GENESYS field client_secret=(hidden): Input should be a valid "
        "string; fix or unset STREAM_APP_GENESYS"
    ]


def test_error_hides_token_named_value() -> None:
    lines = _error_lines({"STREAM_APP_GENESYS__TOKEN_RENEW_MARGIN_SECONDS": "-5"})

    assert len(lines) == 1
    assert lines[0].startswith("invalid STREAM_APP_GENESYS__TOKEN_RENEW_MARGIN_SECONDS=(hidden): ")
    assert "-5" not in lines[0]
