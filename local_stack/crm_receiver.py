"""A CRM webhook receiver for local runs and tests.

It plays the CRM's side of the import-result webhook. It verifies each delivery's Standard Webhooks
signature (webhook-id, webhook-timestamp, webhook-signature, HMAC-SHA256 over
"{id}.{timestamp}.{body}") and records the delivery. Control endpoints make it fail with a status,
stall past the sender's timeout, or recover. It keeps deliveries in memory and does not deduplicate them, so
tests can see every retry.

Run it in the foreground with `python -m local_stack.crm_receiver --port 8090 --secret whsec_...`.
The /_control/ routes need no authentication, so it listens on 127.0.0.1 unless --host sets another
address. docker-compose.yml passes --host 0.0.0.0 and publishes the port on the host's 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from local_stack.process import (
    LOOPBACK,
    ManagedProcess,
    choose_port,
)

logger = logging.getLogger(__name__)

# Standard Webhooks secrets are "whsec_" plus base64 of the key; this one is the local default.
DEFAULT_SECRET = "whsec_bG9jYWwtY3JtLXdlYmhvb2stc2lnbmluZy1rZXk="  # noqa: S105 - local test key
WEBHOOK_PATH = "/webhooks/genesys-import"

_STATE_KEY = web.AppKey("state", dict)


def build_app(secret: str) -> web.Application:
    """Build the receiver's aiohttp application; `secret` is the Standard Webhooks signing secret."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[_STATE_KEY] = {
        "verifier": Webhook(secret),
        "deliveries": [],
        "fail_status": None,
        "delay_seconds": 0.0,
    }
    app.router.add_post(WEBHOOK_PATH, receive_webhook)
    app.router.add_get("/_control/deliveries", list_deliveries)
    app.router.add_post("/_control/fail", set_failure)
    app.router.add_post("/_control/timeout", set_delay)
    app.router.add_post("/_control/recover", recover)
    app.router.add_post("/_control/reset", reset)
    return app


async def receive_webhook(request: web.Request) -> web.Response:
    state = request.app[_STATE_KEY]
    body = await request.read()
    headers = {name.lower(): value for name, value in request.headers.items()}
    record: dict[str, Any] = {
        "webhook_id": headers.get("webhook-id"),
        "webhook_timestamp": headers.get("webhook-timestamp"),
        "received_at": time.time(),
        "signature_valid": False,
        "error": None,
        "body": None,
    }
    state["deliveries"].append(record)

    if state["delay_seconds"]:
        await asyncio.sleep(state["delay_seconds"])
    if state["fail_status"] is not None:
        record["status"] = state["fail_status"]
        record["error"] = "failure injected by /_control/fail"
        return web.json_response({"error": record["error"]}, status=state["fail_status"])

    try:
        record["body"] = state["verifier"].verify(body, headers)
    except WebhookVerificationError as exc:
        record["status"] = 401
        record["error"] = f"signature verification failed: {exc}"
        logger.warning("Rejected webhook %s: %s", record["webhook_id"], exc)
        return web.json_response({"error": record["error"]}, status=401)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        record["status"] = 400
        record["error"] = f"body is not JSON: {exc}"
        return web.json_response({"error": record["error"]}, status=400)

    record["signature_valid"] = True
    record["status"] = 204
    return web.Response(status=204)


async def list_deliveries(request: web.Request) -> web.Response:
    return web.json_response(request.app[_STATE_KEY]["deliveries"])


async def set_failure(request: web.Request) -> web.Response:
    payload = await request.json()
    status = int(payload.get("status", 503))
    request.app[_STATE_KEY]["fail_status"] = status
    logger.info("Responding to every webhook with %d until recovered", status)
    return web.json_response({"fail_status": status})


async def set_delay(request: web.Request) -> web.Response:
    payload = await request.json()
    seconds = float(payload.get("seconds", 30))
    request.app[_STATE_KEY]["delay_seconds"] = seconds
    logger.info("Delaying every webhook response by %.1f s until recovered", seconds)
    return web.json_response({"delay_seconds": seconds})


async def recover(request: web.Request) -> web.Response:
    state = request.app[_STATE_KEY]
    state["fail_status"] = None
    state["delay_seconds"] = 0.0
    logger.info("Responding to webhooks normally again")
    return web.json_response({"fail_status": None, "delay_seconds": 0.0})


async def reset(request: web.Request) -> web.Response:
    request.app[_STATE_KEY]["deliveries"].clear()
    return await recover(request)


class CrmReceiver:
    """The receiver as a child process on 127.0.0.1, with sync helpers for tests."""

    def __init__(self, log_dir: Path, port: int = 0, secret: str = DEFAULT_SECRET) -> None:
        self.port = choose_port(port)
        self.secret = secret
        self._process = ManagedProcess(
            "crm-receiver",
            [sys.executable, "-m", "local_stack.crm_receiver", "--port", str(self.port)],
            log_dir / "crm-receiver.log",
            env={**os.environ, "CRM_RECEIVER_SECRET": secret},
        )

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def webhook_url(self) -> str:
        return self.base_url + WEBHOOK_PATH

    def start(self, timeout: float = 20.0) -> None:
        self._process.start_listening(self.port, self.base_url, timeout)

    def stop(self) -> None:
        self._process.stop()

    def kill(self) -> None:
        self._process.kill()

    def is_running(self) -> bool:
        return self._process.is_running()

    def deliveries(self) -> list[dict[str, Any]]:
        return self._control("GET", "/_control/deliveries")  # type: ignore[no-any-return]

    def fail_with(self, status: int) -> None:
        self._control("POST", "/_control/fail", {"status": status})

    def stall(self, seconds: float) -> None:
        self._control("POST", "/_control/timeout", {"seconds": seconds})

    def recover(self) -> None:
        self._control("POST", "/_control/recover", {})

    def reset(self) -> None:
        self._control("POST", "/_control/reset", {})

    def _control(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        response = httpx.request(method, self.base_url + path, json=payload, timeout=10)
        response.raise_for_status()
        return response.json()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the local CRM webhook receiver.")
    parser.add_argument(
        "--host",
        default=LOOPBACK,
        help="IPv4 address to listen on (default 127.0.0.1, or 0.0.0.0 inside a container)",
    )
    parser.add_argument("--port", type=int, default=8090, help="TCP port (0 = any free port)")
    parser.add_argument(
        "--secret",
        default=os.environ.get("CRM_RECEIVER_SECRET", DEFAULT_SECRET),
        help="Standard Webhooks signing secret (whsec_ followed by base64); also CRM_RECEIVER_SECRET",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    port = choose_port(args.port, args.host)
    print(f"CRM webhook receiver on http://{args.host}:{port}{WEBHOOK_PATH}", flush=True)
    web.run_app(build_app(args.secret), host=args.host, port=port, print=None)


if __name__ == "__main__":
    main()
