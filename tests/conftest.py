"""Session-wide fixtures: one local stack for the whole test run, and uuid-named resources.

The stack (Kafka broker, S3 server, Genesys emulator, CRM receiver) starts once, on free loopback
ports, the first time a test requests it. Tests that kill or restart a service start their own copy
of it instead of disturbing the shared one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from local_stack.stack import LocalStack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # Imported here so the unit tests run without the stack's dependencies loaded.
    from local_stack.stack import LocalStack, StackPorts  # noqa: PLC0415

    stack = LocalStack(work_dir=tmp_path_factory.mktemp("local-stack"), ports=StackPorts.any_free())
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A name no other test uses, for a topic, bucket or contact list."""
    return f"{request.node.name[:40].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:12]}"
