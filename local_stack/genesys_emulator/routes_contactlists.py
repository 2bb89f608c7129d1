"""Contact list routes: create, get, list, update, delete and import status.

Paths sit under /api/v2/outbound/contactlists and return ContactList, ContactListEntityListing and
ImportStatus JSON as the SDK models define them. `size` and `importStatus` appear only when the
includeSize and includeImportStatus query flags are true. Contacts and uploads have their own
route modules.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from typing import Any

from aiohttp import web

from local_stack.genesys_emulator.auth import require_permission
from local_stack.genesys_emulator.context import emulator_context, request_token
from local_stack.genesys_emulator.errors import GENERAL_CONFLICT, ApiError, bad_request
from local_stack.genesys_emulator.parsing import query_bool, query_int, query_list, read_json
from local_stack.genesys_emulator.state import (
    CONTACT_LISTS_PATH,
    HOME_DIVISION_ID,
    ContactList,
    utc_now,
)
from local_stack.genesys_emulator.validation import ContactListFields, parse_contact_list

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 25
CANNOT_UPDATE_PHONE_COLUMNS = "cannot.update.phone.columns"
VERSION_MISMATCH_MESSAGE = "Version does not match current version."
_SORT_KEYS = {"name", "id", "dateCreated", "dateModified"}


async def create_contact_list(request: web.Request) -> web.Response:
    require_permission(request_token(request), "outbound:contactList:add")
    fields = parse_contact_list(await read_json(request))

    now = utc_now()
    # Unconfirmed: the starting version. The emulator starts at 1.
    contact_list = ContactList(
        id=str(uuid.uuid4()),
        name=fields.name,
        column_names=fields.column_names,
        phone_columns=fields.phone_columns,
        fields=fields.fields,
        date_created=now,
        date_modified=now,
    )
    emulator_context(request).state.contact_lists[contact_list.id] = contact_list
    logger.info(
        "Created contact list %s with %d columns", contact_list.id, len(fields.column_names)
    )
    # Unconfirmed: 200 rather than 201. The API reference describes a "successful operation".
    return web.json_response(contact_list.to_json())


async def get_contact_list(request: web.Request) -> web.Response:
    require_permission(request_token(request), "outbound:contactList:view")
    contact_list = emulator_context(request).state.contact_list(request.match_info["list_id"])
    body = contact_list.to_json(
        include_size=query_bool(request, "includeSize"),
        include_import_status=query_bool(request, "includeImportStatus"),
    )
    return web.json_response(body)


async def list_contact_lists(request: web.Request) -> web.Response:
    require_permission(request_token(request), "outbound:contactList:view")
    page_size = query_int(request, "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    page_number = query_int(request, "pageNumber", 1, 1, 1_000_000)
    include_size = query_bool(request, "includeSize")
    include_import_status = query_bool(request, "includeImportStatus")

    matches = _filter_contact_lists(
        request, list(emulator_context(request).state.contact_lists.values())
    )
    matches = _sort_contact_lists(request, matches)
    start = (page_number - 1) * page_size
    page = matches[start : start + page_size]

    body: dict[str, Any] = {
        "entities": [item.to_json(include_size, include_import_status) for item in page],
        "pageSize": page_size,
        "pageNumber": page_number,
        "total": len(matches),
    }
    body.update(page_links(request, CONTACT_LISTS_PATH, page_number, page_size, len(matches)))
    return web.json_response(body)


def _filter_contact_lists(request: web.Request, lists: list[ContactList]) -> list[ContactList]:
    ids = set(query_list(request, "id"))
    if ids:
        lists = [item for item in lists if item.id in ids]
    divisions = set(query_list(request, "divisionId"))
    if divisions and HOME_DIVISION_ID not in divisions:
        lists = []

    name = request.query.get("name")
    if not name:
        return lists
    filter_type = request.query.get("filterType", "Prefix")
    folded = name.casefold()
    if filter_type == "Prefix":
        return [item for item in lists if item.name.casefold().startswith(folded)]
    if filter_type == "Equals":
        return [item for item in lists if item.name.casefold() == folded]
    if filter_type == "Contains":
        return [item for item in lists if folded in item.name.casefold()]
    if filter_type == "RegEx":
        try:
            pattern = re.compile(name)
        except re.error as error:
            raise bad_request(f"name is not a valid regular expression: {error}.") from None
        return [item for item in lists if pattern.search(item.name)]
    raise bad_request(
        f"filterType {filter_type!r} is not supported by the emulator; use Prefix, Equals, "
        "Contains or RegEx."
    )


def _sort_contact_lists(request: web.Request, lists: list[ContactList]) -> list[ContactList]:
    sort_by = request.query.get("sortBy", "name")
    if sort_by not in _SORT_KEYS:
        raise bad_request(f"sortBy must be one of {sorted(_SORT_KEYS)}, got {sort_by!r}.")
    sort_order = request.query.get("sortOrder", "ascending").lower()
    if sort_order not in ("ascending", "descending"):
        raise bad_request(f"sortOrder must be ascending or descending, got {sort_order!r}.")

    def sort_key(item: ContactList) -> Any:
        if sort_by == "name":
            return (item.name.casefold(), item.id)
        if sort_by == "dateCreated":
            return (item.date_created, item.id)
        if sort_by == "dateModified":
            return (item.date_modified, item.id)
        return item.id

    return sorted(lists, key=sort_key, reverse=sort_order == "descending")


def page_links(
    request: web.Request, path: str, page_number: int, page_size: int, total: int
) -> dict[str, Any]:
    """Return firstUri, selfUri, lastUri, pageCount and, where they exist, next and previous."""
    page_count = max(1, math.ceil(total / page_size))

    def uri(number: int) -> str:
        query = dict(request.query)
        query["pageSize"] = str(page_size)
        query["pageNumber"] = str(number)
        return str(request.url.with_path(path).with_query(query).relative())

    links: dict[str, Any] = {
        "firstUri": uri(1),
        "selfUri": uri(page_number),
        "lastUri": uri(page_count),
        "pageCount": page_count,
    }
    if page_number < page_count:
        links["nextUri"] = uri(page_number + 1)
    if 1 < page_number <= page_count:
        links["previousUri"] = uri(page_number - 1)
    return links


async def update_contact_list(request: web.Request) -> web.Response:
    require_permission(request_token(request), "outbound:contactList:edit")
    contact_list = emulator_context(request).state.contact_list(request.match_info["list_id"])
    fields = parse_contact_list(await read_json(request))

    if fields.version is None:
        raise bad_request("version is required; send the version of the list you last read.")
    if fields.version != contact_list.version:
        raise ApiError(409, GENERAL_CONFLICT, VERSION_MISMATCH_MESSAGE)
    _check_columns_unchanged(contact_list, fields)

    contact_list.name = fields.name
    contact_list.fields = fields.fields
    contact_list.version += 1
    contact_list.date_modified = utc_now()
    logger.info("Updated contact list %s to version %d", contact_list.id, contact_list.version)
    return web.json_response(contact_list.to_json())


def _check_columns_unchanged(contact_list: ContactList, fields: ContactListFields) -> None:
    """Reject a change of columnNames or phoneColumns, which Genesys Cloud does not allow.

    The Terraform provider treats both fields as force-new because the API rejects such a PUT with
    400 cannot.update.phone.columns.
    """
    if fields.phone_columns != contact_list.phone_columns:
        detail = "Phone number columns are different"
    elif fields.column_names != contact_list.column_names:
        # Unconfirmed: the detail text for changed columnNames. The code is documented.
        detail = "Column names are different"
    else:
        return
    raise ApiError(
        400,
        CANNOT_UPDATE_PHONE_COLUMNS,
        f"An attempt was made to update a ContactList in an invalid way. Details: {detail}",
    )


async def delete_contact_list(request: web.Request) -> web.Response:
    require_permission(request_token(request), "outbound:contactList:delete")
    state = emulator_context(request).state
    contact_list = state.contact_list(request.match_info["list_id"])
    if contact_list.import_task is not None:
        contact_list.import_task.cancel()
    del state.contact_lists[contact_list.id]
    for key in [
        key for key, upload in state.uploads.items() if upload.contact_list_id == contact_list.id
    ]:
        del state.uploads[key]
    logger.info("Deleted contact list %s", contact_list.id)
    # Unconfirmed: 204. The SDK expects no body from this call.
    return web.Response(status=204)


async def get_import_status(request: web.Request) -> web.Response:
    require_permission(request_token(request), "outbound:contactList:view")
    contact_list = emulator_context(request).state.contact_list(request.match_info["list_id"])
    return web.json_response(dict(contact_list.import_status))
