"""WebhookSender against httpx.MockTransport, with a fake clock and sleep: signing and retries."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from stream_app.settings import WebhookSettings
from stream_app.webhook import WebhookSender

SECRET = "whsec_" + "dGVzdC13ZWJob29rLXNpZ25pbmcta2V5LTEyMzQ1Njc4"  # base64 of a test key
URL = "http://127.0.0.1:8090/webhooks/genesys-import"
BATCH_ID = "2f8c1a52-8d1e-5b7a-9f3e-1c0a7e2b4d61"
BODY = json.dumps({"batch_id": BATCH_ID, "counts": {"imported": 2, "rejected": 1}})


@dataclass
class FakeTime:
    """A monotonic clock that only `sleep` moves, and the sleeps requested."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class FakeCrm:
    """A MockTransport handler that returns each status or raises each error in turn, then repeats the last."""

    responses: list[int | type[httpx.TransportError]]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        index = min(len(self.requests), len(self.responses)) - 1
        answer = self.responses[index]
        if isinstance(answer, int):
            return httpx.Response(answer)
        raise answer("connection refused", request=request)


def _sender(
    handler: Callable[[httpx.Request], httpx.Response],
    fake_time: FakeTime,
    **overrides: float,
) -> WebhookSender:
    options = {"retry_seconds": 60.0, "backoff_initial_seconds": 1.0, "backoff_max_seconds": 8.0}
    options.update(overrides)
    webhook_settings = WebhookSettings(url=URL, secret=SECRET, **options)
    return WebhookSender(
        webhook_settings,
        transport=httpx.MockTransport(handler),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )


async def test_delivery_signature_verifies() -> None:
    crm = FakeCrm([204])
    fake_time = FakeTime()

    async with _sender(crm, fake_time) as sender:
        outcome = await sender.deliver(BATCH_ID, BODY)

    (request,) = crm.requests
    headers = dict(request.headers)
    sent_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
    assert outcome.delivered
    assert outcome.attempts == 1
    assert outcome.last_status == 204
    assert str(request.url) == URL
    assert request.content.decode() == BODY
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == BATCH_ID
    assert abs(datetime.now(tz=UTC) - sent_at) < timedelta(minutes=1)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(SECRET).verify(request.content.decode(), headers) == json.loads(BODY)


async def test_signature_fails_with_other_secret() -> None:
    crm = FakeCrm([204])

    async with _sender(crm, FakeTime()) as sender:
        await sender.deliver(BATCH_ID, BODY)

    (request,) = crm.requests
    other = Webhook("whsec_" + "b3RoZXItd2ViaG9vay1zaWduaW5nLWtleQ==")
    with pytest.raises(WebhookVerificationError):
        other.verify(request.content.decode(), dict(request.headers))


@pytest.mark.parametrize(
    "now",
    [
        datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC),
        datetime(2025, 3, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(2025, 3, 1, 7, 0, 0, tzinfo=timezone(timedelta(hours=-5))),
    ],
    ids=["utc", "utc+2", "utc-5"],
)
async def test_signed_headers_any_timezone(now: datetime) -> None:
    expected = Webhook(SECRET).sign(BATCH_ID, now.astimezone(UTC), BODY)

    async with WebhookSender(WebhookSettings(url=URL, secret=SECRET)) as sender:
        headers = sender.signed_headers(BATCH_ID, BODY, now=now)

    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert headers["webhook-signature"] == expected


async def test_retry_503_then_204() -> None:
    crm = FakeCrm([503, 204])
    fake_time = FakeTime()

    async with _sender(crm, fake_time) as sender:
        outcome = await sender.deliver(BATCH_ID, BODY)

    assert outcome.delivered
    assert outcome.attempts == 2
    assert outcome.last_status == 204
    assert outcome.last_error is None
    assert len(crm.requests) == 2
    assert len(fake_time.sleeps) == 1
    for request in crm.requests:
        assert request.headers["webhook-id"] == BATCH_ID
        assert Webhook(SECRET).verify(request.content.decode(), dict(request.headers))


async def test_always_500_gives_up() -> None:
    crm = FakeCrm([500])
    fake_time = FakeTime()
    retry_seconds, initial, cap = 60.0, 1.0, 8.0

    async with _sender(
        crm,
        fake_time,
        retry_seconds=retry_seconds,
        backoff_initial_seconds=initial,
        backoff_max_seconds=cap,
    ) as sender:
        outcome = await sender.deliver(BATCH_ID, BODY)

    assert not outcome.delivered
    assert outcome.attempts > 1
    assert outcome.attempts == len(crm.requests)
    assert outcome.attempts == len(fake_time.sleeps) + 1
    assert outcome.last_status == 500
    assert outcome.last_error == "HTTP 500"

    # Each sleep is the backoff delay times a jitter factor in [0.5, 1).
    delays = [min(initial * 2**attempt, cap) for attempt in range(len(fake_time.sleeps) + 1)]
    for attempt, (slept, delay) in enumerate(zip(fake_time.sleeps, delays, strict=False)):
        assert delay / 2 <= slept < delay, f"sleep {attempt}: {slept} for delay {delay}"
    uncapped = [
        slept for slept, delay in zip(fake_time.sleeps, delays, strict=False) if delay < cap
    ]
    assert uncapped == sorted(uncapped)
    assert len(set(uncapped)) == len(uncapped)
    assert max(fake_time.sleeps) <= cap
    assert cap in delays[: len(fake_time.sleeps)], "the backoff never reached its cap"

    # It gives up within retry_seconds, and only when the next delay would pass the deadline.
    assert fake_time.now <= retry_seconds
    assert fake_time.now + delays[-1] > retry_seconds


async def test_connection_error_is_retried() -> None:
    crm = FakeCrm([httpx.ConnectError, httpx.ConnectError, 204])
    fake_time = FakeTime()

    async with _sender(crm, fake_time) as sender:
        outcome = await sender.deliver(BATCH_ID, BODY)

    assert outcome.delivered
    assert outcome.attempts == 3
    assert len(fake_time.sleeps) == 2


async def test_read_timeout_is_retried() -> None:
    crm = FakeCrm([httpx.ReadTimeout, 200])
    fake_time = FakeTime()

    async with _sender(crm, fake_time) as sender:
        outcome = await sender.deliver(BATCH_ID, BODY)

    assert outcome.delivered
    assert outcome.attempts == 2


async def test_connection_error_until_deadline() -> None:
    crm = FakeCrm([httpx.ConnectError])
    fake_time = FakeTime()

    async with _sender(crm, fake_time, retry_seconds=20.0) as sender:
        outcome = await sender.deliver(BATCH_ID, BODY)

    assert not outcome.delivered
    assert outcome.attempts > 1
    assert outcome.last_status is None
    assert outcome.last_error is not None
    assert outcome.last_error.startswith("ConnectError")
    assert fake_time.now <= 20.0


def test_sender_needs_url() -> None:
    with pytest.raises(ValueError, match="STREAM_APP_WEBHOOK_URL"):
        WebhookSender(WebhookSettings(url=None, secret=SECRET))
