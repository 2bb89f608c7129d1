"""The S3 archive of batches: one CSV and one JSON manifest per batch.

Keys are deterministic (topic, partition, first and last offset, contact list), so writing a
replayed batch again overwrites the same objects instead of adding overlapping ones. S3 being
unreachable is retriable: `put_batch` keeps retrying with backoff for `retry_seconds`, which blocks
the agent and so stops the worker from taking new records, then raises `S3UnavailableError`.
Permission and missing-bucket errors are configuration problems and are raised at once.

This module does not decide what goes into a batch; it stores bytes it is given.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from stream_app.errors import ConfigurationError, RetriableError
from stream_app.observability.spans import s3_put_span
from stream_app.settings import S3Settings

logger = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".manifest.json"


class S3UnavailableError(RetriableError):
    """S3 did not accept the batch within the retry time."""


class S3ConfigurationError(ConfigurationError):
    """The bucket is missing or the credentials may not write to it."""


@dataclass(frozen=True)
class ArchivedBatch:
    bucket: str
    key: str
    manifest_key: str
    size: int


def manifest_key_for(csv_key: str) -> str:
    return csv_key.removesuffix(".csv") + MANIFEST_SUFFIX


class BatchArchive:
    """Writes batch CSVs and manifests to one bucket; use as an async context manager."""

    def __init__(
        self,
        settings: S3Settings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._clock = clock
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def __aenter__(self) -> BatchArchive:
        session = get_session()
        credentials: dict[str, str] = {}
        if self.settings.access_key_id and self.settings.secret_access_key:
            credentials = {
                "aws_access_key_id": self.settings.access_key_id.get_secret_value(),
                "aws_secret_access_key": self.settings.secret_access_key.get_secret_value(),
            }
        self._client = await self._stack.enter_async_context(
            session.create_client(
                "s3",
                endpoint_url=self.settings.endpoint_url,
                region_name=self.settings.region,
                config=AioConfig(
                    connect_timeout=5,
                    read_timeout=30,
                    retries={"max_attempts": 1},
                ),
                **credentials,
            )
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    async def put_batch(
        self, csv_key: str, csv_bytes: bytes, manifest: dict[str, Any]
    ) -> ArchivedBatch:
        """Write the CSV, then the manifest; raise S3UnavailableError or S3ConfigurationError.

        The manifest is written last, so a manifest in the bucket means its CSV is complete.
        """
        manifest_key = manifest_key_for(csv_key)
        manifest_bytes = json.dumps(manifest, sort_keys=True, indent=2).encode()
        await self._put_with_retry(csv_key, csv_bytes, "text/csv; charset=utf-8")
        await self._put_with_retry(manifest_key, manifest_bytes, "application/json")
        return ArchivedBatch(self.settings.bucket, csv_key, manifest_key, len(csv_bytes))

    async def _put_with_retry(self, key: str, body: bytes, content_type: str) -> None:
        deadline = self._clock() + self.settings.retry_seconds
        delay = 0.5
        attempt = 0
        while True:
            attempt += 1
            try:
                with s3_put_span(self.settings.bucket, key, self.settings.endpoint_url):
                    await self._client.put_object(
                        Bucket=self.settings.bucket, Key=key, Body=body, ContentType=content_type
                    )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if code in {
                    "NoSuchBucket",
                    "AccessDenied",
                    "InvalidAccessKeyId",
                    "SignatureDoesNotMatch",
                }:
                    raise S3ConfigurationError(
                        f"S3 rejected the write of {key} to bucket {self.settings.bucket!r} with "
                        f"{code}; check STREAM_APP_S3_BUCKET and the credentials"
                    ) from exc
                if status and status < 500 and status != 429:
                    raise S3ConfigurationError(
                        f"S3 rejected the write of {key} to bucket {self.settings.bucket!r} with {status} {code}"
                    ) from exc
                error: Exception = exc
            except (TimeoutError, BotoCoreError, OSError) as exc:
                error = exc
            else:
                if attempt > 1:
                    logger.info("S3 write of %s succeeded after %d attempts", key, attempt)
                return

            if self._clock() >= deadline:
                raise S3UnavailableError(
                    f"S3 at {self.settings.endpoint_url or 'AWS'} did not accept {key} for "
                    f"{self.settings.retry_seconds:.0f} s: {error}"
                ) from error
            logger.warning(
                "S3 write of %s failed (attempt %d: %s); retrying in %.1f s",
                key,
                attempt,
                error,
                delay,
            )
            await self._sleep(delay * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not security
            delay = min(delay * 2, 10.0)
