"""Contact-list look-up with a cache: list reference in, validation schema out.

Events name their contact list by id or by name (or rely on the mapping file's default). The worker
reads the list from Genesys Cloud once and keeps its schema for `ttl_seconds`, so the list's
columns cost one API call per list and TTL, not one per record.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from stream_app.errors import PermanentError
from stream_app.genesys.client import GenesysClient
from stream_app.genesys.errors import GenesysPermanentError
from stream_app.validation.contact_list import ContactListSchema

logger = logging.getLogger(__name__)

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class ContactListNotFoundError(PermanentError):
    """No contact list in Genesys Cloud has the id or name an event refers to."""


@dataclass
class _Cached:
    schema: ContactListSchema
    loaded_at: float


class ContactListCache:
    def __init__(
        self,
        genesys: GenesysClient,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.genesys = genesys
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._cache: dict[str, _Cached] = {}

    async def get(self, reference: str) -> ContactListSchema:
        """Return the schema of the list with this id or name.

        Raises ContactListNotFoundError when Genesys Cloud has no such list, and lets the
        client's retriable errors through, so the caller retries the record later.
        """
        cached = self._cache.get(reference)
        if cached is not None and self.clock() - cached.loaded_at < self.ttl_seconds:
            return cached.schema

        schema = await self._load(reference)
        entry = _Cached(schema, self.clock())
        self._cache[reference] = entry
        self._cache[schema.list_id] = entry
        return schema

    async def _load(self, reference: str) -> ContactListSchema:
        try:
            if _UUID.match(reference):
                contact_list = await self.genesys.get_contact_list(reference)
            else:
                found = await self.genesys.find_contact_list(reference)
                if found is None:
                    raise ContactListNotFoundError(
                        f"no contact list named {reference!r} in Genesys Cloud; create it or fix "
                        "the contact_list of the event or the mapping file's default"
                    )
                contact_list = found
        except GenesysPermanentError as exc:
            raise ContactListNotFoundError(
                f"contact list {reference!r} could not be read from Genesys Cloud: {exc}"
            ) from exc

        schema = ContactListSchema(
            list_id=contact_list.id,
            name=contact_list.name or "",
            column_names=tuple(contact_list.column_names),
            phone_columns=tuple(column.column_name for column in contact_list.phone_columns),
            email_columns=tuple(column.column_name for column in contact_list.email_columns),
        )
        logger.info(
            "Loaded contact list %s (%s): %d columns",
            schema.list_id,
            schema.name,
            len(schema.column_names),
        )
        return schema
