"""The CLI's checks that turn start-up failures into one-line errors."""

from __future__ import annotations

import argparse
import socket

import pytest
from aiokafka.errors import KafkaConnectionError

from local_stack.stack import PROJECT_ROOT
from stream_app import cli, topics
from stream_app.cli import _check_web_port_free, _port_number
from stream_app.settings import Settings


def test_busy_web_port_names_the_setting() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        with pytest.raises(OSError, match="STREAM_APP_WEB_PORT") as raised:
            _check_web_port_free("127.0.0.1", port)

    assert f"127.0.0.1:{port}" in str(raised.value)


def test_free_web_port_passes() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    _check_web_port_free("127.0.0.1", port)


@pytest.mark.parametrize("text", ["-1", "65536", "99999", "abc", ""])
def test_port_argument_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="0 to 65535"):
        _port_number(text)


@pytest.mark.parametrize(("text", "port"), [("0", 0), ("6066", 6066), ("65535", 65535)])
def test_port_argument_accepts(text: str, port: int) -> None:
    assert _port_number(text) == port


def test_worker_without_broker_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:

    async def unreachable(settings: Settings) -> None:
        raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9092)]")

    monkeypatch.setattr(topics, "ensure_topics", unreachable)
    mapping = PROJECT_ROOT / "stream_app" / "demo_data" / "cms-hospitals.mapping.toml"
    monkeypatch.setenv("STREAM_APP_MAPPING_FILE", str(mapping))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    monkeypatch.setenv("STREAM_APP_WEB_PORT", str(free_port))
    monkeypatch.setenv("STREAM_APP_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9092")

    exit_code = cli.main(["worker"])

    error_lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert exit_code == 2
    assert len(error_lines) == 1
    assert "could not reach Kafka at 127.0.0.1:9092" in error_lines[0]
    assert "STREAM_APP_KAFKA__BOOTSTRAP_SERVERS" in error_lines[0]


def test_unknown_option_shows_subcommand_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["demo", "--bogus"])

    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.startswith("usage: stream-app demo ")
    assert "stream-app demo: error: unrecognized arguments: --bogus" in err
