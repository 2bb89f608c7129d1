"""The client-side rate limiter: no 60-second window may hold more requests than the limit."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable, Sequence

import httpx
import pytest

from stream_app.genesys import GenesysClient, SlidingWindowRateLimiter
from tests.genesys.conftest import FakeClock, FakeGenesys, contact_list_body, make_settings


def max_in_any_window(times: Sequence[float], window: float = 60.0) -> int:
    """Return the most times that fall in one half-open window [t, t + window)."""
    ordered = sorted(times)
    return max(
        (
            bisect.bisect_left(ordered, start + window) - index
            for index, start in enumerate(ordered)
        ),
        default=0,
    )


async def test_limiter_waits_for_oldest_to_leave_window(clock: FakeClock) -> None:
    limiter = SlidingWindowRateLimiter(3, clock=clock, sleep=clock.sleep)

    for _ in range(3):
        await limiter.acquire()
    clock.now += 10
    await limiter.acquire()

    assert clock.sleeps == [50.0]
    assert clock.now == 1060.0


async def test_limiter_concurrent_callers_within_limit(clock: FakeClock) -> None:
    limiter = SlidingWindowRateLimiter(5, clock=clock, sleep=clock.sleep)
    admitted: list[float] = []

    async def send() -> None:
        await limiter.acquire()
        admitted.append(clock())

    await asyncio.gather(*(send() for _ in range(23)))

    assert len(admitted) == 23
    assert max_in_any_window(admitted) == 5
    # 23 sends at 5 per window need four full windows before the last five.
    assert max(admitted) - min(admitted) == 240.0


async def test_limiter_available_counts_sends_in_window(clock: FakeClock) -> None:
    limiter = SlidingWindowRateLimiter(3, clock=clock, sleep=clock.sleep)

    await limiter.acquire()
    clock.now += 30
    await limiter.acquire()
    in_window = limiter.available()
    clock.now += 30
    first_left = limiter.available()

    assert in_window == 1
    assert first_left == 2


def test_limiter_from_settings_applies_headroom() -> None:
    settings = make_settings(requests_per_minute=300, rate_limit_headroom=0.9)

    assert SlidingWindowRateLimiter.from_settings(settings).limit == 270


def test_limiter_from_settings_allows_at_least_one() -> None:
    settings = make_settings(requests_per_minute=1, rate_limit_headroom=0.5)

    assert SlidingWindowRateLimiter.from_settings(settings).limit == 1


def test_limiter_rejects_zero_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SlidingWindowRateLimiter(0)


async def test_client_concurrent_calls_stay_under_limit(
    fake: FakeGenesys, clock: FakeClock, make_client: Callable[..., GenesysClient]
) -> None:
    fake.on(
        "GET",
        "/contactlists/list-1",
        lambda _request: httpx.Response(200, json=contact_list_body()),
    )

    async with make_client(requests_per_minute=100, rate_limit_headroom=0.9) as client:
        await asyncio.gather(*(client.get_contact_list("list-1") for _ in range(400)))

    api_times = [arrival.time for arrival in fake.api_arrivals()]
    assert len(api_times) == 400
    assert max_in_any_window(api_times) == 90
    # The token request does not take a slot: 400 calls at 90 per window span four windows.
    assert max(api_times) - min(api_times) == 240.0
    assert len(fake.token_arrivals()) == 1


async def test_client_retries_take_limiter_slots(
    fake: FakeGenesys, clock: FakeClock, make_client: Callable[..., GenesysClient]
) -> None:
    responses = iter(
        [
            httpx.Response(
                503, json={"message": "Service Unavailable", "code": "service.unavailable"}
            )
        ]
    )

    def flaky(_request: httpx.Request) -> httpx.Response:
        return next(responses, httpx.Response(200, json=contact_list_body()))

    fake.on("GET", "/contactlists/list-1", flaky)

    async with make_client(requests_per_minute=2, rate_limit_headroom=1.0) as client:
        await client.get_contact_list("list-1")
        await client.get_contact_list("list-1")

    api_times = [arrival.time for arrival in fake.api_arrivals()]
    assert len(api_times) == 3
    assert max_in_any_window(api_times) == 2


async def test_clients_share_injected_limiter(fake: FakeGenesys, clock: FakeClock) -> None:
    fake.on(
        "GET",
        "/contactlists/list-1",
        lambda _request: httpx.Response(200, json=contact_list_body()),
    )
    limiter = SlidingWindowRateLimiter(10, clock=clock, sleep=clock.sleep)
    clients = [
        GenesysClient(
            make_settings(),
            transport=httpx.MockTransport(fake.handle),
            clock=clock,
            sleep=clock.sleep,
            rate_limiter=limiter,
        )
        for _ in range(3)
    ]

    await asyncio.gather(
        *(client.get_contact_list("list-1") for client in clients for _ in range(15))
    )
    for client in clients:
        await client.aclose()

    assert max_in_any_window([arrival.time for arrival in fake.api_arrivals()]) == 10
