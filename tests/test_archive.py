"""BatchArchive against a real S3 API server (moto) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.s3 import S3Server
from stream_app.archive import (
    ArchivedBatch,
    BatchArchive,
    S3ConfigurationError,
    S3UnavailableError,
    manifest_key_for,
)
from stream_app.settings import S3Settings

pytestmark = pytest.mark.integration

CSV_KEY = "contact-batches/contact-events/partition=0001/00000000000000000010-00000000000000000012.list-1.csv"
CSV_BYTES = b"id,phone\r\nc1,+13347938701\r\nc2,+13347938702\r\n"
MANIFEST = {
    "batch_id": "2f8c1a52-8d1e-5b7a-9f3e-1c0a7e2b4d61",
    "first_offset": 10,
    "last_offset": 12,
}


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("s3"), port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_s3_server(tmp_path: Path) -> Iterator[S3Server]:
    """A server this test may stop and restart without disturbing the shared one."""
    server = S3Server(tmp_path, port=0, bucket=f"restart-{uuid.uuid4().hex[:12]}")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    name = f"archive-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(name)
    return name


def _settings(server: S3Server, bucket: str, retry_seconds: float = 30.0) -> S3Settings:
    return S3Settings(endpoint_url=server.endpoint_url, bucket=bucket, retry_seconds=retry_seconds)


def _read(server: S3Server, bucket: str, key: str) -> tuple[bytes, str]:
    response = server.client().get_object(Bucket=bucket, Key=key)
    return response["Body"].read(), response["ContentType"]


def _keys(server: S3Server, bucket: str) -> list[str]:
    listing = server.client().list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


async def test_put_batch_writes_csv_and_manifest(s3_server: S3Server, bucket: str) -> None:
    async with BatchArchive(_settings(s3_server, bucket)) as archive:
        archived = await archive.put_batch(CSV_KEY, CSV_BYTES, MANIFEST)

    manifest_key = manifest_key_for(CSV_KEY)
    csv_body, csv_type = _read(s3_server, bucket, CSV_KEY)
    manifest_body, manifest_type = _read(s3_server, bucket, manifest_key)
    assert archived == ArchivedBatch(bucket, CSV_KEY, manifest_key, len(CSV_BYTES))
    assert manifest_key.endswith(".list-1.manifest.json")
    assert csv_body == CSV_BYTES
    assert csv_type == "text/csv; charset=utf-8"
    assert json.loads(manifest_body) == MANIFEST
    assert manifest_type == "application/json"
    assert _keys(s3_server, bucket) == sorted([CSV_KEY, manifest_key])


async def test_same_key_twice_overwrites(s3_server: S3Server, bucket: str) -> None:
    replayed = CSV_BYTES + b"c3,+13347938703\r\n"
    replayed_manifest = {**MANIFEST, "attempt": 2}

    async with BatchArchive(_settings(s3_server, bucket)) as archive:
        await archive.put_batch(CSV_KEY, CSV_BYTES, MANIFEST)
        await archive.put_batch(CSV_KEY, replayed, replayed_manifest)

    csv_body, _ = _read(s3_server, bucket, CSV_KEY)
    manifest_body, _ = _read(s3_server, bucket, manifest_key_for(CSV_KEY))
    assert _keys(s3_server, bucket) == sorted([CSV_KEY, manifest_key_for(CSV_KEY)])
    assert csv_body == replayed
    assert json.loads(manifest_body) == replayed_manifest


async def test_missing_bucket_raises_configuration_error(s3_server: S3Server) -> None:
    sleeps: list[float] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    missing = f"missing-{uuid.uuid4().hex[:12]}"
    async with BatchArchive(_settings(s3_server, missing), sleep=record_sleep) as archive:
        with pytest.raises(S3ConfigurationError, match=missing):
            await archive.put_batch(CSV_KEY, CSV_BYTES, MANIFEST)

    assert sleeps == []


async def test_stopped_server_raises_unavailable(own_s3_server: S3Server) -> None:
    own_s3_server.stop()
    started = time.monotonic()

    async with BatchArchive(
        _settings(own_s3_server, own_s3_server.bucket, retry_seconds=2)
    ) as archive:
        with pytest.raises(S3UnavailableError, match=own_s3_server.endpoint_url):
            await archive.put_batch(CSV_KEY, CSV_BYTES, MANIFEST)

    elapsed = time.monotonic() - started
    assert elapsed >= 2.0
    assert elapsed < 20.0


async def test_put_batch_survives_restart(own_s3_server: S3Server) -> None:
    # moto listens a moment before start() has created the bucket again, and a write in that
    # moment fails with NoSuchBucket, which a restarted real S3 would not return. So retries that
    # fall due while the server restarts wait until start() has returned.
    restarted = asyncio.Event()
    restarting = False
    sleeps: list[float] = []

    async def sleep_past_restart(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(seconds)
        if restarting:
            await restarted.wait()

    own_s3_server.stop()
    s3_settings = _settings(own_s3_server, own_s3_server.bucket, retry_seconds=30)

    async with BatchArchive(s3_settings, sleep=sleep_past_restart) as archive:
        put = asyncio.create_task(archive.put_batch(CSV_KEY, CSV_BYTES, MANIFEST))
        await asyncio.sleep(2.0)
        done_while_stopped = put.done()

        restarting = True
        await asyncio.to_thread(own_s3_server.start)
        restarting = False
        restarted.set()
        archived = await asyncio.wait_for(put, timeout=30)

    csv_body, _ = _read(own_s3_server, own_s3_server.bucket, CSV_KEY)
    manifest_body, _ = _read(own_s3_server, own_s3_server.bucket, archived.manifest_key)
    assert not done_while_stopped
    assert len(sleeps) >= 2
    assert csv_body == CSV_BYTES
    assert json.loads(manifest_body) == MANIFEST
