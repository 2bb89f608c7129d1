"""The S3 server and the CRM receiver of the local stack, reached over real HTTP."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiobotocore.session import get_session
from standardwebhooks.webhooks import Webhook

from local_stack.crm_receiver import DEFAULT_SECRET, CrmReceiver
from local_stack.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, S3Server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    server = S3Server(tmp_path_factory.mktemp("s3"), port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory):
    receiver = CrmReceiver(tmp_path_factory.mktemp("crm"), port=0)
    receiver.start()
    yield receiver
    receiver.stop()


def _signed_headers(secret: str, webhook_id: str, body: str) -> dict[str, str]:
    now = datetime.now(tz=UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, now, body),
        "content-type": "application/json",
    }


async def test_s3_stores_and_returns_object(s3_server: S3Server) -> None:
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    body = b"id,phone\r\n1,+13347938701\r\n"

    session = get_session()
    async with session.create_client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    ) as client:
        await client.put_object(Bucket=bucket, Key="batches/a.csv", Body=body)
        response = await client.get_object(Bucket=bucket, Key="batches/a.csv")
        async with response["Body"] as stream:
            stored = await stream.read()
        listing = await client.list_objects_v2(Bucket=bucket)

    assert stored == body
    assert [item["Key"] for item in listing["Contents"]] == ["batches/a.csv"]


def test_s3_bucket_exists_after_start(s3_server: S3Server) -> None:
    names = [bucket["Name"] for bucket in s3_server.client().list_buckets()["Buckets"]]

    assert s3_server.bucket in names


def test_crm_accepts_valid_signature(crm: CrmReceiver) -> None:
    webhook_id = f"batch-{uuid.uuid4().hex}"
    body = json.dumps({"batch_id": webhook_id, "counts": {"imported": 2}})

    response = httpx.post(
        crm.webhook_url, content=body, headers=_signed_headers(DEFAULT_SECRET, webhook_id, body)
    )

    assert response.status_code == 204
    delivery = next(d for d in crm.deliveries() if d["webhook_id"] == webhook_id)
    assert delivery["signature_valid"] is True
    assert delivery["body"] == {"batch_id": webhook_id, "counts": {"imported": 2}}


def test_crm_rejects_bad_signature(crm: CrmReceiver) -> None:
    webhook_id = f"batch-{uuid.uuid4().hex}"
    body = json.dumps({"batch_id": webhook_id})
    wrong_secret = "whsec_" + "d3Jvbmcta2V5LXdyb25nLWtleQ=="
    headers = _signed_headers(wrong_secret, webhook_id, body)

    response = httpx.post(crm.webhook_url, content=body, headers=headers)

    assert response.status_code == 401
    delivery = next(d for d in crm.deliveries() if d["webhook_id"] == webhook_id)
    assert delivery["signature_valid"] is False
    assert "signature" in delivery["error"]


def test_crm_rejects_tampered_body(crm: CrmReceiver) -> None:
    webhook_id = f"batch-{uuid.uuid4().hex}"
    body = json.dumps({"batch_id": webhook_id, "counts": {"imported": 2}})
    headers = _signed_headers(DEFAULT_SECRET, webhook_id, body)

    response = httpx.post(crm.webhook_url, content=body.replace("2", "3"), headers=headers)

    assert response.status_code == 401


def test_crm_fails_on_request_then_recovers(crm: CrmReceiver) -> None:
    webhook_id = f"batch-{uuid.uuid4().hex}"
    body = json.dumps({"batch_id": webhook_id})
    headers = _signed_headers(DEFAULT_SECRET, webhook_id, body)

    crm.fail_with(503)
    try:
        failed = httpx.post(crm.webhook_url, content=body, headers=headers)
    finally:
        crm.recover()
    recovered = httpx.post(crm.webhook_url, content=body, headers=headers)

    assert failed.status_code == 503
    assert recovered.status_code == 204
    statuses = [d["status"] for d in crm.deliveries() if d["webhook_id"] == webhook_id]
    assert statuses == [503, 204]


def test_crm_stall_exceeds_client_timeout(crm: CrmReceiver) -> None:
    webhook_id = f"batch-{uuid.uuid4().hex}"
    body = json.dumps({"batch_id": webhook_id})
    headers = _signed_headers(DEFAULT_SECRET, webhook_id, body)

    crm.stall(3)
    started = time.monotonic()
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(crm.webhook_url, content=body, headers=headers, timeout=0.5)
    finally:
        crm.recover()

    assert time.monotonic() - started < 3


def test_crm_port_busy_falls_back(tmp_path: Path) -> None:
    first = CrmReceiver(tmp_path / "a", port=0)
    first.start()
    try:
        second = CrmReceiver(tmp_path / "b", port=first.port)
        assert second.port != first.port
    finally:
        first.stop()
