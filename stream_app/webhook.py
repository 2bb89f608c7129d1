"""Signed delivery of import results to the CRM webhook.

Each import result is posted as JSON with Standard Webhooks headers. `webhook-id` is the batch id,
which never changes for a batch, so the CRM can drop repeats. `webhook-timestamp` is the send time.
`webhook-signature` is "v1," plus the base64 HMAC-SHA256 of "{id}.{timestamp}.{body}", made with
the `standardwebhooks` reference implementation. A response other than 2xx, a timeout or a
connection error is retried with exponential backoff and jitter for `retry_seconds`. After that
the caller sends the result to the webhook dead-letter topic.

This module does not consume Kafka; the relay agent calls `deliver` once per result.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from stream_app.observability.metrics import record_webhook_delivery
from stream_app.observability.spans import (
    http_client_span,
    set_delivery_outcome,
    set_http_status,
    webhook_delivery_span,
)
from stream_app.settings import WebhookSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryOutcome:
    delivered: bool
    attempts: int
    last_status: int | None
    last_error: str | None


class WebhookSender:
    """Posts signed bodies to the CRM; use as an async context manager."""

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not settings.url:
            raise ValueError("WebhookSender needs a URL; set STREAM_APP_WEBHOOK_URL")
        self.settings = settings
        self._signer = Webhook(settings.secret.get_secret_value())
        self._client = httpx.AsyncClient(transport=transport, timeout=settings.timeout_seconds)
        self._clock = clock
        self._sleep = sleep

    async def __aenter__(self) -> WebhookSender:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    def signed_headers(
        self, webhook_id: str, body: str, now: datetime | None = None
    ) -> dict[str, str]:
        # standardwebhooks 1.1 Webhook.sign replaces the tzinfo with UTC, so convert first.
        sent_at = (now or datetime.now(tz=UTC)).astimezone(UTC)
        return {
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": self._signer.sign(webhook_id, sent_at, body),
        }

    async def deliver(self, webhook_id: str, body: str) -> DeliveryOutcome:
        """Post `body` until the CRM responds with 2xx or `retry_seconds` have passed.

        Never raises for HTTP or network failures; the outcome says whether it was delivered.
        Each attempt is signed afresh, because the timestamp is part of the signature. The
        delivery is one `webhook deliver` span, with one HTTP client span per attempt.
        """
        with webhook_delivery_span(webhook_id) as span:
            outcome = await self._deliver(webhook_id, body)
            set_delivery_outcome(span, outcome.delivered, outcome.attempts)
        if outcome.delivered:
            record_webhook_delivery("delivered")
        return outcome

    async def _deliver(self, webhook_id: str, body: str) -> DeliveryOutcome:
        assert self.settings.url is not None
        deadline = self._clock() + self.settings.retry_seconds
        delay = self.settings.backoff_initial_seconds
        attempts = 0
        status: int | None = None
        error: str | None = None

        while True:
            attempts += 1
            try:
                with http_client_span("POST", self.settings.url, attempt=attempts) as span:
                    response = await self._client.post(
                        self.settings.url,
                        content=body.encode(),
                        headers=self.signed_headers(webhook_id, body),
                    )
                    set_http_status(span, response.status_code)
            except httpx.HTTPError as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if response.is_success:
                    return DeliveryOutcome(True, attempts, status, None)
                error = f"HTTP {status}"

            if self._clock() + delay > deadline:
                logger.warning(
                    "Webhook %s not delivered after %d attempts (%s); giving up",
                    webhook_id,
                    attempts,
                    error,
                )
                return DeliveryOutcome(False, attempts, status, error)
            logger.warning(
                "Webhook %s attempt %d failed (%s); retrying in %.1f s",
                webhook_id,
                attempts,
                error,
                delay,
            )
            record_webhook_delivery("retried")
            await self._sleep(delay * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not security
            delay = min(delay * 2, self.settings.backoff_max_seconds)
