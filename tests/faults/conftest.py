"""A private local stack per fault test, on free loopback ports, stopped after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_stack.stack import LocalStack, StackPorts


@pytest.fixture
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(work_dir=tmp_path_factory.mktemp("fault-stack"), ports=StackPorts.any_free())
    stack.start()
    yield stack
    stack.stop()
