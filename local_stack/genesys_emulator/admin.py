"""Routes under /_emulator/ that tests use to steer and inspect the emulator.

They need no token, are not rate limited, never get injected faults and stay out of the request
log. Nothing here exists in Genesys Cloud. JSON keys use snake_case, so they are not mistaken for
Platform API shapes. Shapes:
- GET /_emulator/settings: every setting, secrets masked. PATCH takes {name: value} for names in
  RUNTIME_SETTINGS and returns the new settings; anything else is a 400 ErrorBody.
- POST /_emulator/reset: drops contact lists, uploads, logs and rate-limit windows; keeps tokens
  and settings. Returns {"reset": true}.
- GET /_emulator/contactlists/{id}/contacts: every contact as a DialerContact plus queue_position
  and write_count.
- GET /_emulator/writes?contactListId=&since=: [{seq, time, request_id, method, contact_list_id,
  contact_id, data_hash, changed}], where method is "contacts POST", "contact PUT", "import" or
  "delete", and `since` skips entries with seq <= since.
- GET /_emulator/requests?since=: [{seq, time, method, path, status, token_hash, client_id,
  correlation_id, duration_ms}].
- GET /_emulator/ratelimit: {limit_per_minute, max_in_window, tokens: {token_hash: {max_in_window,
  rejected}}}, where max_in_window is the most requests accepted in any 60 s.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from local_stack.genesys_emulator.context import emulator_context
from local_stack.genesys_emulator.errors import bad_request
from local_stack.genesys_emulator.parsing import query_int, read_json, require_object
from local_stack.genesys_emulator.settings import RUNTIME_SETTINGS

logger = logging.getLogger(__name__)

ADMIN_PREFIX = "/_emulator"


async def get_health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def get_settings(request: web.Request) -> web.Response:
    return web.json_response(emulator_context(request).settings.public_view())


async def patch_settings(request: web.Request) -> web.Response:
    context = emulator_context(request)
    changes = require_object(await read_json(request), "The settings patch")
    not_runtime = sorted(set(changes) - RUNTIME_SETTINGS)
    if not_runtime:
        raise bad_request(
            f"These settings cannot change at run time or do not exist: {not_runtime}. "
            f"Runtime settings are {sorted(RUNTIME_SETTINGS)}."
        )

    candidate = context.settings.model_copy(deep=True)
    try:
        for name, value in changes.items():
            setattr(candidate, name, value)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'settings'}: {item['msg']}"
            for item in error.errors()
        )
        raise bad_request(f"Invalid settings: {problems}.") from None

    context.replace_settings(candidate)
    logger.info("Changed settings at run time: %s", sorted(changes))
    return web.json_response(candidate.public_view())


async def post_reset(request: web.Request) -> web.Response:
    context = emulator_context(request)
    context.state.clear()
    context.limiter.clear()
    return web.json_response({"reset": True})


async def get_contacts(request: web.Request) -> web.Response:
    contact_list = emulator_context(request).state.contact_list(request.match_info["list_id"])
    contacts: list[dict[str, Any]] = []
    for contact in sorted(contact_list.contacts.values(), key=lambda item: item.queue_position):
        body = contact.to_json()
        body["queue_position"] = contact.queue_position
        body["write_count"] = contact.write_count
        contacts.append(body)
    return web.json_response(contacts)


async def get_writes(request: web.Request) -> web.Response:
    since = query_int(request, "since", 0, 0, 2**62)
    list_id = request.query.get("contactListId") or None
    return web.json_response(emulator_context(request).state.writes_json(list_id, since))


async def get_requests(request: web.Request) -> web.Response:
    since = query_int(request, "since", 0, 0, 2**62)
    return web.json_response(emulator_context(request).state.requests_json(since))


async def get_rate_limit(request: web.Request) -> web.Response:
    context = emulator_context(request)
    limiter = context.limiter
    tokens = {
        key: {"max_in_window": count, "rejected": limiter.rejected.get(key, 0)}
        for key, count in limiter.max_in_window.items()
    }
    body = {
        "limit_per_minute": context.settings.rate_limit_per_minute,
        "max_in_window": max(limiter.max_in_window.values(), default=0),
        "tokens": tokens,
    }
    return web.json_response(body)


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get(f"{ADMIN_PREFIX}/health", get_health)
    app.router.add_get(f"{ADMIN_PREFIX}/settings", get_settings)
    app.router.add_patch(f"{ADMIN_PREFIX}/settings", patch_settings)
    app.router.add_post(f"{ADMIN_PREFIX}/reset", post_reset)
    app.router.add_get(f"{ADMIN_PREFIX}/contactlists/{{list_id}}/contacts", get_contacts)
    app.router.add_get(f"{ADMIN_PREFIX}/writes", get_writes)
    app.router.add_get(f"{ADMIN_PREFIX}/requests", get_requests)
    app.router.add_get(f"{ADMIN_PREFIX}/ratelimit", get_rate_limit)
