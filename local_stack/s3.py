"""A real S3 API server on loopback: moto in server mode, run as a child process.

The product talks to it through aiobotocore exactly as it talks to AWS S3 or MinIO, so the archive
code path is the production one. This module only starts and stops the server and creates the
bucket; it does not emulate S3 itself.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from local_stack.process import (
    LOOPBACK,
    ManagedProcess,
    choose_port,
)

logger = logging.getLogger(__name__)

# moto accepts any credentials; these only satisfy botocore's signer.
ACCESS_KEY_ID = "local-access-key"
SECRET_ACCESS_KEY = "local-secret-key"  # noqa: S105 - fixed credential of the local test server
REGION = "us-east-1"


class S3Server:
    """moto's S3 server on 127.0.0.1, with `bucket` created after each start.

    moto keeps objects in memory, so a stop or kill loses them; a restart creates the bucket again.
    Fault tests use that to take S3 away for a while, not to test durability.
    """

    def __init__(self, log_dir: Path, port: int = 0, bucket: str = "stream-app") -> None:
        self.port = choose_port(port)
        self.bucket = bucket
        self._process = ManagedProcess(
            "s3-server",
            [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)],
            log_dir / "s3-server.log",
        )

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start the server, wait for its port and create the bucket; raise LocalStackError on failure."""
        self._process.start_listening(self.port, self.endpoint_url, timeout)
        self.create_bucket(self.bucket)

    def create_bucket(self, name: str) -> None:
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in {
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            }:
                raise
        logger.info("S3 bucket %s ready at %s", name, self.endpoint_url)

    def client(self) -> Any:  # botocore clients are generated at run time, so untyped
        """Return a synchronous botocore S3 client for set-up and inspection in tests."""
        session = botocore.session.get_session()
        return session.create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            config=Config(retries={"max_attempts": 2}),
        )

    def stop(self) -> None:
        self._process.stop()

    def kill(self) -> None:
        self._process.kill()

    def is_running(self) -> bool:
        return self._process.is_running()
