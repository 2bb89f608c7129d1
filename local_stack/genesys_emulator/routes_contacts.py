"""Contact routes under /api/v2/outbound/contactlists/{id}/contacts.

POST /contacts takes a JSON array of WritableDialerContact and returns an array of DialerContact in
the same order. It is an upsert by id: a contact without an id gets a new UUID, and one with a known
id is updated, never duplicated. The batch is validated as a whole before any contact changes.
Every change goes into the write log with the request's correlation id.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from local_stack.genesys_emulator.auth import require_permission
from local_stack.genesys_emulator.context import correlation_id, emulator_context, request_token
from local_stack.genesys_emulator.errors import bad_request, not_found
from local_stack.genesys_emulator.parsing import body_int, query_bool, query_list, read_json
from local_stack.genesys_emulator.routes_contactlists import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from local_stack.genesys_emulator.search import filter_contacts, sort_contacts
from local_stack.genesys_emulator.state import (
    CONTACT_LISTS_PATH,
    WRITE_CONTACT_PUT,
    WRITE_CONTACTS_POST,
    WRITE_DELETE,
    Contact,
    ContactList,
)
from local_stack.genesys_emulator.validation import parse_contact_write

logger = logging.getLogger(__name__)


async def add_contacts(request: web.Request) -> web.Response:
    require_permission(request_token(request), "outbound:contact:add")
    context = emulator_context(request)
    contact_list = context.state.contact_list(request.match_info["list_id"])
    priority = query_bool(request, "priority")
    clear_system_data = query_bool(request, "clearSystemData")
    do_not_queue = query_bool(request, "doNotQueue")

    body = await read_json(request)
    if not isinstance(body, list):
        raise bad_request("The body must be a JSON array of contacts.")
    limit = context.settings.max_contacts_per_request
    if len(body) > limit:
        # Unconfirmed: the limit and this response. Community posts give 1000 per request.
        raise bad_request(f"A request may add at most {limit} contacts, got {len(body)}.")

    writes = [
        parse_contact_write(
            item, position, contact_list, context.settings, context.state.new_contact_id()
        )
        for position, item in enumerate(body)
    ]

    response: list[dict[str, Any]] = []
    for write in writes:
        contact, changed = contact_list.upsert(write, priority, clear_system_data, do_not_queue)
        context.state.record_write(correlation_id(request), WRITE_CONTACTS_POST, contact, changed)
        response.append(contact.to_json())
    logger.debug("Wrote %d contacts to list %s", len(writes), contact_list.id)
    return web.json_response(response)


def _contact(contact_list: ContactList, contact_id: str) -> Contact:
    contact = contact_list.contacts.get(contact_id)
    if contact is None:
        raise not_found(
            f"The contact {contact_id} was not found in the contact list {contact_list.id}."
        )
    return contact


async def get_contact(request: web.Request) -> web.Response:
    require_permission(request_token(request), "outbound:contact:view")
    contact_list = emulator_context(request).state.contact_list(request.match_info["list_id"])
    contact = _contact(contact_list, request.match_info["contact_id"])
    return web.json_response(contact.to_json())


async def update_contact(request: web.Request) -> web.Response:
    require_permission(request_token(request), "outbound:contact:edit")
    context = emulator_context(request)
    contact_list = context.state.contact_list(request.match_info["list_id"])
    contact_id = request.match_info["contact_id"]
    _contact(contact_list, contact_id)

    write = parse_contact_write(
        await read_json(request), 0, contact_list, context.settings, contact_id
    )
    if write.contact_id != contact_id:
        raise bad_request(f"The body id {write.contact_id} differs from the path id {contact_id}.")
    contact, changed = contact_list.upsert(write, False, clear_system_data=False, do_not_queue=True)
    context.state.record_write(correlation_id(request), WRITE_CONTACT_PUT, contact, changed)
    return web.json_response(contact.to_json())


async def delete_contact(request: web.Request) -> web.Response:
    require_permission(request_token(request), "outbound:contact:delete")
    context = emulator_context(request)
    contact_list = context.state.contact_list(request.match_info["list_id"])
    contact = _contact(contact_list, request.match_info["contact_id"])
    _remove(request, contact_list, contact)
    # Unconfirmed: 204. The SDK expects no body from this call.
    return web.Response(status=204)


async def delete_contacts(request: web.Request) -> web.Response:
    """Delete the contacts named in contactIds=a,b; ids not in the list are skipped."""
    require_permission(request_token(request), "outbound:contact:delete")
    contact_list = emulator_context(request).state.contact_list(request.match_info["list_id"])
    contact_ids = query_list(request, "contactIds")
    if not contact_ids:
        raise bad_request("The query parameter contactIds is required, e.g. contactIds=a,b.")

    for contact_id in contact_ids:
        contact = contact_list.contacts.get(contact_id)
        if contact is not None:
            _remove(request, contact_list, contact)
    # Unconfirmed: 204. The CLI describes the response only as "Contacts Deleted.".
    return web.Response(status=204)


def _remove(request: web.Request, contact_list: ContactList, contact: Contact) -> None:
    del contact_list.contacts[contact.id]
    emulator_context(request).state.record_write(
        correlation_id(request), WRITE_DELETE, contact, True
    )


async def get_contacts_by_id(request: web.Request) -> web.Response:
    """Serve POST /contacts/bulk: a JSON array of ids in, the contacts that exist out."""
    require_permission(request_token(request), "outbound:contact:view")
    contact_list = emulator_context(request).state.contact_list(request.match_info["list_id"])
    body = await read_json(request)
    if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
        raise bad_request("The body must be a JSON array of contact ids.")
    found = [
        contact_list.contacts[item].to_json() for item in body if item in contact_list.contacts
    ]
    return web.json_response(found)


async def search_contacts(request: web.Request) -> web.Response:
    """Serve POST /contacts/search; an empty body counts every contact, as Terraform uses it."""
    require_permission(request_token(request), "outbound:contact:view")
    contact_list = emulator_context(request).state.contact_list(request.match_info["list_id"])
    body = await read_json(request, allow_empty=True)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise bad_request("The body must be a ContactListingRequest object.")
    page_size = body_int(body, "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    page_number = body_int(body, "pageNumber", 1, 1, 1_000_000)

    matches = filter_contacts(list(contact_list.contacts.values()), body)
    matches = sort_contacts(matches, body.get("contactSorts"))
    start = (page_number - 1) * page_size
    page_count = max(1, -(-len(matches) // page_size))
    search_path = f"{CONTACT_LISTS_PATH}/{contact_list.id}/contacts/search"

    response: dict[str, Any] = {
        "entities": [contact.to_json() for contact in matches[start : start + page_size]],
        "pageSize": page_size,
        "pageNumber": page_number,
        "total": len(matches),
        "contactsCount": len(contact_list.contacts),
        "firstUri": f"{search_path}?pageSize={page_size}&pageNumber=1",
        "selfUri": f"{search_path}?pageSize={page_size}&pageNumber={page_number}",
        "lastUri": f"{search_path}?pageSize={page_size}&pageNumber={page_count}",
        "pageCount": page_count,
    }
    if page_number < page_count:
        response["nextUri"] = f"{search_path}?pageSize={page_size}&pageNumber={page_number + 1}"
    if 1 < page_number <= page_count:
        response["previousUri"] = f"{search_path}?pageSize={page_size}&pageNumber={page_number - 1}"
    return web.json_response(response)
