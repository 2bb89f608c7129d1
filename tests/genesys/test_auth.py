"""Access-token caching, renewal and the OAuth errors of the Genesys client."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest

from stream_app.genesys import GenesysAuthError, GenesysClient, GenesysPermanentError
from tests.genesys.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeClock,
    FakeGenesys,
    contact_list_body,
    error_response,
)

LIST_PATH = "/contactlists/list-1"


def _serve_list(fake: FakeGenesys) -> None:
    fake.on("GET", LIST_PATH, lambda _request: httpx.Response(200, json=contact_list_body()))


async def test_token_request_uses_basic_auth_and_form(
    fake: FakeGenesys, client: GenesysClient
) -> None:
    _serve_list(fake)

    await client.get_contact_list("list-1")

    token_request = fake.token_arrivals()[0].request
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert token_request.method == "POST"
    assert token_request.headers["Authorization"] == f"Basic {expected}"
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_request.content.decode()) == {"grant_type": ["client_credentials"]}
    assert fake.api_arrivals()[0].request.headers["Authorization"] == "Bearer token-1"


async def test_token_cached_between_calls(fake: FakeGenesys, client: GenesysClient) -> None:
    _serve_list(fake)

    for _ in range(5):
        await client.get_contact_list("list-1")

    assert len(fake.token_arrivals()) == 1
    assert {a.request.headers["Authorization"] for a in fake.api_arrivals()} == {"Bearer token-1"}


async def test_token_renewed_margin_before_expiry(
    fake: FakeGenesys, clock: FakeClock, make_client: Callable[..., GenesysClient]
) -> None:
    fake.token_expires_in = 3600
    _serve_list(fake)

    async with make_client(token_renew_margin_seconds=300) as client:
        await client.get_contact_list("list-1")
        clock.now += 3299
        await client.get_contact_list("list-1")
        assert len(fake.token_arrivals()) == 1

        clock.now += 1
        await client.get_contact_list("list-1")

    assert len(fake.token_arrivals()) == 2
    assert fake.api_arrivals()[-1].request.headers["Authorization"] == "Bearer token-2"


async def test_short_token_renewed_at_half_lifetime(
    fake: FakeGenesys, clock: FakeClock, make_client: Callable[..., GenesysClient]
) -> None:
    # A margin longer than the lifetime would renew on every call; half the lifetime wins.
    fake.token_expires_in = 10
    _serve_list(fake)

    async with make_client(token_renew_margin_seconds=300) as client:
        await client.get_contact_list("list-1")
        clock.now += 4.9
        await client.get_contact_list("list-1")
        assert len(fake.token_arrivals()) == 1

        clock.now += 0.1
        await client.get_contact_list("list-1")

    assert len(fake.token_arrivals()) == 2


async def test_concurrent_callers_share_token_request(
    fake: FakeGenesys, client: GenesysClient
) -> None:
    _serve_list(fake)

    await asyncio.gather(*(client.get_contact_list("list-1") for _ in range(20)))

    assert len(fake.token_arrivals()) == 1
    assert len(fake.api_arrivals()) == 20


async def test_401_renews_token_once_then_succeeds(
    fake: FakeGenesys, client: GenesysClient
) -> None:
    def reject_first_token(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer token-1":
            return error_response(401, "bad.credentials", "Invalid login credentials.")
        return httpx.Response(200, json=contact_list_body())

    fake.on("GET", LIST_PATH, reject_first_token)

    contact_list = await client.get_contact_list("list-1")

    assert contact_list.id == "list-1"
    assert len(fake.token_arrivals()) == 2
    assert [a.request.headers["Authorization"] for a in fake.api_arrivals()] == [
        "Bearer token-1",
        "Bearer token-2",
    ]


async def test_401_after_renewal_raises_auth_error(
    fake: FakeGenesys, client: GenesysClient
) -> None:
    fake.on(
        "GET",
        LIST_PATH,
        lambda _request: error_response(401, "bad.credentials", "Invalid login credentials."),
    )

    with pytest.raises(GenesysAuthError) as raised:
        await client.get_contact_list("list-1")

    assert raised.value.status == 401
    assert raised.value.code == "bad.credentials"
    assert raised.value.correlation_id == "corr-401-bad.credentials"
    assert len(fake.token_arrivals()) == 2
    assert len(fake.api_arrivals()) == 2


async def test_concurrent_401s_renew_token_once(fake: FakeGenesys, client: GenesysClient) -> None:
    def reject_first_token(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer token-1":
            return error_response(401, "bad.credentials", "Invalid login credentials.")
        return httpx.Response(200, json=contact_list_body())

    _serve_list(fake)
    await client.get_contact_list("list-1")
    fake.on("GET", LIST_PATH, reject_first_token)

    await asyncio.gather(*(client.get_contact_list("list-1") for _ in range(10)))

    assert len(fake.token_arrivals()) == 2


async def test_invalid_client_raises_auth_error(fake: FakeGenesys, client: GenesysClient) -> None:
    fake.token_responses.append(
        httpx.Response(
            401,
            json={
                "error": "invalid_client",
                "description": "authentication failed",
                "error_description": "authentication failed",
            },
        )
    )
    _serve_list(fake)

    with pytest.raises(GenesysAuthError) as raised:
        await client.get_contact_list("list-1")

    error = raised.value
    assert isinstance(error, GenesysPermanentError)
    assert error.status == 401
    assert error.code == "invalid_client"
    assert "genesys.client_id" in str(error)
    assert "genesys.login_url" in str(error)
    assert len(fake.token_arrivals()) == 1
    assert fake.api_arrivals() == []


async def test_unauthorized_client_raises_auth_error(
    fake: FakeGenesys, client: GenesysClient
) -> None:
    description = "client is not authorized to use the client_credential grant type"
    fake.token_responses.append(
        httpx.Response(
            400,
            json={
                "error": "unauthorized_client",
                "description": description,
                "error_description": description,
            },
        )
    )

    with pytest.raises(GenesysAuthError) as raised:
        await client.get_contact_list("list-1")

    assert raised.value.code == "unauthorized_client"
    assert "Client Credentials" in str(raised.value)


async def test_token_request_retried_on_503(
    fake: FakeGenesys, clock: FakeClock, client: GenesysClient
) -> None:
    fake.token_responses.append(httpx.Response(503, text="unavailable"))
    _serve_list(fake)

    await client.get_contact_list("list-1")

    assert len(fake.token_arrivals()) == 2
    assert clock.sleeps == [0.5]


async def test_token_response_without_access_token(
    fake: FakeGenesys, client: GenesysClient
) -> None:
    fake.token_responses.append(httpx.Response(200, text="<html>login page</html>"))

    with pytest.raises(GenesysAuthError, match="login_url"):
        await client.get_contact_list("list-1")


async def test_token_and_secret_never_logged(
    fake: FakeGenesys, client: GenesysClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stream_app.genesys")
    responses = iter(
        [
            error_response(401, "bad.credentials", "Invalid login credentials."),
            httpx.Response(200, json=contact_list_body()),
        ]
    )
    fake.on("GET", LIST_PATH, lambda _request: next(responses))

    await client.get_contact_list("list-1")

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "renewing the access token" in logged
    assert "token-1" not in logged
    assert "token-2" not in logged
    assert CLIENT_SECRET not in logged
