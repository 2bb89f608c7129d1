"""Fakes for the Genesys client's unit tests: a clock that sleep advances, and an API behind MockTransport.

`FakeGenesys` serves POST /oauth/token itself and hands every other request to a responder that
the test registers for its method and path. It records each request with the fake time at which
it arrived, so tests can check waits, retries and rate limits without real time passing.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from stream_app.genesys import CallRecord, GenesysClient
from stream_app.settings import GenesysSettings

API_URL = "http://127.0.0.1:8089"
CLIENT_ID = "unit-client"
CLIENT_SECRET = "unit-secret-value"

Responder = Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """A monotonic clock that only `sleep` moves forward; it records every sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        # Let other tasks run, as a real sleep would.
        await asyncio.sleep(0)


@dataclass
class Arrival:
    """One request the fake API received, with the fake time of its arrival."""

    time: float
    request: httpx.Request

    @property
    def path(self) -> str:
        return self.request.url.path

    def json(self) -> Any:
        return json.loads(self.request.content)


@dataclass
class FakeGenesys:
    """The fake Genesys Cloud API behind httpx.MockTransport."""

    clock: FakeClock
    token_expires_in: int = 86399
    arrivals: list[Arrival] = field(default_factory=list)
    tokens_issued: list[str] = field(default_factory=list)
    token_responses: deque[httpx.Response] = field(default_factory=deque)
    routes: dict[tuple[str, str], Responder] = field(default_factory=dict)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.arrivals.append(Arrival(self.clock(), request))
        if request.url.path == "/oauth/token":
            return self._token_response()

        responder = self.routes.get((request.method, request.url.path))
        if responder is None:
            return error_response(
                404, "not.found", f"no fake route for {request.method} {request.url.path}"
            )
        return responder(request)

    def on(self, method: str, path: str, responder: Responder) -> None:
        """Route `method path` to `responder`; `path` starts after /api/v2/outbound."""
        self.routes[(method, "/api/v2/outbound" + path)] = responder

    def on_sequence(self, method: str, path: str, responses: Iterable[httpx.Response]) -> None:
        """Respond to `method path` with `responses` in turn, repeating the last one."""
        queue = deque(responses)

        def next_response(_request: httpx.Request) -> httpx.Response:
            return queue.popleft() if len(queue) > 1 else queue[0]

        self.on(method, path, next_response)

    def api_arrivals(self) -> list[Arrival]:
        return [arrival for arrival in self.arrivals if arrival.path != "/oauth/token"]

    def token_arrivals(self) -> list[Arrival]:
        return [arrival for arrival in self.arrivals if arrival.path == "/oauth/token"]

    def _token_response(self) -> httpx.Response:
        if self.token_responses:
            return self.token_responses.popleft()
        token = f"token-{len(self.tokens_issued) + 1}"
        self.tokens_issued.append(token)
        return httpx.Response(
            200,
            json={
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.token_expires_in,
            },
        )


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """Build a response in the platform ErrorBody shape, with a correlation id."""
    correlation_id = f"corr-{status}-{code}"
    body = {
        "message": message,
        "code": code,
        "status": status,
        "contextId": correlation_id,
        "details": [],
        "errors": [],
    }
    return httpx.Response(
        status, json=body, headers={"inin-correlation-id": correlation_id, **(headers or {})}
    )


def contact_list_body(
    list_id: str = "list-1", name: str = "List one", **extra: Any
) -> dict[str, Any]:
    return {
        "id": list_id,
        "name": name,
        "version": 1,
        "columnNames": ["id", "phone", "email"],
        "phoneColumns": [{"columnName": "phone", "type": "cell"}],
        "emailColumns": [{"columnName": "email", "type": "work"}],
        "division": {"id": "home", "name": "Home"},
        **extra,
    }


def make_settings(**overrides: Any) -> GenesysSettings:
    values: dict[str, Any] = {
        "api_url": API_URL,
        "login_url": API_URL,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    values.update(overrides)
    return GenesysSettings.model_validate(values)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> FakeGenesys:
    return FakeGenesys(clock=clock)


@pytest.fixture
def call_records() -> list[CallRecord]:
    return []


@pytest.fixture
def make_client(
    fake: FakeGenesys, clock: FakeClock, call_records: list[CallRecord]
) -> Callable[..., GenesysClient]:
    """Return a factory of clients wired to the fake API and clock; extra keywords are settings."""

    def build(**overrides: Any) -> GenesysClient:
        return GenesysClient(
            make_settings(**overrides),
            transport=httpx.MockTransport(fake.handle),
            clock=clock,
            sleep=clock.sleep,
            random=lambda: 0.5,
            on_response=call_records.append,
        )

    return build


@pytest.fixture
async def client(make_client: Callable[..., GenesysClient]) -> AsyncIterator[GenesysClient]:
    async with make_client() as genesys:
        yield genesys
