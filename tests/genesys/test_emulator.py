"""The Genesys client against the Genesys Cloud emulator over real HTTP on 127.0.0.1.

One emulator process serves the module. Each test makes its own contact list, named with a uuid,
and any emulator setting a test changes is restored when the test ends.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local_stack.genesys_emulator.launcher import GenesysEmulator
from local_stack.genesys_emulator.settings import EmulatorSettings
from stream_app.genesys import (
    CallRecord,
    ContactList,
    ContactWrite,
    GenesysClient,
    ImportFailedError,
    PhoneColumn,
)
from stream_app.settings import GenesysSettings

pytestmark = pytest.mark.integration

COLUMNS = ["id", "phone", "name"]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GenesysEmulator]:
    log_dir: Path = tmp_path_factory.mktemp("genesys-emulator")
    server = GenesysEmulator(EmulatorSettings(port=0), log_dir=log_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def patch_emulator(emulator: GenesysEmulator) -> Iterator[Callable[..., None]]:
    """Return a function that changes emulator settings until the test ends."""
    previous: list[dict[str, Any]] = []

    def patch(**values: Any) -> None:
        previous.append(emulator.patch_settings(**values))

    yield patch
    for values in reversed(previous):
        emulator.patch_settings(**values)


@pytest.fixture
def genesys_settings(emulator: GenesysEmulator) -> GenesysSettings:
    return GenesysSettings(
        api_url=emulator.base_url,
        login_url=emulator.base_url,
        client_id=emulator.settings.client_id,
        client_secret=emulator.settings.client_secret,
        import_poll_interval_seconds=0.2,
        import_stalled_seconds=2.0,
        import_timeout_seconds=30.0,
        max_retry_seconds=60.0,
    )


@pytest.fixture
async def client(genesys_settings: GenesysSettings) -> AsyncIterator[GenesysClient]:
    async with GenesysClient(genesys_settings) as genesys:
        yield genesys


@pytest.fixture
async def contact_list(client: GenesysClient) -> AsyncIterator[ContactList]:
    created = await client.create_contact_list(
        f"genesys-client-{uuid.uuid4().hex[:12]}",
        COLUMNS,
        [PhoneColumn(column_name="phone", type="cell")],
    )
    yield created
    await client.delete_contact_list(created.id)


def _contacts(count: int, prefix: str = "c") -> list[ContactWrite]:
    return [
        ContactWrite(
            id=f"{prefix}{n}",
            data={"id": f"{prefix}{n}", "phone": f"+1555{n:07d}", "name": f"Name {n}"},
        )
        for n in range(count)
    ]


def _csv(contacts: list[ContactWrite], header: str = "id,phone,name") -> bytes:
    lines = [header] + [",".join(c.data[column] for column in COLUMNS) for c in contacts]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


async def test_add_contacts_then_read_size(
    client: GenesysClient, contact_list: ContactList
) -> None:
    contacts = _contacts(1500)

    refs = await client.add_contacts(contact_list.id, contacts)

    assert [ref.id for ref in refs] == [contact.id for contact in contacts]
    refreshed = await client.get_contact_list(contact_list.id)
    assert refreshed.size == 1500
    assert refreshed.column_names == COLUMNS
    assert await client.count_contacts(contact_list.id) == 1500


async def test_add_contacts_twice_upserts(client: GenesysClient, contact_list: ContactList) -> None:
    await client.add_contacts(contact_list.id, _contacts(10))
    await client.add_contacts(contact_list.id, _contacts(10))

    assert await client.count_contacts(contact_list.id) == 10


async def test_delete_contacts(client: GenesysClient, contact_list: ContactList) -> None:
    contacts = _contacts(20)
    await client.add_contacts(contact_list.id, contacts)

    await client.delete_contacts(contact_list.id, [contact.id for contact in contacts[:15]])

    assert await client.count_contacts(contact_list.id) == 5


async def test_find_contact_list_by_name(client: GenesysClient, contact_list: ContactList) -> None:
    found = await client.find_contact_list(contact_list.name)

    assert found is not None
    assert found.id == contact_list.id
    assert await client.find_contact_list(f"missing-{uuid.uuid4().hex}") is None


async def test_upload_csv_and_wait_for_import(
    client: GenesysClient, contact_list: ContactList
) -> None:
    contacts = _contacts(300)

    ticket = await client.upload_contacts_csv(contact_list.id, _csv(contacts), "id")
    outcome = await client.wait_for_import(
        contact_list.id, len(contacts), started_after=ticket.uploaded_at
    )

    assert outcome.completed_by == "status"
    assert outcome.completed_records == 300
    assert await client.count_contacts(contact_list.id) == 300


async def test_upload_wrong_id_column_fails_import(
    client: GenesysClient, contact_list: ContactList
) -> None:
    ticket = await client.upload_contacts_csv(contact_list.id, _csv(_contacts(5)), "contact_id")

    with pytest.raises(ImportFailedError) as raised:
        await client.wait_for_import(contact_list.id, 5, started_after=ticket.uploaded_at)

    assert raised.value.failure_reason == "MISSING_CUSTOM_ID"
    assert raised.value.list_id == contact_list.id


async def test_upload_during_import_waits_for_it(
    genesys_settings: GenesysSettings,
    contact_list: ContactList,
    patch_emulator: Callable[..., None],
) -> None:
    patch_emulator(import_records_per_second=100.0)
    records: list[CallRecord] = []
    first = _contacts(150, prefix="a")
    second = _contacts(10, prefix="b")

    async with GenesysClient(genesys_settings, on_response=records.append) as client:
        await client.upload_contacts_csv(contact_list.id, _csv(first), "id")
        ticket = await client.upload_contacts_csv(contact_list.id, _csv(second), "id")
        await client.wait_for_import(contact_list.id, 160, started_after=ticket.uploaded_at)
        count = await client.count_contacts(contact_list.id)

    assert count == 160
    upload_statuses = [r.status for r in records if r.path.endswith("/contactlists/uploads")]
    assert upload_statuses[0] == 200
    assert 409 in upload_statuses
    assert upload_statuses[-1] == 200


async def test_stalled_import_status_falls_back_to_count(
    client: GenesysClient, contact_list: ContactList, patch_emulator: Callable[..., None]
) -> None:
    patch_emulator(import_status_when_done="not_updated")

    ticket = await client.upload_contacts_csv(contact_list.id, _csv(_contacts(4)), "id")
    outcome = await client.wait_for_import(contact_list.id, 4, started_after=ticket.uploaded_at)

    assert outcome.completed_by == "count"
    assert outcome.contacts_count == 4


async def test_429_storm_waited_out(
    genesys_settings: GenesysSettings,
    contact_list: ContactList,
    patch_emulator: Callable[..., None],
) -> None:
    records: list[CallRecord] = []
    patch_emulator(fault_429_share=0.5, retry_after_seconds=1, fault_seed=7)

    async with GenesysClient(genesys_settings, on_response=records.append) as client:
        for _ in range(6):
            refreshed = await client.get_contact_list(contact_list.id)
            assert refreshed.id == contact_list.id

    statuses = [record.status for record in records if record.path != "/oauth/token"]
    assert statuses.count(200) == 6
    assert 429 in statuses


async def test_expired_token_renewed_before_use(
    genesys_settings: GenesysSettings,
    contact_list: ContactList,
    patch_emulator: Callable[..., None],
) -> None:
    patch_emulator(token_expires_in=2)
    records: list[CallRecord] = []

    async with GenesysClient(genesys_settings, on_response=records.append) as client:
        await client.get_contact_list(contact_list.id)
        await asyncio.sleep(2.5)
        await client.get_contact_list(contact_list.id)

    statuses = [(record.path, record.status) for record in records]
    assert statuses.count(("/oauth/token", 200)) == 2
    assert all(status == 200 for _, status in statuses)


async def test_expired_token_renewed_after_401(
    genesys_settings: GenesysSettings,
    contact_list: ContactList,
    patch_emulator: Callable[..., None],
) -> None:
    # A frozen clock makes the client trust its token until the API rejects it.
    patch_emulator(token_expires_in=1)
    records: list[CallRecord] = []

    async with GenesysClient(
        genesys_settings, clock=lambda: 0.0, on_response=records.append
    ) as client:
        await client.get_contact_list(contact_list.id)
        await asyncio.sleep(1.5)
        refreshed = await client.get_contact_list(contact_list.id)

    assert refreshed.id == contact_list.id
    api_statuses = [record.status for record in records if record.path != "/oauth/token"]
    assert api_statuses == [200, 401, 200]
    assert [record.path for record in records].count("/oauth/token") == 2
