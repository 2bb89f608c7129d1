"""Build the emulator's aiohttp application: routes, middleware and shutdown of import tasks.

URL layout, all on one host and port (Genesys Cloud splits them over login., api. and apps.):
- POST /oauth/token: client-credentials login.
- /api/v2/outbound/contactlists...: the Platform API routes.
- POST /uploads/v2/contactlist: the legacy multipart upload.
- PUT /_upload/<uploadKey>: the target of presigned upload URLs.
- /_emulator/...: control and inspection for tests.
"""

from __future__ import annotations

import logging

from aiohttp import web

from local_stack.genesys_emulator import routes_contactlists as lists
from local_stack.genesys_emulator import routes_contacts as contacts
from local_stack.genesys_emulator import routes_uploads as uploads
from local_stack.genesys_emulator.admin import add_admin_routes
from local_stack.genesys_emulator.auth import post_oauth_token
from local_stack.genesys_emulator.context import CONTEXT_KEY, EmulatorContext, emulator_context
from local_stack.genesys_emulator.middleware import MIDDLEWARES
from local_stack.genesys_emulator.settings import EmulatorSettings
from local_stack.genesys_emulator.state import CONTACT_LISTS_PATH

logger = logging.getLogger(__name__)

CONTACT_LISTS = CONTACT_LISTS_PATH
ONE_LIST = CONTACT_LISTS + "/{list_id}"
CONTACTS = ONE_LIST + "/contacts"


async def _oauth_token(request: web.Request) -> web.Response:
    context = emulator_context(request)
    return await post_oauth_token(request, context.settings, context.tokens)


async def _cancel_imports(app: web.Application) -> None:
    for contact_list in app[CONTEXT_KEY].state.contact_lists.values():
        if contact_list.import_task is not None:
            contact_list.import_task.cancel()


def create_app(settings: EmulatorSettings) -> web.Application:
    """Return the emulator application with fresh state for `settings`."""
    app = web.Application(client_max_size=settings.max_request_bytes, middlewares=MIDDLEWARES)
    app[CONTEXT_KEY] = EmulatorContext(settings=settings)
    app.on_cleanup.append(_cancel_imports)

    router = app.router
    router.add_post("/oauth/token", _oauth_token)

    router.add_post(CONTACT_LISTS + "/uploads", uploads.create_upload_url)
    router.add_get(CONTACT_LISTS, lists.list_contact_lists)
    router.add_post(CONTACT_LISTS, lists.create_contact_list)
    router.add_get(ONE_LIST, lists.get_contact_list)
    router.add_put(ONE_LIST, lists.update_contact_list)
    router.add_delete(ONE_LIST, lists.delete_contact_list)
    router.add_get(ONE_LIST + "/importstatus", lists.get_import_status)

    router.add_post(CONTACTS, contacts.add_contacts)
    router.add_delete(CONTACTS, contacts.delete_contacts)
    router.add_post(CONTACTS + "/bulk", contacts.get_contacts_by_id)
    router.add_post(CONTACTS + "/search", contacts.search_contacts)
    router.add_get(CONTACTS + "/{contact_id}", contacts.get_contact)
    router.add_put(CONTACTS + "/{contact_id}", contacts.update_contact)
    router.add_delete(CONTACTS + "/{contact_id}", contacts.delete_contact)

    router.add_put(uploads.UPLOAD_PATH_PREFIX + "{upload_key:.+}", uploads.put_presigned_upload)
    router.add_post("/uploads/v2/contactlist", uploads.post_legacy_upload)

    add_admin_routes(app)
    return app
