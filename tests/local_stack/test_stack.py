"""The whole local stack, as `local-stack up`, `stream-app demo` and the fixtures start it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from local_stack.stack import LocalStack

pytestmark = pytest.mark.integration


async def test_stack_services_answer(local_stack: LocalStack) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=local_stack.kafka.bootstrap_servers)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    token = await asyncio.to_thread(
        httpx.post,
        f"{local_stack.genesys.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(
            local_stack.env()["STREAM_APP_GENESYS_CLIENT_ID"],
            local_stack.env()["STREAM_APP_GENESYS_CLIENT_SECRET"],
        ),
    )
    buckets = [bucket["Name"] for bucket in local_stack.s3.client().list_buckets()["Buckets"]]

    assert len(cluster["brokers"]) == 1
    assert token.status_code == 200
    assert token.json()["token_type"] == "bearer"
    assert local_stack.bucket in buckets
    assert local_stack.crm.deliveries() is not None


def test_stack_env_points_at_services(local_stack: LocalStack) -> None:
    env = local_stack.env()

    assert env["STREAM_APP_KAFKA_BOOTSTRAP_SERVERS"] == local_stack.kafka.bootstrap_servers
    assert env["STREAM_APP_S3_ENDPOINT_URL"] == local_stack.s3.endpoint_url
    assert env["STREAM_APP_GENESYS_API_URL"] == local_stack.genesys.base_url
    assert env["STREAM_APP_WEBHOOK_URL"] == local_stack.crm.webhook_url
    assert all(
        value.startswith(("127.0.0.1", "http://127.0.0.1"))
        for name, value in env.items()
        if name.endswith(("URL", "SERVERS"))
    )


def test_stack_up_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = dict(os.environ)
    process = subprocess.Popen(
        [sys.executable, "-m", "local_stack", "up", "--work-dir", str(tmp_path), "--any-free-port"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 180
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    output = "".join(lines) + rest

    assert process.returncode == 0, output
    assert "kafka" in output
    assert "export STREAM_APP_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:" in output
    assert "Stopping the local stack" in output
