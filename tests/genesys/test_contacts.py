"""Contact-list and contact calls of the Genesys client: paths, query flags, bodies, chunking."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from stream_app.genesys import (
    ContactWrite,
    EmailColumn,
    GenesysClient,
    GenesysPermanentError,
    PhoneColumn,
)
from tests.genesys.conftest import API_URL, FakeGenesys, contact_list_body


def _echo_contacts(request: httpx.Request) -> httpx.Response:
    """Respond to POST .../contacts as Genesys Cloud does: the written contacts as DialerContacts."""
    sent = json.loads(request.content)
    written = [
        {
            "id": contact["id"],
            "contactListId": contact["contactListId"],
            "data": contact["data"],
            "callable": True,
            "selfUri": f"/api/v2/outbound/contactlists/{contact['contactListId']}/contacts/{contact['id']}",
        }
        for contact in sent
    ]
    return httpx.Response(200, json=written)


async def test_get_contact_list_parses_fields(fake: FakeGenesys, client: GenesysClient) -> None:
    body = contact_list_body(
        size=42,
        importStatus={"totalRecords": 42, "completedRecords": 42, "percentComplete": 100},
    )
    fake.on("GET", "/contactlists/list-1", lambda _request: httpx.Response(200, json=body))

    contact_list = await client.get_contact_list("list-1")

    request = fake.api_arrivals()[0].request
    assert request.url.params["includeSize"] == "true"
    assert request.url.params["includeImportStatus"] == "true"
    assert contact_list.name == "List one"
    assert contact_list.version == 1
    assert contact_list.column_names == ["id", "phone", "email"]
    assert contact_list.phone_columns == [PhoneColumn(column_name="phone", type="cell")]
    assert contact_list.email_columns == [EmailColumn(column_name="email", type="work")]
    assert contact_list.size == 42
    assert contact_list.import_status is not None
    assert contact_list.import_status.finished


async def test_get_contact_list_quotes_id(fake: FakeGenesys, client: GenesysClient) -> None:
    fake.on(
        "GET", "/contactlists/a b", lambda _request: httpx.Response(200, json=contact_list_body())
    )

    await client.get_contact_list("a b")

    assert fake.api_arrivals()[0].request.url.raw_path.startswith(
        b"/api/v2/outbound/contactlists/a%20b?"
    )


async def test_unreadable_body_raises_permanent(fake: FakeGenesys, client: GenesysClient) -> None:
    fake.on("GET", "/contactlists/list-1", lambda _request: httpx.Response(200, json={"id": "x"}))

    with pytest.raises(GenesysPermanentError, match="cannot read"):
        await client.get_contact_list("list-1")


async def test_find_contact_list_reads_pages(fake: FakeGenesys, client: GenesysClient) -> None:
    pages = {
        "1": [contact_list_body("a", "Target copy"), contact_list_body("b", "target")],
        "2": [contact_list_body("c", "Target")],
    }

    def listing(request: httpx.Request) -> httpx.Response:
        number = request.url.params["pageNumber"]
        return httpx.Response(
            200,
            json={
                "entities": pages[number],
                "pageNumber": int(number),
                "pageSize": 100,
                "pageCount": 2,
            },
        )

    fake.on("GET", "/contactlists", listing)

    found = await client.find_contact_list("Target")

    assert found is not None
    assert found.id == "c"
    params = [arrival.request.url.params for arrival in fake.api_arrivals()]
    assert [p["pageNumber"] for p in params] == ["1", "2"]
    assert all(p["name"] == "Target" and p["filterType"] == "Equals" for p in params)
    assert all(p["pageSize"] == "100" for p in params)


async def test_find_contact_list_returns_none(fake: FakeGenesys, client: GenesysClient) -> None:
    fake.on(
        "GET",
        "/contactlists",
        lambda _request: httpx.Response(
            200, json={"entities": [], "pageNumber": 1, "pageCount": 0}
        ),
    )

    assert await client.find_contact_list("Nothing") is None
    assert len(fake.api_arrivals()) == 1


async def test_create_contact_list_sends_columns(fake: FakeGenesys, client: GenesysClient) -> None:
    fake.on("POST", "/contactlists", lambda _request: httpx.Response(200, json=contact_list_body()))

    created = await client.create_contact_list(
        "List one",
        ["id", "phone", "email"],
        [PhoneColumn(column_name="phone", type="cell")],
        [EmailColumn(column_name="email", type="work")],
    )

    assert created.id == "list-1"
    assert fake.api_arrivals()[0].json() == {
        "name": "List one",
        "columnNames": ["id", "phone", "email"],
        "phoneColumns": [{"columnName": "phone", "type": "cell"}],
        "emailColumns": [{"columnName": "email", "type": "work"}],
    }


async def test_create_contact_list_from_names(fake: FakeGenesys, client: GenesysClient) -> None:
    fake.on("POST", "/contactlists", lambda _request: httpx.Response(200, json=contact_list_body()))

    await client.create_contact_list("List one", ["id", "phone", "email"], ["phone"], ["email"])

    body = fake.api_arrivals()[0].json()
    assert body["phoneColumns"] == [{"columnName": "phone", "type": "cell"}]
    assert body["emailColumns"] == [{"columnName": "email", "type": "work"}]


async def test_delete_contact_list(fake: FakeGenesys, client: GenesysClient) -> None:
    fake.on("DELETE", "/contactlists/list-1", lambda _request: httpx.Response(200))

    await client.delete_contact_list("list-1")

    assert fake.api_arrivals()[0].request.method == "DELETE"


async def test_add_contacts_chunks_2500_into_3_requests(
    fake: FakeGenesys, client: GenesysClient
) -> None:
    fake.on("POST", "/contactlists/list-1/contacts", _echo_contacts)
    contacts = [
        ContactWrite(id=f"c{n}", data={"id": f"c{n}", "phone": "+15550100"}) for n in range(2500)
    ]

    refs = await client.add_contacts("list-1", contacts)

    bodies = [arrival.json() for arrival in fake.api_arrivals()]
    assert [len(body) for body in bodies] == [1000, 1000, 500]
    assert [ref.id for ref in refs] == [contact.id for contact in contacts]
    assert bodies[2][0] == {
        "id": "c2000",
        "contactListId": "list-1",
        "data": {"id": "c2000", "phone": "+15550100"},
        "callable": True,
    }


async def test_add_contacts_sends_flags_from_settings(
    fake: FakeGenesys, make_client: Callable[..., GenesysClient]
) -> None:
    fake.on("POST", "/contactlists/list-1/contacts", _echo_contacts)

    async with make_client(priority=True, clear_system_data=False, do_not_queue=True) as client:
        await client.add_contacts("list-1", [ContactWrite(id="c1", data={"phone": "+15550100"})])

    params = fake.api_arrivals()[0].request.url.params
    assert params["priority"] == "true"
    assert params["clearSystemData"] == "false"
    assert params["doNotQueue"] == "true"


async def test_add_contacts_respects_contacts_per_request(
    fake: FakeGenesys, make_client: Callable[..., GenesysClient]
) -> None:
    fake.on("POST", "/contactlists/list-1/contacts", _echo_contacts)
    contacts = [ContactWrite(id=f"c{n}", data={"phone": "+15550100"}) for n in range(7)]

    async with make_client(contacts_per_request=3) as client:
        refs = await client.add_contacts("list-1", contacts)

    assert [len(arrival.json()) for arrival in fake.api_arrivals()] == [3, 3, 1]
    assert len(refs) == 7


async def test_add_no_contacts_sends_nothing(fake: FakeGenesys, client: GenesysClient) -> None:
    assert await client.add_contacts("list-1", []) == []
    assert fake.arrivals == []


async def test_delete_contacts_keeps_urls_short(fake: FakeGenesys, client: GenesysClient) -> None:
    fake.on(
        "DELETE",
        "/contactlists/list-1/contacts",
        lambda _request: httpx.Response(200, text="Contacts Deleted."),
    )
    ids = [f"contact-{n:06d}-{'x' * 20}" for n in range(1000)]

    await client.delete_contacts("list-1", ids)

    requests = [arrival.request for arrival in fake.api_arrivals()]
    assert len(requests) > 1
    assert all(len(str(request.url)) < 8000 for request in requests)
    sent = [contact_id for r in requests for contact_id in r.url.params["contactIds"].split(",")]
    assert sent == ids
    assert str(requests[0].url).startswith(
        f"{API_URL}/api/v2/outbound/contactlists/list-1/contacts?"
    )


async def test_count_contacts_reads_contacts_count(
    fake: FakeGenesys, client: GenesysClient
) -> None:
    fake.on(
        "POST",
        "/contactlists/list-1/contacts/search",
        lambda _request: httpx.Response(
            200, json={"entities": [], "total": 0, "contactsCount": 1234}
        ),
    )

    assert await client.count_contacts("list-1") == 1234
    assert fake.api_arrivals()[0].json() == {"pageSize": 1, "pageNumber": 1}
