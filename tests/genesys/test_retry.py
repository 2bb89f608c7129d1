"""Retries, waits and error translation of the Genesys client, on a fake clock."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from stream_app.errors import PermanentError, RetriableError
from stream_app.genesys import (
    CallRecord,
    GenesysClient,
    GenesysConflictError,
    GenesysNotFoundError,
    GenesysPermanentError,
    GenesysRetriableError,
    PhoneColumn,
)
from tests.genesys.conftest import (
    FakeClock,
    FakeGenesys,
    contact_list_body,
    error_response,
    make_settings,
)

LIST_PATH = "/contactlists/list-1"
OK_LIST = httpx.Response(200, json=contact_list_body())


def _rate_limited(retry_after: str | None) -> httpx.Response:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return error_response(
        429,
        "too.many.requests.retry.after",
        f"Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds",
        headers=headers,
    )


def _unavailable() -> httpx.Response:
    return error_response(503, "service.unavailable", "Service Unavailable")


async def test_429_waits_retry_after_then_succeeds(
    fake: FakeGenesys, clock: FakeClock, client: GenesysClient
) -> None:
    fake.on_sequence("GET", LIST_PATH, [_rate_limited("7"), OK_LIST])

    contact_list = await client.get_contact_list("list-1")

    assert contact_list.id == "list-1"
    assert clock.sleeps == [7.0]
    arrivals = fake.api_arrivals()
    assert len(arrivals) == 2
    assert arrivals[1].time - arrivals[0].time == 7.0


async def test_429_without_retry_after_waits_default(
    fake: FakeGenesys, clock: FakeClock, make_client: Callable[..., GenesysClient]
) -> None:
    fake.on_sequence("GET", LIST_PATH, [_rate_limited(None), OK_LIST])

    async with make_client(retry_after_default_seconds=4.5) as client:
        await client.get_contact_list("list-1")

    assert clock.sleeps == [4.5]


async def test_429_storm_beyond_limit_raises_retriable(
    fake: FakeGenesys, clock: FakeClock, make_client: Callable[..., GenesysClient]
) -> None:
    fake.on_sequence("GET", LIST_PATH, [_rate_limited("30")])

    async with make_client(max_retry_seconds=100) as client:
        with pytest.raises(GenesysRetriableError) as raised:
            await client.get_contact_list("list-1")

    assert clock.sleeps == [30.0, 30.0, 30.0]
    assert raised.value.status == 429
    assert raised.value.code == "too.many.requests.retry.after"
    assert "genesys.requests_per_minute" in str(raised.value)


async def test_503_retried_with_backoff_then_succeeds(
    fake: FakeGenesys, clock: FakeClock, client: GenesysClient
) -> None:
    fake.on_sequence("GET", LIST_PATH, [_unavailable(), _unavailable(), _unavailable(), OK_LIST])

    await client.get_contact_list("list-1")

    # Full jitter with random() == 0.5: half of 1, 2 and 4 seconds.
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert len(fake.api_arrivals()) == 4


async def test_backoff_capped_at_maximum(
    fake: FakeGenesys, clock: FakeClock, make_client: Callable[..., GenesysClient]
) -> None:
    fake.on_sequence("GET", LIST_PATH, [_unavailable()] * 8 + [OK_LIST])

    async with make_client() as client:
        await client.get_contact_list("list-1")

    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]


async def test_503_beyond_max_retry_raises_retriable(
    fake: FakeGenesys, clock: FakeClock, make_client: Callable[..., GenesysClient]
) -> None:
    fake.on_sequence("GET", LIST_PATH, [_unavailable()])

    async with make_client(max_retry_seconds=20) as client:
        with pytest.raises(GenesysRetriableError) as raised:
            await client.get_contact_list("list-1")

    error = raised.value
    assert isinstance(error, RetriableError)
    assert error.status == 503
    assert error.code == "service.unavailable"
    assert error.correlation_id == "corr-503-service.unavailable"
    assert "genesys.max_retry_seconds" in str(error)
    # Waits 0.5 + 1 + 2 + 4 + 8 = 15.5 s; the next wait of 15 s would pass 20 s.
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert len(fake.api_arrivals()) == 6


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_other_5xx_retried(
    fake: FakeGenesys, clock: FakeClock, client: GenesysClient, status: int
) -> None:
    fake.on_sequence("GET", LIST_PATH, [error_response(status, "server.error", "failed"), OK_LIST])

    await client.get_contact_list("list-1")

    assert clock.sleeps == [0.5]


async def test_connect_error_retried_then_succeeds(
    fake: FakeGenesys, clock: FakeClock, client: GenesysClient
) -> None:
    failures = iter([httpx.ConnectError("connection refused"), httpx.ReadTimeout("timed out")])

    def flaky(request: httpx.Request) -> httpx.Response:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return httpx.Response(200, json=contact_list_body())

    fake.on("GET", LIST_PATH, flaky)

    await client.get_contact_list("list-1")

    assert clock.sleeps == [0.5, 1.0]


async def test_timeouts_beyond_max_retry_raise_retriable(
    fake: FakeGenesys, make_client: Callable[..., GenesysClient]
) -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    fake.on("GET", LIST_PATH, timeout)

    async with make_client(max_retry_seconds=5) as client:
        with pytest.raises(GenesysRetriableError) as raised:
            await client.get_contact_list("list-1")

    assert raised.value.status is None
    assert "ReadTimeout" in str(raised.value)
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)


async def test_400_raises_permanent_with_api_message(
    fake: FakeGenesys, clock: FakeClock, client: GenesysClient
) -> None:
    fake.on(
        "GET",
        LIST_PATH,
        lambda _request: error_response(400, "bad.request", "The column foo is not on the list."),
    )

    with pytest.raises(GenesysPermanentError) as raised:
        await client.get_contact_list("list-1")

    error = raised.value
    assert isinstance(error, PermanentError)
    assert not isinstance(error, RetriableError)
    assert error.status == 400
    assert error.code == "bad.request"
    assert error.correlation_id == "corr-400-bad.request"
    assert "The column foo is not on the list." in error.message
    assert clock.sleeps == []
    assert len(fake.api_arrivals()) == 1


async def test_404_raises_not_found(fake: FakeGenesys, client: GenesysClient) -> None:
    with pytest.raises(GenesysNotFoundError) as raised:
        await client.get_contact_list("missing")

    assert raised.value.status == 404


async def test_409_raises_conflict_error(fake: FakeGenesys, client: GenesysClient) -> None:
    fake.on(
        "GET",
        LIST_PATH,
        lambda _request: error_response(409, "general.conflict", "Version does not match."),
    )

    with pytest.raises(GenesysConflictError) as raised:
        await client.get_contact_list("list-1")

    assert not isinstance(raised.value, RetriableError)
    assert not isinstance(raised.value, PermanentError)
    assert len(fake.api_arrivals()) == 1


async def test_create_not_retried_after_read_timeout(
    fake: FakeGenesys, client: GenesysClient
) -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    fake.on("POST", "/contactlists", timeout)

    with pytest.raises(GenesysRetriableError, match="may have taken effect"):
        await client.create_contact_list(
            "New", ["id", "phone"], [PhoneColumn(column_name="phone", type="cell")]
        )

    assert len(fake.api_arrivals()) == 1


async def test_create_not_retried_after_502(fake: FakeGenesys, client: GenesysClient) -> None:
    fake.on_sequence("POST", "/contactlists", [error_response(502, "bad.gateway", "Bad Gateway")])

    with pytest.raises(GenesysRetriableError):
        await client.create_contact_list(
            "New", ["id", "phone"], [PhoneColumn(column_name="phone", type="cell")]
        )

    assert len(fake.api_arrivals()) == 1


async def test_create_retried_after_503(
    fake: FakeGenesys, clock: FakeClock, client: GenesysClient
) -> None:
    fake.on_sequence(
        "POST", "/contactlists", [_unavailable(), httpx.Response(200, json=contact_list_body())]
    )

    await client.create_contact_list(
        "New", ["id", "phone"], [PhoneColumn(column_name="phone", type="cell")]
    )

    assert clock.sleeps == [0.5]


async def test_on_response_records_each_attempt(
    fake: FakeGenesys, clock: FakeClock, client: GenesysClient, call_records: list[CallRecord]
) -> None:
    fake.on_sequence("GET", LIST_PATH, [_unavailable(), OK_LIST])

    await client.get_contact_list("list-1")

    assert [(r.method, r.path, r.status, r.attempt) for r in call_records] == [
        ("POST", "/oauth/token", 200, 1),
        ("GET", "/api/v2/outbound/contactlists/{contactListId}", 503, 1),
        ("GET", "/api/v2/outbound/contactlists/{contactListId}", 200, 2),
    ]
    assert call_records[1].correlation_id == "corr-503-service.unavailable"
    assert all(record.duration_seconds == 0.0 for record in call_records)


async def test_on_response_failure_does_not_fail_call(fake: FakeGenesys, clock: FakeClock) -> None:
    fake.on("GET", LIST_PATH, lambda _request: OK_LIST)

    def broken_hook(record: CallRecord) -> None:
        raise RuntimeError("metrics backend down")

    async with GenesysClient(
        make_settings(),
        transport=httpx.MockTransport(fake.handle),
        clock=clock,
        sleep=clock.sleep,
        on_response=broken_hook,
    ) as client:
        contact_list = await client.get_contact_list("list-1")

    assert contact_list.id == "list-1"
